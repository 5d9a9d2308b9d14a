import { createHash, type KeyObject } from 'node:crypto';
import { DuocellError } from '../core/errors.js';
import { normalizePolicySet, type NormalPolicySet, type PolicyDelta } from '../store/store.js';
import { checkName, checkPrefix, normalizeProxy } from '../store/validate.js';
import type { PolicySet } from '../store/types.js';
import { keyIdOf, signBytes, verifyBytes, type TrustedKey } from './keys.js';
import { pointerPath, toField } from '../core/schema.js';
import { DELTA_SCHEMA, FULL_SCHEMA, firstIssue } from './schema.js';

/**
 * A policy bundle travels as an envelope:
 *
 *   { "document": "<the document's JSON text>",
 *     "signatures": [ { "alg": "ed25519", "keyId": "<16 hex>", "sig": "<base64 of 64 bytes>" } ] }
 *
 * The signature is detached from the document: it covers exactly the UTF-8 bytes of the
 * `document` string, so no canonical JSON is needed and the document can also be kept as a
 * file with its signature beside it (`FILE.sig`, the `signatures` array alone).
 *
 * verifyBundle() checks, in this order, and nothing is written before all pass:
 *   1 envelope well-formed, size bounded ................ DC_OTA_MALFORMED
 *   2 at least one signature ............................. DC_OTA_UNSIGNED
 *   3 a signature by a trusted key ....................... DC_OTA_UNTRUSTED_KEY
 *   4 that signature verifies ............................ DC_OTA_BAD_SIGNATURE
 *   5 document is JSON and matches the schema ............ DC_OTA_SCHEMA_INVALID
 *   6 content consistent (names, references, identifiers)  DC_OTA_CONTENT_INVALID
 *   7 not expired / not issued in the future ............. DC_OTA_EXPIRED / DC_OTA_NOT_YET_VALID
 *   8 targets this cell .................................. DC_OTA_FOREIGN_TARGET
 * The version checks (anti-rollback, delta base) need the store: see OtaService.
 */

export const MAX_BUNDLE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_SKEW_MS = 60 * 60 * 1000;

export interface SignatureEntry {
  alg: 'ed25519';
  keyId?: string;
  sig: string;
}

export interface Envelope {
  document: string;
  signatures: SignatureEntry[];
}

export type BundleTarget = 'all' | { cells: string[] };

interface DocCommon {
  format: string;
  version: number;
  issuedAt: string;
  expiresAt?: string;
  target: BundleTarget;
  comment?: string;
}

export interface FullDocument extends DocCommon {
  kind: 'full';
  policy: PolicySet;
}

export interface DeltaDocument extends DocCommon {
  kind: 'delta';
  base: number;
  upsert?: Partial<PolicySet>;
  remove?: { policies?: string[]; subscribers?: string[]; nserverLimits?: string[]; proxies?: Array<{ address: string; port: number }> };
}

export type BundleDocument = FullDocument | DeltaDocument;

export interface VerifiedBundle {
  doc: BundleDocument;
  /** SHA-256 (hex) of the document bytes. */
  sha256: string;
  keyId: string;
  content: { full: NormalPolicySet } | { delta: PolicyDelta };
}

export interface VerifyOptions {
  trustedKeys: readonly TrustedKey[];
  /** This cell's id; a bundle listing cells must list it. */
  cellId?: string | null;
  now?: number;
  maxSkewMs?: number;
}

function fail(code: 'DC_OTA_MALFORMED' | 'DC_OTA_SCHEMA_INVALID', msg: string, cause?: unknown): never {
  throw new DuocellError(code, msg, cause === undefined ? {} : { cause });
}

function isObj(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

const B64 = /^[A-Za-z0-9+/]{86}==$/;

function checkSignatures(v: unknown, where: string): SignatureEntry[] {
  if (!Array.isArray(v)) fail('DC_OTA_MALFORMED', `${where}: signatures must be an array`);
  if (v.length > 16) fail('DC_OTA_MALFORMED', `${where}: more than 16 signatures`);
  return v.map((s, i) => {
    if (!isObj(s)) fail('DC_OTA_MALFORMED', `${where}[${i}]: expected an object`);
    for (const k of Object.keys(s)) if (k !== 'alg' && k !== 'keyId' && k !== 'sig') fail('DC_OTA_MALFORMED', `${where}[${i}]: unknown field ${k.slice(0, 32)}`);
    if (s.alg !== 'ed25519') fail('DC_OTA_MALFORMED', `${where}[${i}].alg: only ed25519 is supported`);
    if (typeof s.sig !== 'string' || !B64.test(s.sig)) fail('DC_OTA_MALFORMED', `${where}[${i}].sig: expected base64 of 64 bytes`);
    if (s.keyId !== undefined && (typeof s.keyId !== 'string' || !/^[0-9a-f]{16}$/.test(s.keyId))) fail('DC_OTA_MALFORMED', `${where}[${i}].keyId: expected 16 hex digits`);
    return { alg: 'ed25519', sig: s.sig, ...(s.keyId !== undefined ? { keyId: s.keyId as string } : {}) };
  });
}

/** Parse an envelope from bytes (or from an object a web framework already parsed). */
export function parseEnvelope(input: Buffer | string | unknown): Envelope {
  let v: unknown = input;
  if (typeof input === 'string' || Buffer.isBuffer(input)) {
    const len = typeof input === 'string' ? Buffer.byteLength(input) : input.length;
    if (len > MAX_BUNDLE_BYTES) fail('DC_OTA_MALFORMED', `bundle larger than ${MAX_BUNDLE_BYTES} bytes`);
    if (len === 0) fail('DC_OTA_MALFORMED', 'empty bundle');
    try {
      v = JSON.parse(typeof input === 'string' ? input : new TextDecoder('utf-8', { fatal: true }).decode(input));
    } catch (e) {
      fail('DC_OTA_MALFORMED', `bundle is not UTF-8 JSON: ${(e as Error).message.slice(0, 200)}`, e);
    }
  }
  if (!isObj(v)) fail('DC_OTA_MALFORMED', 'bundle: expected a JSON object');
  if (!Object.prototype.hasOwnProperty.call(v, 'document')) {
    // a bare document: well-formed maybe, but nobody vouches for it
    if (Object.prototype.hasOwnProperty.call(v, 'format') || Object.prototype.hasOwnProperty.call(v, 'version')) {
      throw new DuocellError('DC_OTA_UNSIGNED', 'bundle is a bare document without signatures');
    }
    fail('DC_OTA_MALFORMED', 'bundle: missing document');
  }
  for (const k of Object.keys(v)) if (k !== 'document' && k !== 'signatures') fail('DC_OTA_MALFORMED', `bundle: unknown field ${k.slice(0, 32)}`);
  if (typeof v.document !== 'string') fail('DC_OTA_MALFORMED', 'bundle.document must be the document JSON as a string');
  if (Buffer.byteLength(v.document) > MAX_BUNDLE_BYTES) fail('DC_OTA_MALFORMED', 'document too large');
  if (v.signatures === undefined) return { document: v.document, signatures: [] };
  return { document: v.document, signatures: checkSignatures(v.signatures, 'bundle.signatures') };
}

/** Parse a detached signature file (`FILE.sig`): the signatures array, or one entry. */
export function parseDetachedSignature(text: string): SignatureEntry[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    fail('DC_OTA_MALFORMED', `signature file is not JSON: ${(e as Error).message.slice(0, 200)}`, e);
  }
  return checkSignatures(Array.isArray(v) ? v : [v], 'signature');
}

/** Sign a document's exact bytes; returns the signature entry. */
export function signDocument(documentText: string, privateKey: KeyObject): SignatureEntry {
  const sig = signBytes(Buffer.from(documentText, 'utf8'), privateKey);
  return { alg: 'ed25519', keyId: keyIdOf(privateKey), sig: sig.toString('base64') };
}

export function makeEnvelope(documentText: string, signatures: SignatureEntry[]): string {
  return JSON.stringify({ document: documentText, signatures });
}

/** Steps 2-4: which trusted key signed the document. */
export function checkSignature(env: Envelope, keys: readonly TrustedKey[]): string {
  if (env.signatures.length === 0) throw new DuocellError('DC_OTA_UNSIGNED', 'bundle carries no signature');
  const data = Buffer.from(env.document, 'utf8');
  let triedTrusted = false;
  for (const s of env.signatures) {
    const cands = s.keyId === undefined ? keys : keys.filter((k) => k.keyId === s.keyId);
    for (const k of cands) {
      triedTrusted = true;
      if (verifyBytes(data, Buffer.from(s.sig, 'base64'), k.key)) return k.keyId;
    }
  }
  if (!triedTrusted) {
    const ids = env.signatures.map((s) => s.keyId ?? '?').join(', ');
    throw new DuocellError('DC_OTA_UNTRUSTED_KEY', `signed by ${ids}; trusted: ${keys.map((k) => k.keyId).join(', ') || 'none'}`);
  }
  throw new DuocellError('DC_OTA_BAD_SIGNATURE', 'no signature by a trusted key verifies over the document');
}

/** Steps 5-6 on a document text already known to be authentic. */
export function parseDocument(text: string): Pick<VerifiedBundle, 'doc' | 'content'> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    fail('DC_OTA_SCHEMA_INVALID', `document is not JSON: ${(e as Error).message.slice(0, 200)}`, e);
  }
  if (!isObj(v)) fail('DC_OTA_SCHEMA_INVALID', 'document: expected an object');
  const kind = v.kind;
  if (kind !== 'full' && kind !== 'delta') fail('DC_OTA_SCHEMA_INVALID', '/kind: expected "full" or "delta"');
  const issue = firstIssue(v, kind === 'full' ? FULL_SCHEMA : DELTA_SCHEMA);
  if (issue !== undefined) {
    // The same shape as the API's refusals: `fields` with the dotted path beside the message.
    throw new DuocellError('DC_OTA_SCHEMA_INVALID', `document ${pointerPath(issue.path)}: ${issue.message}`, { fields: [toField(issue, '')] });
  }
  const doc = v as unknown as BundleDocument;
  if (doc.expiresAt !== undefined && Date.parse(doc.expiresAt) <= Date.parse(doc.issuedAt)) {
    fail('DC_OTA_SCHEMA_INVALID', 'document /expiresAt: not after issuedAt');
  }
  if (doc.kind === 'full') return { doc, content: { full: normalizePolicySet(doc.policy, 'DC_OTA_CONTENT_INVALID', { shapeChecked: true }) } };
  if (doc.base >= doc.version) throw new DuocellError('DC_OTA_CONTENT_INVALID', `delta base ${doc.base} is not below version ${doc.version}`);
  const up = doc.upsert ?? {};
  const upsert = normalizeDeltaSet({ policies: up.policies ?? [], subscribers: up.subscribers ?? [], nserverLimits: up.nserverLimits ?? [], proxies: up.proxies ?? [] });
  const r = doc.remove ?? {};
  const C = 'DC_OTA_CONTENT_INVALID' as const;
  const remove = {
    policies: (r.policies ?? []).map((n, i) => checkName(n, `remove.policies[${i}]`, C)),
    subscribers: (r.subscribers ?? []).map((n, i) => checkName(n, `remove.subscribers[${i}]`, C)),
    nserverLimits: (r.nserverLimits ?? []).map((p, i) => checkPrefix(p, `remove.nserverLimits[${i}]`, C)),
    proxies: (r.proxies ?? []).map((p, i) => {
      const n = normalizeProxy({ ...p, protocol: 'convert' }, C, `remove.proxies[${i}]`);
      return { address: n.address, port: n.port };
    }),
  };
  const upNames = new Set(upsert.subscribers.map((s) => s.name));
  for (const n of remove.subscribers) if (upNames.has(n)) throw new DuocellError(C, `subscriber ${n} is both upserted and removed`);
  return { doc, content: { delta: { upsert, remove } } };
}

/** A delta's upserts: each item checked, names and identifiers unique within the delta; references resolve at apply. */
function normalizeDeltaSet(set: PolicySet): NormalPolicySet {
  const withPolicies = { ...set, policies: set.policies };
  // policy references may point at policies already on the box: check them at apply time
  const refs = new Set(set.subscribers.map((s) => s.policy).filter((p): p is string => typeof p === 'string'));
  const stub = [...refs].filter((r) => !set.policies.some((p) => p.name === r)).map((name) => ({ name }));
  const n = normalizePolicySet({ ...withPolicies, policies: [...set.policies, ...stub] }, 'DC_OTA_CONTENT_INVALID', { shapeChecked: true });
  return { ...n, policies: n.policies.slice(0, set.policies.length) };
}

/** Steps 1-8. Throws a DuocellError with the refusal's code; returns the bundle ready to apply. */
export function verifyBundle(input: Buffer | string | unknown, o: VerifyOptions): VerifiedBundle {
  const env = parseEnvelope(input);
  const keyId = checkSignature(env, o.trustedKeys);
  const { doc, content } = parseDocument(env.document);
  const now = o.now ?? Date.now();
  if (doc.expiresAt !== undefined && Date.parse(doc.expiresAt) <= now) {
    throw new DuocellError('DC_OTA_EXPIRED', `bundle ${doc.version} expired at ${doc.expiresAt}`);
  }
  const skew = o.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
  if (Date.parse(doc.issuedAt) > now + skew) {
    throw new DuocellError('DC_OTA_NOT_YET_VALID', `bundle ${doc.version} is issued at ${doc.issuedAt}, in the future`);
  }
  if (doc.target !== 'all') {
    if (o.cellId === undefined || o.cellId === null || !doc.target.cells.includes(o.cellId)) {
      throw new DuocellError('DC_OTA_FOREIGN_TARGET', `bundle ${doc.version} targets ${doc.target.cells.length} other cell(s), this is ${o.cellId ?? '(no cell id)'}`);
    }
  }
  return { doc, sha256: createHash('sha256').update(env.document, 'utf8').digest('hex'), keyId, content };
}

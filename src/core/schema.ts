import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { DuocellError } from './errors.js';
import { parseIPv4Number, parseIPv6Groups } from './net.js';

/**
 * The one schema engine: every JSON Schema of duocell (board profile, OTA bundle, API bodies)
 * is compiled once with ajv, and its failures come out in one shape, a path (segments from the
 * document's root) and a message. Each caller formats the path as its readers know it: the
 * board profile as `board.uplinks[0].interface`, a bundle as a JSON pointer, the page's fields
 * dotted. The API's own bodies are compiled by fastify's ajv; its failures go through
 * issuesOf() too, so all three speak the same way.
 */

export interface SchemaIssue {
  /** Where, from the root: property names and array indices. */
  path: Array<string | number>;
  /** The JSON Schema keyword that failed. */
  keyword: string;
  message: string;
}

/** A date-time as RFC 3339 writes it, that is also a real date. */
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** A numeric address (strict: no leading zeros, no zone id), or one with a prefix length that fits. */
function isAddressOrPrefix(s: string, requirePrefix: boolean): boolean {
  if (s.length === 0 || s.length > 49) return false;
  const slash = s.indexOf('/');
  if (slash === -1 && requirePrefix) return false;
  const addr = slash === -1 ? s : s.slice(0, slash);
  const v6 = addr.includes(':');
  if ((v6 ? parseIPv6Groups(addr) : parseIPv4Number(addr)) === undefined) return false;
  if (slash === -1) return true;
  const len = s.slice(slash + 1);
  return /^(0|[1-9][0-9]{0,2})$/.test(len) && Number(len) <= (v6 ? 128 : 32);
}

/** The string formats of every schema, one definition each (a MAC in `:`/`-` separated or bare hex). */
const FORMATS: Record<string, (s: string) => boolean> = {
  'date-time': (s) => DATE_TIME.test(s) && !Number.isNaN(Date.parse(s)),
  'ip-prefix': (s) => isAddressOrPrefix(s, false),
  cidr: (s) => isAddressOrPrefix(s, true),
  mac: (s) => /^[0-9a-f]{2}([:-]?[0-9a-f]{2}){5}$/i.test(s) && (s.length === 12 || s.length === 17),
};

const FORMAT_WORDS: Record<string, string> = {
  'date-time': 'expected an RFC 3339 date-time',
  'ip-prefix': 'expected an IPv4/IPv6 address or prefix',
  cidr: 'expected a CIDR prefix (e.g. 192.0.2.0/24)',
  mac: 'expected a MAC address (aa:bb:cc:dd:ee:ff)',
};

/** Teach an ajv instance our formats (also fastify's, for the API bodies). */
export function addFormats<A extends Pick<Ajv2020, 'addFormat'>>(ajv: A): A {
  for (const [name, validate] of Object.entries(FORMATS)) ajv.addFormat(name, { type: 'string', validate });
  return ajv;
}

let engines: { all: Ajv2020; first: Ajv2020 } | undefined;

function engine(firstOnly: boolean): Ajv2020 {
  if (engines === undefined) {
    const make = (allErrors: boolean): Ajv2020 => {
      const ajv = new Ajv2020({ allErrors, strict: true, allowUnionTypes: true, useDefaults: false, coerceTypes: false });
      addFormats(ajv);
      return ajv;
    };
    engines = { all: make(true), first: make(false) };
  }
  return firstOnly ? engines.first : engines.all;
}

export interface Compiled<T> {
  /** True when `v` is valid; otherwise issues() says why. */
  (v: unknown): v is T;
  /** The failures of the last call. */
  issues(): SchemaIssue[];
}

const compiled = [new WeakMap<object, ValidateFunction>(), new WeakMap<object, ValidateFunction>()] as const;

/**
 * Compile `schema` (once per schema object and mode). `firstOnly` stops at the first failure,
 * for large documents where one reason is enough (a 200 000-subscriber bundle). A schema ajv
 * refuses is a fault of ours: DC_INTERNAL.
 */
export function compileSchema<T = unknown>(schema: object, opts: { firstOnly?: boolean } = {}): Compiled<T> {
  const firstOnly = opts.firstOnly === true;
  const cache = compiled[firstOnly ? 1 : 0];
  let fn = cache.get(schema);
  if (fn === undefined) {
    try {
      fn = engine(firstOnly).compile(schema);
    } catch (e) {
      throw new DuocellError('DC_INTERNAL', `schema does not compile: ${(e as Error).message}`, { cause: e });
    }
    cache.set(schema, fn);
  }
  const v = fn;
  const check = ((x: unknown) => v(x) === true) as Compiled<T>;
  check.issues = () => issuesOf(v.errors ?? []);
  return check;
}

function pointerSegments(pointer: string): Array<string | number> {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^(0|[1-9]\d*)$/.test(s) ? Number(s) : s));
}

const a = (t: string): string => (t === 'integer' ? 'an integer' : `a${/^[aeiou]/.test(t) ? 'n' : ''} ${t}`);

function ourMessage(e: ErrorObject): string {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'enum':
      return `expected one of ${(p.allowedValues as unknown[]).map((x) => JSON.stringify(x)).join('|')}`;
    case 'const':
      return `expected ${JSON.stringify(p.allowedValue)}`;
    case 'type':
      return `expected ${String(p.type).split(',').map(a).join(' or ')}`;
    case 'minLength':
      return `expected at least ${String(p.limit)} character(s)`;
    case 'maxLength':
      return `expected at most ${String(p.limit)} character(s)`;
    case 'pattern':
      return `does not match ${String(p.pattern)}`;
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return `expected ${String(p.comparison)} ${String(p.limit)}`;
    case 'minItems':
      return `expected at least ${String(p.limit)} item(s)`;
    case 'maxItems':
      return `expected at most ${String(p.limit)} item(s)`;
    case 'uniqueItems':
      return `items ${String(p.j)} and ${String(p.i)} are the same`;
    case 'format':
      return FORMAT_WORDS[String(p.format)] ?? `expected the format ${String(p.format)}`;
    case 'oneOf':
    case 'anyOf':
      return 'matches no alternative';
    default:
      return e.message ?? 'is invalid';
  }
}

/**
 * ajv's failures in our shape. The field of `required` and `additionalProperties` joins the
 * path; an alternative's noise (anyOf/oneOf summaries when a branch said more, the `null`
 * branch of "X or null", the `if` summary beside its `then` branch's failure) is left out.
 */
export function issuesOf(errors: readonly ErrorObject[]): SchemaIssue[] {
  const out: SchemaIssue[] = [];
  for (const e of errors) {
    if ((e.keyword === 'anyOf' || e.keyword === 'oneOf') && errors.length > 1) continue;
    if (e.keyword === 'if') continue; // the `then` branch has said what failed
    if (e.keyword === 'type' && (e.params as { type?: unknown }).type === 'null') continue;
    const path = pointerSegments(e.instancePath);
    const p = e.params as { missingProperty?: string; additionalProperty?: string };
    if (e.keyword === 'required' && p.missingProperty !== undefined) out.push({ path: [...path, p.missingProperty], keyword: e.keyword, message: 'required' });
    else if (e.keyword === 'additionalProperties' && p.additionalProperty !== undefined) out.push({ path: [...path, p.additionalProperty], keyword: e.keyword, message: 'unknown field' });
    else out.push({ path, keyword: e.keyword, message: ourMessage(e) });
  }
  return out;
}

/** `root.a[0].b`: the board profile's way. */
export function dottedPath(root: string, path: ReadonlyArray<string | number>): string {
  return path.reduce<string>((s, k) => (typeof k === 'number' ? `${s}[${k}]` : `${s}.${k}`), root);
}

/** `/a/0/b`: a JSON pointer (RFC 6901), a bundle's way; `/` for the root. */
export function pointerPath(path: ReadonlyArray<string | number>): string {
  return path.length === 0 ? '/' : path.map((k) => `/${String(k).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}

/** `a.0.b`: the page's input names. */
export function fieldPath(path: ReadonlyArray<string | number>): string {
  return path.join('.');
}

/** One failure as the API reports it in `error.fields` (and the board and bundle errors in `detail.fields`). */
export interface FieldError {
  path: string;
  message: string;
}

/** An issue as a field of the API's error shape, worded for the page (`colour`: is not a known field). */
export function toField(i: SchemaIssue, root = 'body'): FieldError {
  const message = i.keyword === 'required' ? 'is required' : i.keyword === 'additionalProperties' ? 'is not a known field' : i.message;
  return { path: i.path.length === 0 ? root : fieldPath(i.path), message };
}

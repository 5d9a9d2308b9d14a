import fs from 'node:fs';
import { EXIT, type CliContext, type Command } from '../command.js';
import { DuocellError } from '../../core/errors.js';
import { loadBoard } from '../../core/board.js';
import type { Store } from '../../store/index.js';
import {
  BUNDLE_SCHEMA,
  MAX_BUNDLE_BYTES,
  OtaService,
  boardKeyTexts,
  boardOtaUrl,
  checkUrl,
  generateKeyPair,
  makeEnvelope,
  parseDetachedSignature,
  parseDocument,
  parsePrivateKey,
  parsePublicKey,
  keyIdOf,
  signDocument,
  trustedKey,
  verifyBundle,
} from '../../ota/index.js';
import { STORE_FLAGS, parseStrict, printRecord, printTable, str, usageError, withStore } from './subscribers.js';

const HELP = `usage: duocell ota keygen --out PREFIX [--force]
       duocell ota sign DOCUMENT --key PREFIX.key [--out FILE] [--detached]
       duocell ota verify BUNDLE [--sig FILE] [--pub KEY] [--offline] [--json]
       duocell ota apply BUNDLE [--sig FILE] [--json]
       duocell ota status [--json]
       duocell ota rollback
       duocell ota keys list [--json] | keys add KEY [--comment TEXT] | keys rm KEYID
       duocell ota config [--cell-id ID] [--url URL|none]
       duocell ota schema

Policy bundles are JSON documents (see "duocell ota schema" and docs/ota.md) signed with
Ed25519. The signature covers the document's exact bytes; "sign" wraps document and signature
in one envelope (or, with --detached, writes the signature alone to DOCUMENT.sig).
The box trusts the keys of its board profile (--board NAME or $DUOCELL_BOARD) and the keys
added with "keys add" (a base64 or hex raw key, a PEM, or a file holding one). It refuses
unsigned, badly signed, expired, foreign-target, schema-invalid and older-or-equal bundles,
each with its own DC_OTA_* code, before writing anything. "apply" is one transaction;
"rollback" returns to the version before the last apply (one step; the rolled-back version
stays refused). "verify --offline" checks only signature, schema and dates against --pub keys
(for the operator's workstation; no state directory needed).

options:
  --state-dir DIR   state directory (default $DUOCELL_STATE_DIR or /var/lib/duocell)
  --board NAME      board profile whose trusted keys to use (default $DUOCELL_BOARD)
  --cell-id ID      this cell's id for target checks (default: the stored cell id)
  --json            machine-readable output (verify, apply, status, keys list)

exit codes: 0 ok · 1 refused (the DC_OTA_* code is printed) · 2 usage · 69 state unavailable`;

const FLAGS = {
  ...STORE_FLAGS,
  out: 'string',
  force: 'boolean',
  key: 'string',
  detached: 'boolean',
  sig: 'string',
  pub: 'string',
  offline: 'boolean',
  board: 'string',
  'cell-id': 'string',
  comment: 'string',
  url: 'string',
  json: 'boolean',
} as const;

type Flags = Record<string, string | boolean>;

function readText(file: string, what: string, max = MAX_BUNDLE_BYTES): string {
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw usageError(`${what}: ${file} is not a regular file`);
    if (st.size > max) throw new DuocellError('DC_OTA_MALFORMED', `${what}: ${file} is larger than ${max} bytes`);
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof DuocellError) throw e;
    throw usageError(`${what}: cannot read ${file}: ${(e as Error).message}`);
  }
}

/** The bundle bytes: an envelope file, or a bare document plus a detached signature file. */
function readBundle(file: string, flags: Flags): string {
  const text = readText(file, 'bundle');
  const sig = str(flags, 'sig');
  if (sig === undefined) return text;
  return makeEnvelope(text, parseDetachedSignature(readText(sig, '--sig', 64 * 1024)));
}

/** A key argument: the key itself, or a file holding it. */
function keyText(arg: string): string {
  if (/^[A-Za-z0-9+/]{43}=$/.test(arg) || /^[0-9a-fA-F]{64}$/.test(arg) || arg.startsWith('-----BEGIN')) return arg;
  return readText(arg, 'key', 16 * 1024);
}

function boardKeys(ctx: CliContext, flags: Flags): { keys: string[]; url: string | null } {
  const name = str(flags, 'board') ?? ctx.env.DUOCELL_BOARD;
  if (name === undefined || name === '') return { keys: [], url: null };
  const b = loadBoard(name);
  return { keys: boardKeyTexts(b), url: boardOtaUrl(b) };
}

function service(ctx: CliContext, flags: Flags, store: Store): OtaService {
  const b = boardKeys(ctx, flags);
  const extra = str(flags, 'pub');
  const cellId = str(flags, 'cell-id') ?? ctx.env.DUOCELL_CELL_ID;
  return new OtaService({
    store,
    boardKeys: [...b.keys, ...(extra !== undefined ? [keyText(extra)] : [])],
    ...(cellId !== undefined && cellId !== '' ? { cellId } : {}),
    ...(b.url !== null ? { url: b.url } : {}),
  });
}

function writeNew(file: string, data: string, mode: number, force: boolean): void {
  try {
    fs.writeFileSync(file, data, { mode, flag: force ? 'w' : 'wx' });
  } catch (e) {
    const c = (e as NodeJS.ErrnoException).code;
    throw usageError(c === 'EEXIST' ? `${file} exists (use --force to overwrite)` : `cannot write ${file}: ${(e as Error).message}`);
  }
}

const ota: Command = {
  name: 'ota',
  summary: 'signed policy bundles: keygen, sign, verify, apply, status, rollback',
  help: HELP,
  async run(args, ctx) {
    const [sub, ...rest] = args;
    switch (sub) {
      case 'keygen': {
        const { flags } = parseStrict(rest, FLAGS, { min: 0, max: 0, usage: 'duocell ota keygen --out PREFIX [--force]' });
        const out = str(flags, 'out');
        if (out === undefined || out === '') throw usageError('keygen needs --out PREFIX (writes PREFIX.key and PREFIX.pub)');
        const k = generateKeyPair();
        writeNew(`${out}.key`, k.privatePem, 0o600, flags.force === true);
        writeNew(`${out}.pub`, `${k.publicB64}\n`, 0o644, flags.force === true);
        printRecord(ctx, { keyId: k.keyId, publicKey: k.publicB64, privateKeyFile: `${out}.key`, publicKeyFile: `${out}.pub` });
        return EXIT.OK;
      }
      case 'sign': {
        const { flags, positional } = parseStrict(rest, FLAGS, { min: 1, max: 1, usage: 'duocell ota sign DOCUMENT --key FILE [--out FILE] [--detached]' });
        const keyFile = str(flags, 'key');
        if (keyFile === undefined) throw usageError('sign needs --key FILE (a private key from "ota keygen")');
        const doc = readText(positional[0]!, 'document');
        parseDocument(doc); // refuse to sign what every box would refuse
        const entry = signDocument(doc, parsePrivateKey(readText(keyFile, '--key', 16 * 1024)));
        const detached = flags.detached === true;
        const data = detached ? JSON.stringify([entry]) + '\n' : makeEnvelope(doc, [entry]) + '\n';
        const out = str(flags, 'out') ?? (detached ? `${positional[0]}.sig` : undefined);
        if (out === undefined) ctx.io.out(data.trimEnd());
        else {
          writeNew(out, data, 0o644, true);
          ctx.io.err(`signed with key ${entry.keyId}: ${out}`);
        }
        return EXIT.OK;
      }
      case 'verify': {
        const { flags, positional } = parseStrict(rest, FLAGS, { min: 1, max: 1, usage: 'duocell ota verify BUNDLE [--sig FILE] [--pub KEY] [--offline]' });
        const bytes = readBundle(positional[0]!, flags);
        const report = (vb: ReturnType<typeof verifyBundle>): number => {
          printRecord(ctx, {
            ok: true,
            version: vb.doc.version,
            kind: vb.doc.kind,
            ...(vb.doc.kind === 'delta' ? { base: vb.doc.base } : {}),
            keyId: vb.keyId,
            sha256: vb.sha256,
            issuedAt: vb.doc.issuedAt,
            expiresAt: vb.doc.expiresAt ?? null,
            target: vb.doc.target === 'all' ? 'all' : vb.doc.target.cells,
            subscribers: 'full' in vb.content ? vb.content.full.subscribers.length : vb.content.delta.upsert.subscribers.length,
          });
          return EXIT.OK;
        };
        if (flags.offline === true) {
          const pub = str(flags, 'pub');
          const texts = [...boardKeys(ctx, flags).keys, ...(pub !== undefined ? [keyText(pub)] : [])];
          if (texts.length === 0) throw usageError('verify --offline needs --pub KEY or --board NAME');
          const cellId = str(flags, 'cell-id');
          return report(verifyBundle(bytes, { trustedKeys: texts.map((t) => trustedKey(t, 'flag')), ...(cellId !== undefined ? { cellId } : { cellId: null }) }));
        }
        return withStore(ctx, flags, (s) => report(service(ctx, flags, s).verify(bytes)));
      }
      case 'apply': {
        const { flags, positional } = parseStrict(rest, FLAGS, { min: 1, max: 1, usage: 'duocell ota apply BUNDLE [--sig FILE]' });
        if (flags.pub !== undefined) throw usageError('apply trusts only the board and stored keys; add a key with "ota keys add"');
        const bytes = readBundle(positional[0]!, flags);
        return withStore(ctx, flags, (s) => {
          const r = service(ctx, flags, s).apply(bytes, 'cli');
          if (ctx.json) ctx.io.out(JSON.stringify(r));
          else ctx.io.out(`applied bundle version ${r.version} (${r.kind}, was ${r.previousVersion}, key ${r.keyId})`);
          return EXIT.OK;
        });
      }
      case 'status': {
        const { flags } = parseStrict(rest, FLAGS, { min: 0, max: 0, usage: 'duocell ota status' });
        return withStore(ctx, flags, (s) => {
          const st = service(ctx, flags, s).status();
          printRecord(ctx, { ...st, lastError: st.lastError === null ? null : `${st.lastError.code}: ${st.lastError.message} (${st.lastError.at})` });
          return EXIT.OK;
        });
      }
      case 'rollback': {
        const { flags } = parseStrict(rest, FLAGS, { min: 0, max: 0, usage: 'duocell ota rollback' });
        return withStore(ctx, flags, (s) => {
          const r = service(ctx, flags, s).rollback();
          ctx.io.out(ctx.json ? JSON.stringify(r) : `rolled back from version ${r.from} to ${r.version}`);
          return EXIT.OK;
        });
      }
      case 'keys': {
        const [op, ...more] = rest;
        if (op === 'list') {
          const { flags } = parseStrict(more, FLAGS, { min: 0, max: 0, usage: 'duocell ota keys list' });
          return withStore(ctx, flags, (s) => {
            const b = boardKeys(ctx, flags).keys.map((k) => ({ keyId: keyIdOf(parsePublicKey(k)), publicKey: k.trim(), source: 'board', comment: null as string | null }));
            const st = s.listTrustedKeys().map((k) => ({ keyId: k.keyId, publicKey: k.publicKey, source: 'store', comment: k.comment }));
            const all = [...b, ...st];
            if (ctx.json) ctx.io.out(JSON.stringify(all));
            else printTable(ctx, ['KEY ID', 'SOURCE', 'PUBLIC KEY', 'COMMENT'], all.map((k) => [k.keyId, k.source, k.publicKey, k.comment ?? '']));
            return EXIT.OK;
          });
        }
        if (op === 'add') {
          const { flags, positional } = parseStrict(more, FLAGS, { min: 1, max: 1, usage: 'duocell ota keys add KEY|FILE [--comment TEXT]' });
          const k = trustedKey(keyText(positional[0]!), 'store');
          const raw = k.key.export({ format: 'der', type: 'spki' }).subarray(-32).toString('base64');
          const comment = str(flags, 'comment') ?? null;
          if (comment !== null && comment.length > 200) throw usageError('--comment: at most 200 characters');
          return withStore(ctx, flags, (s) => {
            s.addTrustedKey(k.keyId, raw, comment, 'cli');
            ctx.io.out(ctx.json ? JSON.stringify({ added: k.keyId }) : `trusted key ${k.keyId}`);
            return EXIT.OK;
          });
        }
        if (op === 'rm') {
          const { flags, positional } = parseStrict(more, FLAGS, { min: 1, max: 1, usage: 'duocell ota keys rm KEYID' });
          if (!/^[0-9a-f]{16}$/.test(positional[0]!)) throw usageError('KEYID: 16 hex digits (see "ota keys list")');
          return withStore(ctx, flags, (s) => {
            s.removeTrustedKey(positional[0]!, 'cli');
            ctx.io.out(ctx.json ? JSON.stringify({ removed: positional[0] }) : `removed key ${positional[0]}`);
            return EXIT.OK;
          });
        }
        throw usageError('usage: duocell ota keys list|add KEY|rm KEYID');
      }
      case 'config': {
        const { flags } = parseStrict(rest, FLAGS, { min: 0, max: 0, usage: 'duocell ota config [--cell-id ID] [--url URL|none]' });
        const cell = str(flags, 'cell-id');
        const url = str(flags, 'url');
        if (cell === undefined && url === undefined) throw usageError('nothing to set: --cell-id and/or --url');
        if (cell !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(cell)) throw usageError('--cell-id: 1-128 characters [A-Za-z0-9._:-]');
        if (url !== undefined && url !== 'none') {
          if (url.length > 2048) throw usageError('--url: too long');
          checkUrl(url);
        }
        return withStore(ctx, flags, (s) => {
          if (cell !== undefined) s.setSetting('cell-id', cell, 'cli');
          if (url !== undefined) s.setSetting('ota-url', url === 'none' ? null : url, 'cli');
          ctx.io.out(ctx.json ? JSON.stringify({ cellId: s.getSetting('cell-id') ?? null, url: s.getSetting('ota-url') ?? null }) : 'saved');
          return EXIT.OK;
        });
      }
      case 'schema': {
        parseStrict(rest, FLAGS, { min: 0, max: 0, usage: 'duocell ota schema' });
        ctx.io.out(JSON.stringify(BUNDLE_SCHEMA, null, 2));
        return EXIT.OK;
      }
      default:
        throw usageError(
          sub === undefined
            ? 'missing sub-command (keygen|sign|verify|apply|status|rollback|keys|config|schema)'
            : `unknown sub-command ${JSON.stringify(sub.slice(0, 32))} (keygen|sign|verify|apply|status|rollback|keys|config|schema)`,
        );
    }
  },
};

export default ota;

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { DuocellError, isDuocellError } from '../../src/core/errors.js';
import type { CliContext, Command } from '../../src/cli/command.js';
import subscribersCmd from '../../src/cli/commands/subscribers.js';
import policyCmd from '../../src/cli/commands/policy.js';
import otaCmd from '../../src/cli/commands/ota.js';
import { STEERING_MODES, Store } from '../../src/store/index.js';
import { BUNDLE_FORMAT, OtaService, generateKeyPair, makeEnvelope, parsePrivateKey, signDocument } from '../../src/ota/index.js';

/**
 * Fuzz the OTA bundle path and every CLI argument path of the store commands.
 *
 * Bundles (98 % of inputs): a random valid document, then structurally mutated (keys dropped,
 * types swapped, hostile strings, huge numbers, deep nesting) and signed with the trusted
 * key — so the schema and content checks see it — or signed by a stranger, byte-mutated,
 * truncated, or plain noise. Each goes through OtaService.apply() on one store. Checked: a
 * refusal is a DuocellError with a code, and leaves the version, the audit log and the policy
 * content untouched; an accepted bundle moves the version.
 * CLI (2 %): random argv from the commands' own vocabulary plus hostile values, through the
 * Command objects as main() calls them. Checked: an exit code or a DuocellError, and a failed
 * command changed nothing. All file arguments point into a private temporary directory.
 */

export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

type R = () => number;
const int = (r: R, n: number): number => Math.floor(r() * n);
const pick = <T>(r: R, a: readonly T[]): T => a[int(r, a.length)]!;

const HOSTILE = [
  '',
  ' ',
  '$(reboot)',
  '`id`',
  '; rm -rf /',
  '../../etc/passwd',
  '\u0000',
  '\u202e',
  'é',
  'a'.repeat(70),
  '__proto__',
  'constructor',
  '-1',
  '1e400',
  'NaN',
  '0x10',
  '10.0.0.0/33',
  '::ffff:1.2.3.4',
  '2001:db8::/129',
  'fe80::1%eth0',
  '02:00:00:00:00:0g',
  'default',
  'inherit',
  '30:70',
  '100:0',
];

function addr(r: R): string {
  return r() < 0.6
    ? `10.${int(r, 4)}.${int(r, 4)}.${int(r, 256)}${r() < 0.3 ? `/${pick(r, [8, 16, 24, 30, 32])}` : ''}`
    : `2001:db8:${int(r, 8).toString(16)}::${int(r, 65536).toString(16)}${r() < 0.4 ? `/${pick(r, [48, 56, 64, 128])}` : ''}`;
}

function validDoc(r: R, version: number): Record<string, unknown> {
  const pol = Array.from({ length: int(r, 3) }, (_, i) => {
    const p: Record<string, unknown> = { name: `p${i}` };
    if (r() < 0.5) p.maxSessionsPerUe = int(r, 100);
    if (r() < 0.5) p.maxSubflowsPerSession = int(r, 9);
    if (r() < 0.3) p.steeringMode = pick(r, STEERING_MODES);
    if (r() < 0.3) {
      const c = int(r, 101);
      p.ratio = { cellular: c, wlan: 100 - c };
    }
    if (r() < 0.3) p.allowedNetworks = [addr(r)];
    if (r() < 0.3) p.interceptPorts = [1 + int(r, 65535)];
    return p;
  });
  const used = new Set<string>();
  const subs = Array.from({ length: int(r, 6) }, (_, i) => {
    const a = Array.from({ length: int(r, 3) }, () => addr(r)).filter((x) => {
      const k = x.includes('/') ? x : `${x}/${x.includes(':') ? 128 : 32}`;
      if (used.has(k)) return false;
      used.add(k);
      return true;
    });
    const s: Record<string, unknown> = { name: `s${i}`, addresses: a };
    if (pol.length > 0 && r() < 0.5) s.policy = pick(r, pol).name;
    if (r() < 0.2) s.enabled = false;
    return s;
  });
  const doc: Record<string, unknown> = {
    format: BUNDLE_FORMAT,
    version,
    issuedAt: new Date(Date.now() - 60_000).toISOString(),
    target: r() < 0.8 ? 'all' : { cells: r() < 0.5 ? ['fuzz-cell'] : ['other'] },
    kind: 'full',
    policy: { policies: pol, subscribers: subs, nserverLimits: r() < 0.3 ? [{ prefix: addr(r), maxSessions: int(r, 50) }] : [], proxies: [] },
  };
  if (r() < 0.1) doc.expiresAt = new Date(Date.now() + (r() < 0.5 ? -1 : 1) * 3_600_000).toISOString();
  return doc;
}

function randomValue(r: R, depth = 0): unknown {
  switch (int(r, depth > 3 ? 6 : 9)) {
    case 0:
      return null;
    case 1:
      return r() < 0.5;
    case 2:
      return pick(r, [0, -1, 1.5, 2 ** 53, -(2 ** 31), 65536, 1e308, 9]);
    case 3:
      return pick(r, HOSTILE);
    case 4:
      return addr(r);
    case 5:
      return `x${int(r, 1000)}`;
    case 6:
      return Array.from({ length: int(r, 4) }, () => randomValue(r, depth + 1));
    case 7: {
      const o: Record<string, unknown> = {};
      for (let i = int(r, 4); i > 0; i--) o[pick(r, ['name', 'version', 'policy', 'addresses', 'kind', '__proto__', 'x', 'ratio'])] = randomValue(r, depth + 1);
      return o;
    }
    default: {
      // deep nesting
      let v: unknown = 1;
      for (let i = int(r, 2000); i > 0; i--) v = [v];
      return v;
    }
  }
}

/** Change one random spot of a JSON value (in place where possible). */
function mutate(r: R, v: unknown, depth = 0): unknown {
  if (Array.isArray(v)) {
    if (v.length === 0 || r() < 0.2) return r() < 0.5 ? [...v, randomValue(r)] : randomValue(r);
    const i = int(r, v.length);
    if (r() < 0.2) v.splice(i, 1);
    else v[i] = mutate(r, v[i], depth + 1);
    return v;
  }
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    const k = r();
    if (keys.length === 0 || k < 0.1) o[pick(r, ['extra', 'base', 'upsert', 'remove', 'kind', 'expiresAt'])] = randomValue(r);
    else if (k < 0.25) delete o[pick(r, keys)];
    else if (k < 0.35 && depth > 0) return randomValue(r);
    else {
      const key = pick(r, keys);
      o[key] = mutate(r, o[key], depth + 1);
    }
    return o;
  }
  return randomValue(r);
}

export interface FuzzResult {
  iterations: number;
  rejected: Record<string, number>;
  applied: number;
  cli: number;
}

function invariant(ok: boolean, what: string): void {
  if (!ok) throw new Error(`fuzz invariant broken: ${what}`);
}

export async function fuzz(iterations: number, seed = 1): Promise<FuzzResult> {
  const r = prng(seed);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-fuzz-ota-'));
  const op = generateKeyPair();
  const stranger = generateKeyPair();
  const opKey = parsePrivateKey(op.privatePem);
  const strangerKey = parsePrivateKey(stranger.privatePem);
  const rejected: Record<string, number> = {};
  let applied = 0;
  let cli = 0;
  const note = (code: string): void => void (rejected[code] = (rejected[code] ?? 0) + 1);
  // bundles go to an in-memory store (same code path, no fsync per accepted bundle)
  const store = await Store.open({ file: ':memory:', backups: false });
  const ota = new OtaService({ store, boardKeys: [op.publicB64], cellId: 'fuzz-cell' });
  const cliState = path.join(dir, 'cli');
  const files = path.join(dir, 'files');
  fs.mkdirSync(files);
  fs.writeFileSync(path.join(files, 'op.key'), op.privatePem);
  fs.writeFileSync(path.join(files, 'op.pub'), op.publicB64);
  fs.writeFileSync(path.join(files, 'pw'), 'pw\n');
  const heap0 = process.memoryUsage().heapUsed;
  let version = 1;
  try {
    for (let i = 0; i < iterations; i++) {
      if (r() < 0.02) {
        cli++;
        await cliOnce(r, cliState, files, note);
        continue;
      }
      const doc = validDoc(r, r() < 0.1 ? Math.max(1, version - int(r, 2)) : version + 1 + int(r, 3));
      let text: string;
      const kind = r();
      let input: string | Buffer;
      if (kind < 0.15) {
        text = JSON.stringify(doc);
        input = makeEnvelope(text, [signDocument(text, opKey)]);
      } else if (kind < 0.7) {
        for (let m = 1 + int(r, 3); m > 0; m--) mutate(r, doc);
        text = JSON.stringify(doc) ?? 'null';
        input = makeEnvelope(text, [signDocument(text, r() < 0.9 ? opKey : strangerKey)]);
      } else if (kind < 0.9) {
        text = JSON.stringify(doc);
        const b = Buffer.from(makeEnvelope(text, r() < 0.8 ? [signDocument(text, opKey)] : []));
        const cut = r() < 0.3 ? int(r, b.length) : b.length;
        const out = b.subarray(0, cut);
        for (let f = int(r, 4); f > 0 && out.length > 0; f--) out[int(r, out.length)] ^= 1 << int(r, 8);
        input = out;
      } else {
        input = Buffer.from(Array.from({ length: int(r, 300) }, () => int(r, 256)));
      }
      const st0 = store.otaState();
      const audit0 = store.listAudit({ limit: 1 })[0]?.id ?? 0;
      const digest0 = i % 200 === 0 ? store.policyDigest() : '';
      try {
        const res = ota.apply(input, 'push');
        applied++;
        invariant(res.version > st0.highestVersion, 'applied a version that is not newer');
        version = res.version;
      } catch (e) {
        if (!isDuocellError(e)) throw new Error(`bundle input ${i}: not a DuocellError: ${(e as Error)?.stack ?? String(e)}`);
        note(e.code);
        invariant(store.otaState().currentVersion === st0.currentVersion, `refused bundle ${e.code} moved the version`);
        invariant((store.listAudit({ limit: 1 })[0]?.id ?? 0) === audit0, `refused bundle ${e.code} wrote an audit row`);
        if (digest0 !== '') invariant(store.policyDigest() === digest0, `refused bundle ${e.code} changed the policy`);
      }
      if (i % 1000 === 0) {
        invariant(store.integrityCheck() === 'ok', 'integrity_check');
        invariant(process.memoryUsage().heapUsed - heap0 < 512 * 1024 * 1024, 'unbounded heap growth');
      }
    }
  } finally {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return { iterations, rejected, applied, cli };
}

const COMMANDS: Record<string, { cmd: Command; subs: string[]; flags: string[] }> = {
  subscribers: { cmd: subscribersCmd, subs: ['list', 'show', 'add', 'set', 'rm', 'frob'], flags: ['--policy', '--addr', '--mac', '--disabled', '--enable', '--disable', '--limit', '--offset', '--password-file'] },
  policy: { cmd: policyCmd, subs: ['show', 'set', 'rm', 'x'], flags: ['--addr', '--max-sessions', '--max-subflows', '--max-server-sessions', '--mode', '--ratio', '--networks', '--ports'] },
  ota: { cmd: otaCmd, subs: ['verify', 'apply', 'status', 'rollback', 'keys', 'config', 'schema', 'sign', 'bogus'], flags: ['--sig', '--pub', '--offline', '--cell-id', '--url', '--comment', '--key', '--detached', '--out'] },
};

async function cliOnce(r: R, state: string, files: string, note: (c: string) => void): Promise<void> {
  const name = pick(r, Object.keys(COMMANDS));
  const c = COMMANDS[name]!;
  const fileVal = (): string => path.join(files, pick(r, ['op.key', 'op.pub', 'pw', 'missing', 'out.json', 'sub/x']));
  const value = (): string =>
    pick(r, [
      () => pick(r, HOSTILE),
      () => addr(r),
      () => `s${int(r, 5)}`,
      () => `p${int(r, 3)}`,
      () => String(int(r, 20)),
      () => `${addr(r)},${addr(r)}`,
      fileVal,
      () => pick(r, ['ratio', 'priority', 'active-standby', 'list', 'add', 'rm', 'https://example.invalid/b', 'file:///etc/passwd']),
    ])();
  // only --out writes a file: it always points into the private directory
  const flagValue = (f: string): string => (f === '--out' ? path.join(files, 'out.json') : f === '--sig' || f === '--key' || f === '--password-file' ? fileVal() : value());
  const argv: string[] = [];
  if (r() < 0.95) argv.push(pick(r, c.subs));
  if (argv[0] === 'keys') argv.push(pick(r, ['list', 'add', 'rm', 'x']));
  for (let n = int(r, 5); n > 0; n--) {
    const k = r();
    if (k < 0.35) argv.push(value());
    else if (k < 0.9) {
      const f = pick(r, [...c.flags, '--state-dir', '--bogus', '--']);
      if (f === '--state-dir') continue; // state stays in the private directory
      argv.push(f);
      if (r() < 0.85) argv.push(flagValue(f));
    } else {
      const f = pick(r, c.flags);
      argv.push(`${f}=${flagValue(f)}`);
    }
  }
  const args = [...argv, '--state-dir', state];
  const lines: string[] = [];
  const ctx: CliContext = { io: { out: (l) => lines.push(l), err: (l) => lines.push(l) }, json: r() < 0.5, env: { DUOCELL_STATE_DIR: state } };
  const probe = await Store.open({ dir: state, backups: false });
  const before = { audit: probe.listAudit({ limit: 1 })[0]?.id ?? 0, digest: probe.policyDigest() };
  try {
    const code = await c.cmd.run(args, ctx);
    invariant([0, 1, 2, 69].includes(code), `exit code ${code}`);
    if (code !== 0) invariant((probe.listAudit({ limit: 1 })[0]?.id ?? 0) === before.audit, `failed CLI (${code}) wrote an audit row: ${argv.join(' ')}`);
  } catch (e) {
    if (!isDuocellError(e)) throw new Error(`cli ${name} ${JSON.stringify(argv)}: not a DuocellError: ${(e as Error)?.stack ?? String(e)}`);
    note(`cli:${e.code}`);
    invariant((probe.listAudit({ limit: 1 })[0]?.id ?? 0) === before.audit, `failed CLI ${e.code} wrote an audit row: ${argv.join(' ')}`);
    invariant(probe.policyDigest() === before.digest, `failed CLI ${e.code} changed the policy: ${argv.join(' ')}`);
  } finally {
    probe.close();
  }
}

// `node --import ./scripts/ts-loader.mjs bench/fuzz/ota.ts [ITERATIONS] [SEED]`
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const n = Number(process.argv[2] ?? 100_000);
  const res = await fuzz(n, Number(process.argv[3] ?? 1));
  process.stdout.write(JSON.stringify(res, null, 2) + '\n');
}

export { DuocellError };

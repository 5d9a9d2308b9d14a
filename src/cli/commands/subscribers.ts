import fs from 'node:fs';
import { EXIT, parseFlags, type CliContext, type Command } from '../command.js';
import { DuocellError, isDuocellError } from '../../core/errors.js';
import { Store } from '../../store/index.js';
import type { SubscriberRecord } from '../../store/index.js';

/** Flags every store command takes. */
export const STORE_FLAGS = { 'state-dir': 'string' } as const;

export function usageError(msg: string): DuocellError {
  return new DuocellError('DC_USAGE', msg);
}

/** parseFlags, refusing unknown flags and checking the positional count. */
export function parseStrict(
  args: readonly string[],
  spec: Readonly<Record<string, 'string' | 'boolean'>>,
  positional: { min: number; max: number; usage: string },
): { flags: Record<string, string | boolean>; positional: string[] } {
  const r = parseFlags(args, spec);
  if (r.unknown.length > 0) throw usageError(`unknown or incomplete option ${JSON.stringify(r.unknown[0]!.slice(0, 64))}; usage: ${positional.usage}`);
  if (r.positional.length < positional.min || r.positional.length > positional.max) throw usageError(`usage: ${positional.usage}`);
  return r;
}

export function str(flags: Record<string, string | boolean>, name: string): string | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw usageError(`--${name} needs a value`);
  return v;
}

/** A comma-separated list flag ("" → empty list). */
export function list(flags: Record<string, string | boolean>, name: string): string[] | undefined {
  const v = str(flags, name);
  if (v === undefined) return undefined;
  return v === '' ? [] : v.split(',').map((x) => x.trim()).filter((x) => x !== '');
}

export function int(flags: Record<string, string | boolean>, name: string, lo: number, hi: number): number | undefined {
  const v = str(flags, name);
  if (v === undefined) return undefined;
  if (!/^-?[0-9]{1,9}$/.test(v) || Number(v) < lo || Number(v) > hi) throw usageError(`--${name}: expected an integer ${lo}..${hi}`);
  return Number(v);
}

/**
 * Open the store (state dir from --state-dir or DUOCELL_STATE_DIR), run `fn`, close.
 * A store that cannot be opened is "unavailable" (exit 69), not a failed operation.
 */
export async function withStore(ctx: CliContext, flags: Record<string, string | boolean>, fn: (s: Store) => Promise<number> | number): Promise<number> {
  let store: Store;
  try {
    const dir = str(flags, 'state-dir');
    store = await Store.open({ ...(dir !== undefined ? { dir } : {}), env: ctx.env });
  } catch (e) {
    if (isDuocellError(e) && (e.code === 'DC_STORE_OPEN' || e.code === 'DC_STORE_BUSY' || e.code === 'DC_STORE_SCHEMA_NEWER' || e.code === 'DC_STORE_MIGRATION')) {
      if (ctx.json) ctx.io.err(JSON.stringify({ error: e.toJSON() }));
      else ctx.io.err(`duocell: ${e.code}: ${e.message}`);
      return EXIT.UNAVAILABLE;
    }
    throw e;
  }
  try {
    return await fn(store);
  } finally {
    store.close();
  }
}

/** Print an object as JSON, or as aligned `key: value` lines. */
export function printRecord(ctx: CliContext, o: Record<string, unknown>): void {
  if (ctx.json) {
    ctx.io.out(JSON.stringify(o));
    return;
  }
  const w = Math.max(...Object.keys(o).map((k) => k.length));
  for (const [k, v] of Object.entries(o)) {
    const text = v === null || v === undefined ? '-' : Array.isArray(v) ? (v.length === 0 ? '-' : v.join(', ')) : typeof v === 'object' ? JSON.stringify(v) : String(v);
    ctx.io.out(`${k.padEnd(w)}  ${text}`);
  }
}

export function printTable(ctx: CliContext, header: string[], rows: string[][]): void {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]!))).join('  ');
  ctx.io.out(line(header));
  for (const r of rows) ctx.io.out(line(r));
}

function readPassword(file: string): string {
  let text: string;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const buf = Buffer.alloc(1025);
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      text = buf.subarray(0, n).toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    throw usageError(`--password-file: cannot read ${file}: ${(e as Error).message}`);
  }
  const pw = text.split(/\r?\n/)[0] ?? '';
  if (pw.length === 0 || pw.length > 1024) throw usageError('--password-file: the first line must hold a password of 1..1024 characters');
  return pw;
}

function view(s: SubscriberRecord): Record<string, unknown> {
  return {
    name: s.name,
    policy: s.policy,
    enabled: s.enabled,
    addresses: s.addresses,
    macs: s.macs,
    credential: s.hasCredential,
    cookie: s.hasCookie,
    createdAt: new Date(s.createdAt).toISOString(),
    updatedAt: new Date(s.updatedAt).toISOString(),
  };
}

const HELP = `usage: duocell subscribers list [--limit N] [--offset N] [--json]
       duocell subscribers show NAME [--json]
       duocell subscribers add NAME [--policy P] [--addr A,B] [--mac M,N] [--disabled] [--password-file FILE]
       duocell subscribers set NAME [--policy P|default] [--addr A,B] [--mac M,N] [--enable|--disable] [--password-file FILE]
       duocell subscribers rm NAME
       duocell subscribers cookie NAME [--json]

Subscribers are the devices or users the cell serves, known by IPv4/IPv6 addresses or prefixes
(--addr, comma-separated), MAC addresses (--mac) and an optional password (scrypt-hashed; read
from the first line of --password-file, never from the command line). Each has a policy
(duocell policy show); without one the policy "default" applies.

\`cookie\` issues a new random cookie for the subscriber (RFC 8803 Cookie TLV: a Convert listener
with "cookies": "store" accepts it) and prints it once, in hex; the store keeps only its SHA-256,
and the previous cookie stops working. Give it to the cell as "cookieHex" in its listener options.

options:
  --state-dir DIR   state directory (default $DUOCELL_STATE_DIR or /var/lib/duocell)
  --json            machine-readable output (list, show)

exit codes: 0 ok · 1 refused or not found · 2 usage · 69 state database unavailable`;

const FLAGS = {
  ...STORE_FLAGS,
  limit: 'string',
  offset: 'string',
  policy: 'string',
  addr: 'string',
  mac: 'string',
  disabled: 'boolean',
  enable: 'boolean',
  disable: 'boolean',
  'password-file': 'string',
  json: 'boolean',
} as const;

const subscribers: Command = {
  name: 'subscribers',
  summary: 'list, show, add, change or remove subscribers',
  help: HELP,
  async run(args, ctx) {
    const [sub, ...rest] = args;
    const origin = 'cli' as const;
    switch (sub) {
      case 'list': {
        const { flags } = parseStrict(rest, FLAGS, { min: 0, max: 0, usage: 'duocell subscribers list [--limit N] [--offset N]' });
        const limit = int(flags, 'limit', 0, 1_000_000);
        const offset = int(flags, 'offset', 0, 1_000_000_000);
        return withStore(ctx, flags, (s) => {
          const all = s.listSubscribers({ ...(limit !== undefined ? { limit } : {}), ...(offset !== undefined ? { offset } : {}) });
          if (ctx.json) ctx.io.out(JSON.stringify(all.map(view)));
          else printTable(ctx, ['NAME', 'POLICY', 'ENABLED', 'ADDRESSES', 'MACS'], all.map((r) => [r.name, r.policy, r.enabled ? 'yes' : 'no', r.addresses.join(',') || '-', r.macs.join(',') || '-']));
          return EXIT.OK;
        });
      }
      case 'show': {
        const { flags, positional } = parseStrict(rest, FLAGS, { min: 1, max: 1, usage: 'duocell subscribers show NAME' });
        return withStore(ctx, flags, (s) => {
          const r = s.getSubscriber(positional[0]!);
          if (r === undefined) throw new DuocellError('DC_STORE_NOT_FOUND', `no subscriber ${JSON.stringify(positional[0]!.slice(0, 64))}`);
          printRecord(ctx, view(r));
          return EXIT.OK;
        });
      }
      case 'add': {
        const { flags, positional } = parseStrict(rest, FLAGS, { min: 1, max: 1, usage: 'duocell subscribers add NAME [--policy P] [--addr A,B] [--mac M] [--disabled] [--password-file FILE]' });
        if (flags.enable !== undefined || flags.disable !== undefined) throw usageError('add takes --disabled, not --enable/--disable');
        const pwFile = str(flags, 'password-file');
        const pw = pwFile === undefined ? undefined : readPassword(pwFile);
        return withStore(ctx, flags, async (s) => {
          const policy = str(flags, 'policy');
          const r = s.addSubscriber(
            { name: positional[0]!, policy: policy ?? null, enabled: flags.disabled !== true, addresses: list(flags, 'addr') ?? [], macs: list(flags, 'mac') ?? [] },
            origin,
          );
          if (pw !== undefined) await s.setSubscriberPassword(r.name, pw, origin);
          ctx.io.out(ctx.json ? JSON.stringify(view(s.getSubscriber(r.name)!)) : `added ${r.name}`);
          return EXIT.OK;
        });
      }
      case 'set': {
        const { flags, positional } = parseStrict(rest, FLAGS, { min: 1, max: 1, usage: 'duocell subscribers set NAME [--policy P] [--addr A,B] [--mac M] [--enable|--disable] [--password-file FILE]' });
        if (flags.enable === true && flags.disable === true) throw usageError('--enable and --disable together');
        if (flags.disabled !== undefined) throw usageError('set takes --enable/--disable');
        const pwFile = str(flags, 'password-file');
        const pw = pwFile === undefined ? undefined : readPassword(pwFile);
        return withStore(ctx, flags, async (s) => {
          const policy = str(flags, 'policy');
          const addresses = list(flags, 'addr');
          const macs = list(flags, 'mac');
          const r = s.updateSubscriber(
            positional[0]!,
            {
              ...(policy !== undefined ? { policy: policy === 'default' ? null : policy } : {}),
              ...(addresses !== undefined ? { addresses } : {}),
              ...(macs !== undefined ? { macs } : {}),
              ...(flags.enable === true ? { enabled: true } : flags.disable === true ? { enabled: false } : {}),
            },
            origin,
          );
          if (pw !== undefined) await s.setSubscriberPassword(r.name, pw, origin);
          ctx.io.out(ctx.json ? JSON.stringify(view(s.getSubscriber(r.name)!)) : `updated ${r.name}`);
          return EXIT.OK;
        });
      }
      case 'rm': {
        const { flags, positional } = parseStrict(rest, FLAGS, { min: 1, max: 1, usage: 'duocell subscribers rm NAME' });
        return withStore(ctx, flags, (s) => {
          s.removeSubscriber(positional[0]!, origin);
          ctx.io.out(ctx.json ? JSON.stringify({ removed: positional[0] }) : `removed ${positional[0]}`);
          return EXIT.OK;
        });
      }
      case 'cookie': {
        const { flags, positional } = parseStrict(rest, FLAGS, { min: 1, max: 1, usage: 'duocell subscribers cookie NAME' });
        return withStore(ctx, flags, (s) => {
          const c = s.issueSubscriberCookie(positional[0]!, origin);
          ctx.io.out(ctx.json ? JSON.stringify({ name: positional[0], cookieHex: c.toString('hex') }) : c.toString('hex'));
          return EXIT.OK;
        });
      }
      default:
        throw usageError(sub === undefined ? 'missing sub-command (list|show|add|set|rm|cookie)' : `unknown sub-command ${JSON.stringify(sub.slice(0, 32))} (list|show|add|set|rm|cookie)`);
    }
  },
};

export default subscribers;

import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { DuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import { parseTableCounters, type TableCounters } from './counters.js';
import { NftElements } from './elements.js';

export type { TableCounters } from './counters.js';
export { NftElements, renewalOps, renewalText, type ElementWriter, type NftProgram } from './elements.js';
export { NfTables } from './netlink.js';

/**
 * nftables and policy routing through the `nft` and `ip` programs, always with an argument
 * vector (never a shell) and rulesets passed on stdin. `nft -f` applies a whole file as one
 * transaction: either all of it takes effect or none, and the previous ruleset stays.
 * Callers pass only text they generated from validated values (see services/intercept/ruleset.ts).
 */
const log = logger('duocell:nft');
const run = promisify(execFile);

async function cmd(program: string, args: string[], code: 'DC_NFT_APPLY' | 'DC_ROUTE_COMMAND'): Promise<string> {
  try {
    return (await run(program, args, { maxBuffer: 8 << 20 })).stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new DuocellError(code, `${program} ${args.join(' ')}: ${(err.stderr ?? err.message).trim()}`, { cause: e, origin: 'kernel' });
  }
}

/** Apply a ruleset atomically (`nft -f -`). On failure nothing changed; the error says why. */
export function applyRuleset(text: string, check = false, opts: { quiet?: boolean } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('nft', check ? ['-c', '-f', '-'] : ['-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => reject(new DuocellError('DC_NFT_APPLY', `cannot run nft: ${e.message}`, { cause: e })));
    child.on('exit', (code) => {
      if (code === 0) resolve();
      else {
        if (opts.quiet !== true) log.warn({ code: 'DC_NFT_APPLY', stderr: err.trim() }, 'ruleset refused; previous ruleset kept');
        reject(new DuocellError('DC_NFT_APPLY', `nft refused the ruleset (previous one kept): ${err.trim()}`, { origin: 'kernel' }));
      }
    });
    child.stdin.end(text);
  });
}

export async function tableExists(family: 'inet' | 'ip' | 'ip6', name: string): Promise<boolean> {
  try {
    await run('nft', ['list', 'table', family, name]);
    return true;
  } catch {
    return false;
  }
}

export async function deleteTable(family: 'inet' | 'ip' | 'ip6', name: string): Promise<void> {
  if (await tableExists(family, name)) await cmd('nft', ['delete', 'table', family, name], 'DC_NFT_APPLY');
}

/** Add `addr . port` to a timeout set. */
export async function addAddrPortElement(family: 'inet', table: string, set: string, address: string, port: number, timeoutS: number): Promise<void> {
  await cmd('nft', ['add', 'element', family, table, set, '{', `${address} . ${port} timeout ${Math.max(1, Math.round(timeoutS))}s`, '}'], 'DC_NFT_APPLY');
}

export async function flushSet(family: 'inet', table: string, set: string): Promise<void> {
  await cmd('nft', ['flush', 'set', family, table, set], 'DC_NFT_APPLY');
}

export async function listSetJson(family: 'inet', table: string, set: string): Promise<Array<{ address: string; port: number; expiresS?: number }>> {
  const out = await cmd('nft', ['-j', 'list', 'set', family, table, set], 'DC_NFT_APPLY');
  const doc = JSON.parse(out) as { nftables: Array<{ set?: { elem?: unknown[] } }> };
  const elems = doc.nftables.find((x) => x.set !== undefined)?.set?.elem ?? [];
  const res: Array<{ address: string; port: number; expiresS?: number }> = [];
  for (const e of elems) {
    const el = (e as { elem?: { val?: { concat?: [string, number] }; expires?: number } }).elem;
    const concat = el?.val?.concat ?? (e as { concat?: [string, number] }).concat;
    if (concat !== undefined) res.push({ address: String(concat[0]), port: Number(concat[1]), ...(el?.expires === undefined ? {} : { expiresS: el.expires }) });
  }
  return res;
}

/** A table's named counters and per-element set counters (counters.ts); a missing table: none. */
export async function tableCounters(family: 'inet', table: string): Promise<TableCounters> {
  if (!(await tableExists(family, table))) return parseTableCounters('');
  return parseTableCounters(await cmd('nft', ['-j', 'list', 'table', family, table], 'DC_NFT_APPLY'));
}

/** `ip rule` / `ip route` for the TPROXY mark: marked packets are delivered locally. */
export async function ensureLocalDelivery(mark: number, table: number): Promise<void> {
  for (const fam of ['-4', '-6']) {
    const rules = await cmd('ip', [fam, 'rule', 'show'], 'DC_ROUTE_COMMAND');
    const m = `0x${mark.toString(16)}`;
    if (!rules.includes(`fwmark ${m}/${m} lookup ${table}`)) {
      await cmd('ip', [fam, 'rule', 'add', 'fwmark', `${m}/${m}`, 'lookup', String(table), 'priority', '90'], 'DC_ROUTE_COMMAND');
    }
    await cmd('ip', [fam, 'route', 'replace', 'local', fam === '-4' ? '0.0.0.0/0' : '::/0', 'dev', 'lo', 'table', String(table)], 'DC_ROUTE_COMMAND');
  }
}

export async function removeLocalDelivery(mark: number, table: number): Promise<void> {
  const m = `0x${mark.toString(16)}`;
  for (const fam of ['-4', '-6']) {
    await run('ip', [fam, 'rule', 'del', 'fwmark', `${m}/${m}`, 'lookup', String(table)]).catch(() => undefined);
    await run('ip', [fam, 'route', 'flush', 'table', String(table)]).catch(() => undefined);
  }
}

/**
 * `ip rule fwmark MARK/MASK lookup TABLE` for each uplink (UDP steering): replaces rules of the
 * same mark and priority that point elsewhere, leaves identical ones alone.
 */
export async function ensureMarkRules(rules: ReadonlyArray<{ mark: number; mask: number; table: number; priority: number }>): Promise<void> {
  for (const fam of ['-4', '-6']) {
    const have = await cmd('ip', [fam, 'rule', 'show'], 'DC_ROUTE_COMMAND');
    for (const r of rules) {
      const fm = `0x${r.mark.toString(16)}/0x${r.mask.toString(16)}`;
      if (have.split('\n').some((l) => l.startsWith(`${r.priority}:`) && l.includes(`fwmark ${fm} lookup ${r.table}`))) continue;
      await run('ip', [fam, 'rule', 'del', 'fwmark', fm, 'priority', String(r.priority)]).catch(() => undefined);
      await cmd('ip', [fam, 'rule', 'add', 'fwmark', fm, 'lookup', String(r.table), 'priority', String(r.priority)], 'DC_ROUTE_COMMAND');
    }
  }
}

export async function removeMarkRules(rules: ReadonlyArray<{ mark: number; mask: number; priority: number }>): Promise<void> {
  for (const fam of ['-4', '-6']) {
    for (const r of rules) await run('ip', [fam, 'rule', 'del', 'fwmark', `0x${r.mark.toString(16)}/0x${r.mask.toString(16)}`, 'priority', String(r.priority)]).catch(() => undefined);
  }
}

/**
 * The calls services/intercept makes: the `nft` program for whole rulesets, lists and flushes
 * (rare), and set elements on the hot paths (liveness renewals, M-servers) over nfnetlink,
 * falling back to the program where nfnetlink is unavailable (elements.ts).
 */
export function interceptNft(elements = new NftElements({ program: { applyRuleset } })) {
  return {
    applyRuleset,
    deleteTable,
    ensureLocalDelivery,
    removeLocalDelivery,
    flushSet,
    listSetJson,
    renewTimeoutPorts: elements.renewTimeoutPorts.bind(elements),
    addAddrPortElement: elements.addAddrPortElement.bind(elements),
    close: () => elements.close(),
  };
}

import { DuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import { ipFamily } from '../../core/net.js';
import { addSetElems, delSetElems, keyAddrPort, keyInetService, type NftOp } from '../../protocols/netlink/nftables.js';
import { NfTables } from './netlink.js';

/**
 * Set elements with a timeout, on the hot paths (the liveness renewal every livenessMs/3, an
 * M-server on detection): over a persistent nfnetlink socket (netlink.ts), no process forked.
 * Where that socket cannot be opened (no nf_tables over netlink, no npm `netlink`, no
 * permission), the same transactions go through the `nft` program, as before. The choice is made
 * once, at the first call, and logged; callers never ask which one they have.
 *
 * Renewing an element: `add` (creates it if it expired), `delete`, `add` with a fresh timeout,
 * in one transaction. Re-adding an existing element alone does not move its expiry on kernels
 * before 6.13 (nor on 6.18 when the timeout is unchanged: checked with `nft list set`), and the
 * transaction is atomic, so a present element never blinks out.
 */
const log = logger('duocell:nft');

/** What the service needs (services/intercept InterceptNft has the same two calls). */
export interface ElementWriter {
  /** Re-arm these ports in an inet_service timeout set: present afterwards, expiring timeoutMs from now. */
  renewTimeoutPorts(family: 'inet', table: string, set: string, ports: readonly number[], timeoutMs: number): Promise<void>;
  /** Add `address . port` to a timeout set (an existing element is no error). */
  addAddrPortElement(family: 'inet', table: string, set: string, address: string, port: number, timeoutS: number): Promise<void>;
}

const NAME = /^[A-Za-z][A-Za-z0-9_]{0,30}$/;

function checkNames(table: string, set: string): void {
  if (!NAME.test(table) || !NAME.test(set)) throw new DuocellError('DC_NFT_APPLY', `bad table or set name ${JSON.stringify(table)} ${JSON.stringify(set)}`, { origin: 'local' });
}

function checkPorts(ports: readonly number[]): number[] {
  const out = [...new Set(ports)];
  if (out.length === 0 || out.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) throw new DuocellError('DC_NFT_APPLY', `ports must be 1..65535: ${JSON.stringify(ports)}`, { origin: 'local' });
  return out;
}

function checkTimeoutMs(ms: number): number {
  if (!Number.isSafeInteger(ms) || ms < 1) throw new DuocellError('DC_NFT_APPLY', `timeout ${ms} ms is not a positive integer`, { origin: 'local' });
  return ms;
}

/** The ops of a renewal: add, delete, add (see the file comment). */
export function renewalOps(family: 'inet', table: string, set: string, ports: readonly number[], timeoutMs: number): NftOp[] {
  checkNames(table, set);
  const ps = checkPorts(ports);
  const elements = ps.map((p) => ({ key: keyInetService(p), timeoutMs: checkTimeoutMs(timeoutMs) }));
  const t = { family, table, set, elements };
  return [addSetElems(t), delSetElems(t), addSetElems(t)];
}

/** The same renewal as `nft -f` text (the fallback). */
export function renewalText(family: 'inet', table: string, set: string, ports: readonly number[], timeoutMs: number): string {
  checkNames(table, set);
  const ps = checkPorts(ports);
  const ms = checkTimeoutMs(timeoutMs);
  const at = `${family} ${table} ${set}`;
  const add = `add element ${at} { ${ps.map((p) => `${p} timeout ${ms}ms`).join(', ')} }`;
  return `${add}\ndelete element ${at} { ${ps.join(', ')} }\n${add}\n`;
}

function addrPortElement(address: string, port: number, timeoutS: number): { key: Buffer; timeoutMs: number; text: string } {
  if (ipFamily(address) === 0) throw new DuocellError('DC_NFT_APPLY', `not an IP address: ${JSON.stringify(address)}`, { origin: 'local' });
  const s = Math.max(1, Math.round(timeoutS));
  return { key: keyAddrPort(address, port), timeoutMs: s * 1000, text: `${address} . ${port} timeout ${s}s` };
}

/** The `nft` program side (injected so that tests can count the processes it would start). */
export interface NftProgram {
  applyRuleset(text: string, check?: boolean, opts?: { quiet?: boolean }): Promise<void>;
}

export interface NftElementsOptions {
  /** Open the nfnetlink side; default NfTables.open(). Throwing means "unavailable". */
  open?: () => Promise<NfTables>;
  /** The fallback; default: the `nft` program (index.ts applyRuleset). */
  program: NftProgram;
}

export class NftElements implements ElementWriter {
  readonly #open: () => Promise<NfTables>;
  readonly #program: NftProgram;
  #nl: Promise<NfTables | undefined> | undefined;
  /** 'netlink' or 'nft' once chosen. */
  via: 'netlink' | 'nft' | undefined;

  constructor(o: NftElementsOptions) {
    this.#open = o.open ?? (() => NfTables.open());
    this.#program = o.program;
  }

  /** Choose once: nfnetlink if it opens, else the nft program. */
  #backend(): Promise<NfTables | undefined> {
    this.#nl ??= this.#open().then(
      (nl) => {
        this.via = 'netlink';
        log.info('set elements over nfnetlink (no nft process per renewal)');
        return nl;
      },
      (e: Error) => {
        this.via = 'nft';
        log.info({ err: e.message, code: (e as DuocellError).code }, 'nfnetlink unavailable: set elements through the nft program');
        return undefined;
      },
    );
    return this.#nl;
  }

  async renewTimeoutPorts(family: 'inet', table: string, set: string, ports: readonly number[], timeoutMs: number): Promise<void> {
    const ops = renewalOps(family, table, set, ports, timeoutMs);
    const nl = await this.#backend();
    if (nl !== undefined) await nl.commit(ops);
    else await this.#program.applyRuleset(renewalText(family, table, set, ports, timeoutMs), false, { quiet: true });
  }

  async addAddrPortElement(family: 'inet', table: string, set: string, address: string, port: number, timeoutS: number): Promise<void> {
    checkNames(table, set);
    const e = addrPortElement(address, port, timeoutS);
    const nl = await this.#backend();
    if (nl !== undefined) await nl.commit([addSetElems({ family, table, set, elements: [{ key: e.key, timeoutMs: e.timeoutMs }] })]);
    else await this.#program.applyRuleset(`add element ${family} ${table} ${set} { ${e.text} }\n`, false, { quiet: true });
  }

  /** Close the socket (a later call chooses again). */
  close(): void {
    const nl = this.#nl;
    this.#nl = undefined;
    this.via = undefined;
    void nl?.then((s) => s?.close());
  }
}

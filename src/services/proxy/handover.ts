import os from 'node:os';
import { logger } from '../../core/logger.js';
import { parsePrefix, type Prefix } from '../../core/net.js';
import type { ProxyEngine } from './engine.js';
import type { Endpoint } from './types.js';

/**
 * React to a radio going away instead of waiting for retransmission timeouts: when an access or
 * uplink interface goes down, every subflow it carried is aborted at once (SOCK_DESTROY), and the
 * kernel's MPTCP reinjects the unacknowledged data on the surviving subflows.
 */
const log = logger('duocell:handover');

export interface HandoverDeps {
  engine: ProxyEngine;
  /** Abort one TCP flow by its two ends (production: drivers/netlink SockDiag.destroy). */
  destroy: (t: { local: Endpoint; remote: Endpoint }) => Promise<unknown>;
  /** Connected prefixes of an interface (default: from os.networkInterfaces, kept while down). */
  prefixesOf?: (ifname: string) => Prefix[];
}

export function interfacePrefixes(ifname: string): Prefix[] {
  const out: Prefix[] = [];
  for (const a of os.networkInterfaces()[ifname] ?? []) {
    if (a.cidr === null || a.address.startsWith('fe80')) continue;
    const p = parsePrefix(a.cidr);
    if (p !== undefined) out.push(p);
  }
  return out;
}

export class Handover {
  readonly #d: HandoverDeps;
  /** Prefixes seen while each interface was up (IPv6 addresses may vanish on link down). */
  readonly #known = new Map<string, Prefix[]>();
  aborted = 0;

  constructor(d: HandoverDeps) {
    this.#d = d;
  }

  /** Remember an interface's prefixes while it is up. */
  learn(ifname: string): void {
    const p = (this.#d.prefixesOf ?? interfacePrefixes)(ifname);
    if (p.length > 0) this.#known.set(ifname, p);
  }

  /** The interface went down: abort the subflows it carried. Resolves with how many. */
  async linkDown(ifname: string): Promise<number> {
    const prefixes = [...(this.#known.get(ifname) ?? []), ...(this.#d.prefixesOf ?? interfacePrefixes)(ifname)];
    if (prefixes.length === 0) return 0;
    const victims = this.#d.engine.subflowsWithin(prefixes);
    await Promise.all(
      victims.map((v) =>
        this.#d.destroy(v).then(
          () => this.aborted++,
          (e: Error) => log.debug({ err: e.message, session: v.session }, 'subflow already gone'),
        ),
      ),
    );
    if (victims.length > 0) log.info({ ifname, subflows: victims.length }, 'link down: subflows on it aborted, data reinjected on the others');
    return victims.length;
  }
}

import os from 'node:os';
import { logger } from '../../core/logger.js';
import { parsePrefix, type Prefix } from '../../core/net.js';
import type { ProxyEngine } from './engine.js';
import type { Endpoint } from './types.js';

/** One TCP flow by its two ends. */
export type FourTuple = { local: Endpoint; remote: Endpoint };

/**
 * React to a radio going away instead of waiting for retransmission timeouts: when an access or
 * uplink interface goes down (rtnetlink), or its radio says so first (the paths service's
 * path-down from an nl80211 disconnect or the modem's data session), every subflow it carried is
 * first marked backup (MP_PRIO, where the path manager can: the box's own scheduler stops
 * sending on it at once) and then aborted (SOCK_DESTROY); the kernel's MPTCP reinjects the
 * unacknowledged data on the surviving subflows. Then, where the path manager can and no
 * surviving subflow shares the address id (services/pm/withdraw.ts), the dead subflows' local
 * address ids are withdrawn (REMOVE_ADDR over a survivor): the RST of the destroy went into the
 * dead path, and this is how a peer that is the sender learns at once that its end is dead.
 */
const log = logger('duocell:handover');

export interface HandoverDeps {
  engine: ProxyEngine;
  /** Abort one TCP flow by its two ends (production: drivers/netlink SockDiag.destroy). */
  destroy: (t: FourTuple) => Promise<unknown>;
  /** MP_PRIO backup for one subflow before it is destroyed (optional; see useBackup). */
  backup?: (t: FourTuple) => Promise<void>;
  /** REMOVE_ADDR, written to the kernel before the destroy (optional; see useWithdrawal). */
  withdrawal?: Withdrawer;
  /** Connected prefixes of an interface (default: interfacePrefixes over os.networkInterfaces; kept while down). */
  prefixesOf?: (ifname: string) => Prefix[];
}

/** One REMOVE_ADDR, sent before the destroy (services/pm/withdraw.ts says why). */
export type PlannedWithdrawal = { token: number; locId: number };

/** The path manager's REMOVE_ADDR (wiring/pm.ts RunningPm.withdrawal). */
export interface Withdrawer {
  /** Synchronous, before the destroy: which (token, local id) to withdraw. */
  plan(victims: readonly FourTuple[]): { withdraw: readonly PlannedWithdrawal[]; shared: readonly string[]; unannounced?: readonly string[] };
  remove(token: number, locId: number): Promise<void>;
}

/** Connected prefixes of an interface as `read` gives the interfaces (main.ts: the LocalAddresses snapshot). */
export function interfacePrefixes(ifname: string, read: () => NodeJS.Dict<os.NetworkInterfaceInfo[]> = os.networkInterfaces): Prefix[] {
  const out: Prefix[] = [];
  for (const a of read()[ifname] ?? []) {
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
  /** Interfaces whose subflows are being aborted now (a link event and a radio event both come). */
  readonly #busy = new Set<string>();
  #backup: ((t: FourTuple) => Promise<void>) | undefined;
  #withdrawal: Withdrawer | undefined;
  aborted = 0;
  backedUp = 0;
  /** REMOVE_ADDR commands the kernel accepted. */
  withdrawn = 0;

  constructor(d: HandoverDeps) {
    this.#d = d;
    this.#backup = d.backup;
    this.#withdrawal = d.withdrawal;
  }

  /** The path manager arrived after the handover was built: withdraw dead addresses through it. */
  useWithdrawal(w: Withdrawer | undefined): void {
    this.#withdrawal = w;
  }

  /** The path manager arrived after the handover was built: mark subflows backup through it. */
  useBackup(f: ((t: FourTuple) => Promise<void>) | undefined): void {
    this.#backup = f;
  }

  /** Remember an interface's prefixes while it is up. */
  learn(ifname: string): void {
    const p = (this.#d.prefixesOf ?? interfacePrefixes)(ifname);
    if (p.length > 0) this.#known.set(ifname, p);
  }

  /** The interface went down: abort the subflows it carried. Resolves with how many. */
  async linkDown(ifname: string): Promise<number> {
    if (this.#busy.has(ifname)) return 0;
    const prefixes = [...(this.#known.get(ifname) ?? []), ...(this.#d.prefixesOf ?? interfacePrefixes)(ifname)];
    if (prefixes.length === 0) return 0;
    const victims = this.#d.engine.subflowsWithin(prefixes);
    if (victims.length === 0) return 0;
    this.#busy.add(ifname);
    const backup = this.#backup;
    let backedUp = 0;
    let withdrawn = 0;
    try {
      // Planned before the destroy: once the subflows close, the PM no longer lists them as established.
      const plan = this.#plan(victims);
      // Written to the kernel before the destroys' requests (the call writes it; see #withdraw).
      const early = this.#withdraw(plan);
      backedUp = await this.#abort(victims, backup);
      withdrawn = await early;
    } finally {
      this.#busy.delete(ifname);
    }
    log.info({ ifname, subflows: victims.length, backedUp, withdrawn }, 'link down: subflows on it marked backup and aborted, data reinjected on the others');
    return victims.length;
  }

  #plan(victims: readonly FourTuple[]): readonly PlannedWithdrawal[] {
    const w = this.#withdrawal;
    if (w === undefined) return [];
    try {
      const p = w.plan(victims);
      if (p.shared.length > 0) log.debug({ shared: p.shared }, 'address ids kept: a surviving subflow uses them too');
      if ((p.unannounced ?? []).length > 0) log.debug({ unannounced: p.unannounced }, 'address ids kept: joins to an address the cell never announced (withdrawing them trips the M-UE kernel\'s WARN)');
      return p.withdraw;
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'cannot plan REMOVE_ADDR for the dead path');
      return [];
    }
  }

  /**
   * Each REMOVE is written to the kernel when `remove` is called (as backupSubflow's set-flags),
   * so it reaches the kernel ahead of the destroy. Resolves with how many the kernel
   * accepted; a refusal (the connection already gone) is logged at debug.
   */
  async #withdraw(plan: readonly PlannedWithdrawal[]): Promise<number> {
    const w = this.#withdrawal;
    if (w === undefined || plan.length === 0) return 0;
    let n = 0;
    await Promise.all(
      plan.map((p) => {
        let sent: Promise<void>;
        try {
          sent = w.remove(p.token, p.locId);
        } catch (e) {
          sent = Promise.reject(e as Error);
        }
        return sent.then(
          () => {
            n++;
            this.withdrawn++;
            log.debug({ token: p.token, locId: p.locId }, 'local address id withdrawn (REMOVE_ADDR)');
          },
          (e: Error) => log.debug({ err: e.message, token: p.token, locId: p.locId }, 'REMOVE_ADDR refused'),
        );
      }),
    );
    return n;
  }

  /**
   * Per subflow: MP_PRIO, then the destroy at once. `backup` has written its command to the
   * kernel when it returns (RunningPm.backupSubflow), so the kernel marks the subflow backup
   * before the destroy reaches it; the destroy never waits for the answer, which only counts
   * (backedUp; resolves with this call's count) or is logged at debug (a subflow the PM does not
   * follow, or already gone).
   */
  async #abort(victims: ReturnType<ProxyEngine['subflowsWithin']>, backup: ((t: FourTuple) => Promise<void>) | undefined): Promise<number> {
    let applied = 0;
    const tuple = (v: FourTuple): string => `${v.local.address}:${v.local.port} → ${v.remote.address}:${v.remote.port}`;
    await Promise.all(
      victims.map((v) => {
        let prio: Promise<void> = Promise.resolve();
        if (backup !== undefined) {
          try {
            prio = backup(v);
          } catch (e) {
            prio = Promise.reject(e as Error);
          }
          prio = prio.then(
            () => {
              applied++;
              this.backedUp++;
              log.debug({ subflow: tuple(v), session: v.session }, 'subflow marked backup (MP_PRIO)');
            },
            (e: Error) => log.debug({ err: e.message, subflow: tuple(v), session: v.session }, 'no MP_PRIO for this subflow'),
          );
        }
        const gone = this.#d.destroy(v).then(
          () => void this.aborted++,
          (e: Error) => log.debug({ err: e.message, session: v.session }, 'subflow already gone'),
        );
        return Promise.all([prio, gone]);
      }),
    );
    return applied;
  }
}

import { EventEmitter } from 'node:events';
import { toDuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import type { InterfaceSettings } from '../modem/netif.js';
import { DhcpLease, type Lease } from './lease.js';

/**
 * DHCP on an uplink whose link someone else brings up: the WLAN station (wlan0). wpa_supplicant
 * sets the interface's operstate to UP only once it has connected (4-way handshake done: the
 * moment it reports CTRL-EVENT-CONNECTED); the WLAN driver publishes that as `up`. Then:
 *
 *   link up ──► udhcpc on the interface (DhcpLease, lease.ts) ──► first lease
 *                                    │                                │
 *                                    │ no lease / client died         ▼
 *                                    └─► retry (2 s, doubling to 30 s) while up
 *                                                      netif.apply(lease): address, MTU, main-table
 *                                                      default route (DataInterface over rtnetlink,
 *                                                      as the cellular data session)
 *   renew with new values ──► apply again        DHCP lost (NAK, client exit) ──► remove, start again
 *   link down (disassociated) ──► stop the client, keep the address (a re-association asks again,
 *                                 and DataInterface.apply replaces what changed)
 *   stop() ──► stop the client, remove what was applied
 *
 * Errors are logged (DC_WLAN_DHCP by default), never thrown: the path stays down without an address.
 */

const log = logger('duocell:dhcp:uplink');

export interface LinkStateSource {
  readonly state: { readonly present: boolean; readonly up: boolean };
  on(ev: 'state', cb: (s: { readonly present: boolean; readonly up: boolean }) => void): unknown;
  off(ev: 'state', cb: (s: { readonly present: boolean; readonly up: boolean }) => void): unknown;
}

export interface UplinkDhcpOptions {
  readonly ifname: string;
  readonly link: LinkStateSource;
  /** Applies the lease (DataInterface with keepLinkUp for WLAN). */
  readonly netif: { apply(s: InterfaceSettings): Promise<void>; remove(why: string): Promise<void> };
  /** The code of the client's errors (default DC_WLAN_DHCP). */
  readonly code?: 'DC_MODEM_DHCP' | 'DC_WLAN_DHCP';
  /** Another lease source (tests). */
  readonly lease?: () => DhcpLease;
  readonly leaseTimeoutMs?: number;
  /** First retry after a failure (default 2000 ms, doubling to 30 s). */
  readonly retryMs?: number;
}

export class UplinkDhcp extends EventEmitter<{ lease: [Lease]; lost: [string] }> {
  readonly #o: UplinkDhcpOptions;
  #client: DhcpLease | undefined;
  #lease: Lease | undefined;
  #applied = false;
  /** Bumped whenever the client stops: a lease of an older client is not applied. */
  #gen = 0;
  #retry: NodeJS.Timeout | undefined;
  #retryMs: number;
  #running = false;
  readonly #onState = (s: { readonly up: boolean }): void => {
    if (!this.#running) return;
    if (s.up && this.#client === undefined && this.#retry === undefined) void this.#begin();
    else if (!s.up && (this.#client !== undefined || this.#retry !== undefined)) void this.#halt('link down', false);
  };

  constructor(o: UplinkDhcpOptions) {
    super();
    this.#o = o;
    this.#retryMs = o.retryMs ?? 2000;
  }

  /** The lease applied now (kept while the link is down until a new one replaces it). */
  get lease(): Lease | undefined {
    return this.#lease;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#o.link.on('state', this.#onState);
    this.#onState(this.#o.link.state);
  }

  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#o.link.off('state', this.#onState);
    await this.#halt('stopping', true);
  }

  async #begin(): Promise<void> {
    const gen = ++this.#gen;
    const { ifname } = this.#o;
    const client = this.#o.lease?.() ?? new DhcpLease({ ifname, code: this.#o.code ?? 'DC_WLAN_DHCP', hint: 'does the network run a DHCP server?' });
    this.#client = client;
    client.on('lease', (l: Lease) => {
      if (gen === this.#gen) void this.#apply(l, gen, 'renewed with new values');
    });
    client.on('lost', (why: string) => {
      if (gen !== this.#gen) return;
      void (async () => {
        await this.#halt(why, true);
        if (this.#running && this.#o.link.state.up) this.#later();
      })();
    });
    try {
      const l = await client.acquire(this.#o.leaseTimeoutMs ?? 20_000);
      if (gen !== this.#gen) return;
      await this.#apply(l, gen, 'bound');
    } catch (e) {
      if (gen !== this.#gen) return;
      const err = toDuocellError(e, this.#o.code ?? 'DC_WLAN_DHCP');
      log.warn({ ifname, code: err.code, err: err.message, retryMs: this.#retryMs }, 'no DHCP lease on the uplink; trying again');
      await this.#halt('no lease', false);
      if (this.#running && this.#o.link.state.up) this.#later();
    }
  }

  #later(): void {
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      if (this.#running && this.#o.link.state.up && this.#client === undefined) void this.#begin();
    }, this.#retryMs);
    this.#retry.unref();
    this.#retryMs = Math.min(this.#retryMs * 2, 30_000);
  }

  async #apply(l: Lease, gen: number, how: string): Promise<void> {
    const { leaseSeconds: _s, ...ipv4 } = l;
    try {
      await this.#o.netif.apply({ ipv4 });
    } catch (e) {
      const err = toDuocellError(e);
      log.error({ ifname: this.#o.ifname, code: err.code, err: err.message }, 'applying the DHCP lease failed');
      if (gen === this.#gen) {
        await this.#halt('lease not applied', true);
        if (this.#running && this.#o.link.state.up) this.#later();
      }
      return;
    }
    if (gen !== this.#gen) return;
    this.#applied = true;
    this.#lease = l;
    this.#retryMs = this.#o.retryMs ?? 2000;
    log.info({ ifname: this.#o.ifname, address: l.address, prefixLength: l.prefixLength, gateway: l.gateway, dns: l.dns, leaseSeconds: l.leaseSeconds }, `DHCP lease ${how} on the uplink`);
    this.emit('lease', l);
  }

  /** Stop the client (and the retry); `deconfigure`: remove the applied lease too. */
  async #halt(why: string, deconfigure: boolean): Promise<void> {
    this.#gen++;
    clearTimeout(this.#retry);
    this.#retry = undefined;
    const c = this.#client;
    this.#client = undefined;
    await c?.stop().catch(() => undefined);
    if (!deconfigure || !this.#applied) return;
    this.#applied = false;
    this.#lease = undefined;
    await this.#o.netif.remove(why).catch((e: unknown) => log.warn({ ifname: this.#o.ifname, err: (e as Error).message }, 'removing the DHCP lease failed'));
    this.emit('lost', why);
  }
}

/**
 * A link-state source with the lease's gateway merged into its state (the paths service routes
 * the uplink's table through it), re-published whenever the lease changes.
 */
export function withLeaseGateway<S extends { readonly present: boolean; readonly up: boolean }>(
  src: { readonly state: S; on(ev: 'state', cb: (s: S) => void): unknown },
  dhcp: UplinkDhcp,
): { readonly state: S & { gateway4?: string }; on(ev: 'state', cb: (s: S & { gateway4?: string }) => void): unknown; off(ev: 'state', cb: (s: S & { gateway4?: string }) => void): unknown } {
  const ee = new EventEmitter<{ state: [S & { gateway4?: string }] }>();
  const merged = (): S & { gateway4?: string } => {
    const gw = dhcp.lease?.gateway;
    return gw === undefined ? src.state : { ...src.state, gateway4: gw };
  };
  const push = (): void => void ee.emit('state', merged());
  src.on('state', push);
  dhcp.on('lease', push);
  dhcp.on('lost', push);
  return {
    get state() {
      return merged();
    },
    on: (ev, cb) => ee.on(ev, cb),
    off: (ev, cb) => ee.off(ev, cb),
  };
}

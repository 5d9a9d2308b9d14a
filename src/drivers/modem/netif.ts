import fsp from 'node:fs/promises';
import { DuocellError, toDuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import type { WdsSettings } from './types.js';

/**
 * The modem's data interface (wwan0), configured by duocell from the data session's settings,
 * as OpenWrt's proto-qmi or ModemManager+NetworkManager would on a desktop:
 *
 *   apply(settings)                                        remove()
 *     1. raw IP: 'Y' → /sys/class/net/<if>/qmi/raw_ip        1. main-table default routes of ours
 *        (only when the file exists: qmi_wwan; a veth        2. the addresses we added
 *        has none; the kernel takes it only while down)      3. link down
 *     2. MTU (the session's, if it gave one)
 *     3. addresses: IPv4 a/len, IPv6 a/len (nodad), stale
 *        global addresses of an earlier session removed
 *     4. link up
 *     5. main-table default route via the session gateway, with `defaultMetric` (below a
 *        fixed uplink's, so the cellular path is the fall-back default); the per-uplink table
 *        and source rules are the paths service's (it sees the link up with addresses and the
 *        modem connected, and installs them)
 *
 * Every failure is a DC_MODEM_NETIF error naming the step. The netlink calls arrive through
 * `NetifOps` (drivers/netlink Rtnl satisfies it), so tests can pass a fake.
 */

const log = logger('duocell:modem:netif');

export interface NetifOps {
  link(name: string): Promise<{ index: number; up: boolean } | undefined>;
  setLinkUp(index: number, up: boolean): Promise<void>;
  setMtu(index: number, mtu: number): Promise<void>;
  addresses(family?: 4 | 6): Promise<{ index: number; address: string; prefixLen: number; scope: number; family: 4 | 6 }[]>;
  addAddress(index: number, address: string, prefixLen: number, opts?: { replace?: boolean; nodad?: boolean }): Promise<void>;
  deleteAddress(index: number, address: string, prefixLen: number): Promise<void>;
  addRoute(r: { dst: string; table: number; oif?: number; gateway?: string; priority?: number; protocol?: number }, opts?: { replace?: boolean }): Promise<void>;
  deleteRoute(r: { dst: string; table: number; oif?: number; gateway?: string; priority?: number; protocol?: number }): Promise<void>;
  /** Release the netlink socket (reopened on the next use). */
  close?(): void;
}

export interface DataInterfaceOptions {
  readonly ifname: string;
  readonly ops: NetifOps;
  /** Ask qmi_wwan for raw IP (default true; false for 802.3 framing). */
  readonly rawIp?: boolean;
  readonly sysfsRoot?: string;
  /** Metric of the main-table default route via the session gateway; undefined = none. */
  readonly defaultMetric?: number;
  /** remove() leaves the link up (the WLAN uplink: the link is wpa_supplicant's, not ours). */
  readonly keepLinkUp?: boolean;
}

/** What apply() reads: the addresses of each family (a data session's settings, a DHCP lease). */
export type InterfaceSettings = Partial<WdsSettings>;

const RT_TABLE_MAIN = 254;
const RTPROT_DUOCELL = 220;

interface Applied {
  index: number;
  addresses: { address: string; prefixLen: number }[];
  routes: { dst: string; table: number; oif: number; gateway?: string; priority: number; protocol: number }[];
}

export class DataInterface {
  readonly #o: DataInterfaceOptions;
  #applied: Applied | undefined;
  #chain: Promise<unknown> = Promise.resolve();

  constructor(o: DataInterfaceOptions) {
    this.#o = o;
  }

  get ifname(): string {
    return this.#o.ifname;
  }

  /** Serialise apply/remove: a drop during an apply is undone after it, never interleaved. */
  #serial<T>(f: () => Promise<T>): Promise<T> {
    const next = this.#chain.then(f, f);
    this.#chain = next.catch(() => undefined);
    return next;
  }

  apply(s: InterfaceSettings): Promise<void> {
    return this.#serial(() => this.#apply(s));
  }

  remove(why: string): Promise<void> {
    return this.#serial(() => this.#remove(why));
  }

  async #step<T>(what: string, f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      const err = toDuocellError(e);
      throw new DuocellError('DC_MODEM_NETIF', `${this.#o.ifname}: ${what}: ${err.message}`, { origin: err.origin, cause: err, step: what, ...(err.errno === undefined ? {} : { errno: err.errno }) });
    }
  }

  async #rawIp(index: number, up: boolean): Promise<void> {
    if (this.#o.rawIp === false) return;
    const file = `${this.#o.sysfsRoot ?? '/sys'}/class/net/${this.#o.ifname}/qmi/raw_ip`;
    let cur: string;
    try {
      cur = (await fsp.readFile(file, 'utf8')).trim();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return; // not qmi_wwan (a veth, cdc_ether …)
      throw e;
    }
    if (cur === 'Y') return;
    if (up) await this.#o.ops.setLinkUp(index, false); // qmi_wwan refuses the change while up
    await fsp.writeFile(file, 'Y');
  }

  async #apply(s: InterfaceSettings): Promise<void> {
    const { ops, ifname } = this.#o;
    const link = await this.#step('find the interface', () => ops.link(ifname));
    if (link === undefined) throw new DuocellError('DC_MODEM_NETIF', `${ifname}: no such network interface (is qmi_wwan bound to the modem?)`, { origin: 'kernel', step: 'find the interface' });
    const index = link.index;
    await this.#step('raw IP mode', () => this.#rawIp(index, link.up));
    const mtu = s.ipv4?.mtu ?? s.ipv6?.mtu;
    if (mtu !== undefined) await this.#step(`MTU ${mtu}`, () => ops.setMtu(index, mtu));
    const want = [s.ipv4, s.ipv6].filter((f): f is NonNullable<typeof f> => f !== undefined).map((f) => ({ address: f.address, prefixLen: f.prefixLength }));
    // addresses of an earlier session (a crash, a modem that changed its mind) go first
    const have = await this.#step('read addresses', () => ops.addresses());
    for (const a of have) {
      if (a.index !== index || a.scope !== 0) continue;
      if (want.some((w) => w.address === a.address && w.prefixLen === a.prefixLen)) continue;
      await this.#step(`remove stale ${a.address}/${a.prefixLen}`, () => ops.deleteAddress(index, a.address, a.prefixLen));
    }
    const applied: Applied = { index, addresses: [], routes: [] };
    this.#applied = applied;
    for (const w of want) {
      const v6 = w.address.includes(':');
      await this.#step(`address ${w.address}/${w.prefixLen}`, () => ops.addAddress(index, w.address, w.prefixLen, { replace: true, ...(v6 ? { nodad: true } : {}) }));
      applied.addresses.push(w);
    }
    await this.#step('link up', () => ops.setLinkUp(index, true));
    // IPv6 addresses on a link that was down are announced by the kernel only once it is up:
    // wait (briefly) until every address is there, so the path comes up with all its families
    for (let i = 0; i < 25; i++) {
      const now = await ops.addresses().catch(() => []);
      if (want.every((w) => now.some((a) => a.index === index && a.address === w.address))) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const metric = this.#o.defaultMetric;
    if (metric !== undefined) {
      for (const [dst, gw] of [['0.0.0.0/0', s.ipv4?.gateway], ['::/0', s.ipv6?.gateway]] as const) {
        if ((dst === '0.0.0.0/0' ? s.ipv4 : s.ipv6) === undefined) continue;
        const r = { dst, table: RT_TABLE_MAIN, oif: index, priority: metric, protocol: RTPROT_DUOCELL, ...(gw === undefined ? {} : { gateway: gw }) };
        await this.#step(`default route ${dst}${gw === undefined ? '' : ` via ${gw}`}`, () => ops.addRoute(r, { replace: true }));
        applied.routes.push(r);
      }
    }
    log.info({ ifname, index, addresses: want.map((w) => `${w.address}/${w.prefixLen}`), mtu }, 'data interface configured from the session');
  }

  /** After remove(): release the netlink socket so the process can exit. */
  async close(): Promise<void> {
    await this.#chain;
    this.#o.ops.close?.();
  }

  async #remove(why: string): Promise<void> {
    const a = this.#applied;
    this.#applied = undefined;
    if (a === undefined) return;
    const { ops, ifname } = this.#o;
    // link down first: the path goes down at once, the kernel drops the routes through it
    if (this.#o.keepLinkUp !== true) await ops.setLinkUp(a.index, false).catch((e: unknown) => log.debug({ ifname, err: (e as Error).message }, 'link down failed (gone?)'));
    for (const r of a.routes) await ops.deleteRoute(r).catch(() => undefined);
    for (const x of a.addresses) await ops.deleteAddress(a.index, x.address, x.prefixLen).catch(() => undefined);
    log.info({ ifname, why }, 'data interface deconfigured');
  }
}

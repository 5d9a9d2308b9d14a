/**
 * Contracts of the paths service: what it needs (injected sources) and what it publishes.
 * The service imports no transport: rtnetlink, the routing keeper, the modem manager and the
 * WLAN driver reach it through these interfaces (main.ts wires the real ones).
 */

export type { AccessType } from '../../core/model.js';
import type { AccessType } from '../../core/model.js';
export type PathStateName = 'absent' | 'down' | 'up';

/** A link as rtnetlink reports it (drivers/netlink Link satisfies this). */
export interface NetLink {
  readonly index: number;
  readonly name: string;
  readonly up: boolean;
}

/** An interface address (drivers/netlink Address satisfies this). */
export interface NetAddress {
  readonly family: 4 | 6;
  readonly index: number;
  readonly address: string;
  readonly prefixLen: number;
  /** 0 universe (global), 253 link, 254 host. */
  readonly scope: number;
  readonly peer?: string;
}

/** Link and address state with change events (drivers/netlink Rtnl satisfies this). */
export interface NetSource {
  links(): Promise<NetLink[]>;
  addresses(family?: 4 | 6): Promise<NetAddress[]>;
  on(ev: 'link', cb: (e: { op: 'new' | 'del'; link: NetLink }) => void): unknown;
  on(ev: 'address', cb: (e: { op: 'new' | 'del'; address: NetAddress }) => void): unknown;
  on(ev: 'lost', cb: (e: Error) => void): unknown;
  off(ev: 'link', cb: (e: { op: 'new' | 'del'; link: NetLink }) => void): unknown;
  off(ev: 'address', cb: (e: { op: 'new' | 'del'; address: NetAddress }) => void): unknown;
  off(ev: 'lost', cb: (e: Error) => void): unknown;
}

/** Per-uplink routing (drivers/netlink RoutingKeeper satisfies this). */
export interface RoutingBackend {
  set(spec: {
    name: string;
    ifindex: number;
    table: number;
    rulePriority?: number;
    addresses: readonly string[];
    prefixes?: readonly string[];
    gateway4?: string;
    gateway6?: string;
  }): Promise<unknown>;
  delete(name: string): Promise<void>;
}

/** What the modem manager publishes about the cellular data session. */
export interface CellularState {
  /** A data session is up (QMI WDS connected / PDP context active). */
  readonly connected: boolean;
  readonly registered?: boolean;
  readonly gateway4?: string;
  readonly gateway6?: string;
  readonly signal?: { readonly rssiDbm?: number; readonly rsrpDbm?: number; readonly rsrqDb?: number; readonly sinrDb?: number };
  readonly operator?: string;
  readonly technology?: string;
  /** Why it is not connected (for the API and logs). */
  readonly reason?: string;
}

export interface CellularSource {
  readonly state: CellularState;
  on(ev: 'state', cb: (s: CellularState) => void): unknown;
  off(ev: 'state', cb: (s: CellularState) => void): unknown;
}

/** What the WLAN driver publishes (drivers/wlan WlanDriver satisfies this). */
export interface WlanSourceState {
  readonly present: boolean;
  readonly up: boolean;
  readonly quality: 'known' | 'unknown';
  readonly ssid?: string;
  readonly bssid?: string;
  readonly signalDbm?: number;
  readonly txBitrateMbps?: number;
  readonly rxBitrateMbps?: number;
  readonly reason?: string;
  /** The gateway of the uplink's DHCP lease (drivers/dhcp/uplink.ts), when it has one. */
  readonly gateway4?: string;
}

export interface WlanSource {
  readonly state: WlanSourceState;
  on(ev: 'state', cb: (s: WlanSourceState) => void): unknown;
  off(ev: 'state', cb: (s: WlanSourceState) => void): unknown;
}

/** Interface byte counters (e.g. from /sys/class/net/X/statistics), injected. */
export type CounterReader = (ifname: string) => Promise<{ rxBytes: number; txBytes: number } | undefined>;
/** An RTT probe through one path (health probes), injected. */
export type RttProbe = (path: PathView) => Promise<number | undefined>;

export interface UplinkConfig {
  readonly name: string;
  readonly access: AccessType;
  readonly interface: string;
  /** Routing table of this uplink (default: 100 + position). */
  readonly table?: number;
  readonly gateway4?: string;
  readonly gateway6?: string;
}

export interface PathSignal {
  readonly quality: 'known' | 'unknown';
  /** The strength used for ranking: RSRP for cellular when known, else RSSI; the WLAN signal. */
  readonly dbm?: number;
  /** Cellular RSSI (dBm), when the modem reports it. */
  readonly rssiDbm?: number;
  readonly rsrpDbm?: number;
  readonly rsrqDb?: number;
  readonly sinrDb?: number;
  readonly ssid?: string;
  readonly bssid?: string;
  readonly bitrateMbps?: number;
}

/** One path (uplink) as the path manager and the web page see it. */
export interface PathView {
  readonly name: string;
  readonly access: AccessType;
  readonly interface: string;
  readonly ifindex?: number;
  readonly state: PathStateName;
  /** ISO time of the last state change. */
  readonly since: string;
  readonly addresses: readonly string[];
  readonly gateway4?: string;
  readonly gateway6?: string;
  readonly table: number;
  readonly routing: 'installed' | 'pending' | 'failed' | 'none';
  readonly signal: PathSignal;
  /** Measured over the last sample interval, bits per second. */
  readonly throughput?: { readonly rxBps: number; readonly txBps: number };
  readonly rttMs?: number;
  readonly reason?: string;
}

export type PathEvent =
  | { readonly type: 'path-up'; readonly path: PathView }
  | { readonly type: 'path-down'; readonly path: PathView }
  | { readonly type: 'path-changed'; readonly path: PathView; readonly fields: readonly string[] };

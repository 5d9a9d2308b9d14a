/**
 * Plain data shapes of the store. The same shapes are carried by OTA bundles (a PolicySet),
 * by the web API and by the CLI's --json output.
 */

export { STEERING_MODES, type SteeringMode } from '../core/model.js';
import type { SteeringMode } from '../core/model.js';

export interface Ratio {
  /** Share of the cellular path, 0..100; cellular + wlan = 100. */
  cellular: number;
  wlan: number;
}

/**
 * A named policy. `null` (or absent) fields inherit: a subscriber's policy falls back to the
 * policy named `default`, which falls back to the built-in defaults.
 */
export interface PolicySpec {
  name: string;
  maxSessionsPerUe?: number | null;
  maxSubflowsPerSession?: number | null;
  maxSessionsPerNServer?: number | null;
  /** Prefixes subflows may come from (the cell's access networks). */
  allowedNetworks?: string[] | null;
  steeringMode?: SteeringMode | null;
  ratio?: Ratio | null;
  /** TCP destination ports intercepted on-path for N-UEs. */
  interceptPorts?: number[] | null;
}

export interface SubscriberSpec {
  name: string;
  /** Policy name; absent or null → `default`. */
  policy?: string | null;
  enabled?: boolean;
  /** IPv4/IPv6 addresses or prefixes. */
  addresses?: string[];
  macs?: string[];
  /** An scrypt hash string (`scrypt$N$r$p$salt$hash`), never a password. */
  credential?: string | null;
}

export interface NServerLimitSpec {
  /** N-server address or prefix. */
  prefix: string;
  maxSessions: number;
}

export type ProxyProtocol = 'convert' | 'socks5';

/** on-path: the cell terminates the session itself (direct); off-path: a concentrator. */
export type ProxyType = 'on-path' | 'off-path';
export const PROXY_TYPES: readonly ProxyType[] = ['on-path', 'off-path'];

/**
 * An application a candidate serves: sessions to one of `ports` (none = any) and one of
 * `prefixes` (none = any) and, when `sni` lists names, whose TLS ClientHello names one of them
 * (`video.example` exactly, `*.example.com` any name under it; case-insensitive). An application
 * with `sni` must name its `ports`: the transparent front peeks at the ClientHello only there.
 */
export interface ProxyAppSpec {
  name: string;
  ports?: number[];
  prefixes?: string[];
  sni?: string[];
}

/** SOCKS5 credentials of a candidate (1–255 bytes each as UTF-8). */
export interface ProxyAuth {
  username: string;
  password?: string;
}

/**
 * A candidate proxy. (address, port, protocol) is its main endpoint; `socks5` an optional
 * second one ("address:port") for M-UEs that speak SOCKS5. A candidate with no `apps` serves
 * every application; with no `policies` every subscriber policy.
 */
export interface ProxySpec {
  address: string;
  port: number;
  protocol: ProxyProtocol;
  priority?: number;
  weight?: number;
  enabled?: boolean;
  /** Unique; default derived from the endpoint. */
  name?: string;
  /** Site label ("cdn-east"). */
  location?: string;
  type?: ProxyType;
  socks5?: string | null;
  /**
   * RFC 1929 username/password toward a `socks5` candidate. Never shown by the API, the page or
   * the CLI (they show the username); a list written back without `password` keeps the stored one.
   */
  auth?: ProxyAuth | null;
  apps?: ProxyAppSpec[];
  /** Subscriber policies this candidate serves (names); empty = all. */
  policies?: string[];
}

/** Everything policy-related the store holds: what a full OTA bundle replaces. */
export interface PolicySet {
  policies: PolicySpec[];
  subscribers: SubscriberSpec[];
  nserverLimits: NServerLimitSpec[];
  proxies: ProxySpec[];
}

/** The policy in force for one client, every field resolved. */
export interface EffectivePolicy {
  /** The matching subscriber, or null when the address matched none (defaults apply). */
  subscriber: string | null;
  /** The prefix that matched (canonical), or null. */
  matched: string | null;
  policy: string;
  maxSessionsPerUe: number;
  maxSubflowsPerSession: number;
  maxSessionsPerNServer: number;
  allowedNetworks: readonly string[];
  steeringMode: SteeringMode;
  ratio: Readonly<Ratio>;
  interceptPorts: readonly number[];
}

export type ResolvedDefaults = Omit<EffectivePolicy, 'subscriber' | 'matched' | 'policy'>;

/** Built-in defaults, under the `default` policy (and under a board profile's defaults). */
export const BUILTIN_DEFAULTS: ResolvedDefaults = Object.freeze({
  maxSessionsPerUe: 256,
  maxSubflowsPerSession: 8,
  maxSessionsPerNServer: 1024,
  allowedNetworks: Object.freeze(['0.0.0.0/0', '::/0']),
  steeringMode: 'ratio',
  ratio: Object.freeze({ cellular: 50, wlan: 50 }),
  interceptPorts: Object.freeze([80, 443]),
});

/**
 * Who made a change: `web`, `cli`, `ota:VERSION` (a bundle), `ota:rollback`, or `system`.
 * Kept verbatim in the audit log.
 */
export type Origin = 'web' | 'cli' | 'system' | 'ota:rollback' | `ota:${number}`;

export interface AuditEntry {
  id: number;
  at: number;
  origin: string;
  action: string;
  entity: string;
  key: string | null;
  detail: unknown;
}

export interface SubscriberRecord extends Required<Omit<SubscriberSpec, 'credential' | 'policy'>> {
  id: number;
  /** The policy's name; `default` when the subscriber has none of its own. */
  policy: string;
  hasCredential: boolean;
  hasCookie: boolean;
  createdAt: number;
  updatedAt: number;
}

export interface MServerEntry {
  address: string;
  port: number;
  expiresAt: number;
}

/**
 * What the web layer needs from the rest of duocell, and nothing more. The web server never
 * imports the proxy engine, the store or the radios: main.ts builds a WebDeps from the services
 * and hands it to createWebServer(). test/helpers/fake-deps.ts is an in-memory one for development
 * and the browser tests.
 *
 * Every async method may throw a DuocellError; its code decides the HTTP status
 * (src/web/status.ts) and reaches the client as `{error:{code,message}}`.
 */

import type { ConvertGrant } from '../protocols/convert/grant.js';

export type { AccessType, Combination, SteeringMode } from '../core/model.js';
import type { AnycastView } from '../services/anycast/index.js';
import type { AccessType, Combination, SteeringMode, SubflowAccess } from '../core/model.js';

export interface HealthView {
  status: 'ok' | 'degraded';
  preset: 'cell' | 'concentrator';
  version: string;
  uptimeS: number;
  checks: Record<string, boolean>;
  /** A concentrator in an anycast pool (issue 15). */
  anycast?: AnycastView;
}

export interface Endpoint {
  address: string;
  port: number;
}

export interface SubflowView {
  side: 'client' | 'server';
  id: number;
  local: Endpoint;
  remote: Endpoint;
  access: SubflowAccess;
  bytesSent: number;
  bytesReceived: number;
  rttUs: number;
}

/** Limits and path ratio in force for a session. */
export type GrantView = ConvertGrant;

/** The path manager's view: kernel mode, MPTCP connections with their subflows, enforcement counters. */
export interface PathManagerView {
  mode: 'kernel' | 'userspace';
  endpoints: Record<string, number>;
  connections: Array<{
    token: number;
    serverSide: boolean;
    local: Endpoint;
    remote: Endpoint;
    state: string;
    since: string;
    subflows: Array<{ local: Endpoint; remote: Endpoint; access: string; backup: boolean; state: string; since: string; bytesSent?: number; bytesReceived?: number; rttMs?: number }>;
  }>;
  stats: {
    subflowsRefused: Record<string, number>;
    subflowsOpened: Record<string, number>;
    subflowsClosed: Record<string, number>;
    lastEnforceMs?: number;
    lastReactionMs?: number;
  };
  /**
   * Steering modes per subscriber (userspace PM only): per group its mode, target and measured
   * cellular share (percent), ladder level and connections per placement; controller counters.
   */
  steering?: {
    groups: Array<{ group: string; mode: string; target?: number; share?: number; windowBytes: number; level?: number; connections: number; placements: Record<string, number>; overflow?: boolean }>;
    stats: Record<string, number>;
  };
  /** Open sessions per UE / per N-server and sessions refused by the resource policy. */
  limits: { perUe: Record<string, number>; perNServer: Record<string, number>; refused: { perUe: number; perNServer: number } };
}

/** A proxy session as GET /sessions carries it (web/schemas.ts SessionSchema): the API's shape, not the engine's. */
export interface SessionDto {
  id: string;
  subscriber?: string;
  grant?: GrantView;
  front: 'transparent' | 'explicit' | 'convert' | 'socks5';
  client: Endpoint & { mptcp: boolean };
  server: Endpoint & { mptcp: boolean };
  combination: Combination;
  action: string;
  startedAt: string;
  bytes: { up: number; down: number };
  subflows: SubflowView[];
}

export interface SignalView {
  /** Received signal strength (cellular RSSI, or the WLAN signal), dBm. */
  rssiDbm?: number;
  /** Cellular reference signal received power, dBm. */
  rsrpDbm?: number;
  rsrq?: number;
  sinr?: number;
  /** WLAN: the network and access point the uplink is associated to, and its transmit bit rate (nl80211). */
  ssid?: string;
  bssid?: string;
  txBitrateMbps?: number;
  /** 0 (none) … 4 (excellent). */
  bars: number;
}

export interface PathView {
  name: string;
  access: AccessType;
  interface: string;
  state: 'up' | 'down';
  addresses: string[];
  signal?: SignalView;
  /** Counters since the path's interface came up (monotonic while up). */
  bytesTx: number;
  bytesRx: number;
  rttMs?: number;
  /** Active probes from this path (sliding window) and the passive RTT of its MPTCP subflows. */
  measure?: PathMeasureView;
}

export interface PathMeasureView {
  /** The echo responder probed (address:port). */
  target?: string;
  samples: number;
  rttMedianMs?: number;
  rttP95Ms?: number;
  rttMinMs?: number;
  jitterMs?: number;
  lossPct?: number;
  passiveRttMs?: number;
  passiveSubflows?: number;
}

export interface ModemView {
  present: boolean;
  /** e.g. absent, initializing, searching, registered, connected, error. */
  state: string;
  model?: string;
  imei?: string;
  sim: string;
  operator?: string;
  rat?: string;
  band?: string;
  rssiDbm?: number;
  rsrp?: number;
  rsrq?: number;
  sinr?: number;
  apn?: string;
  addresses?: string[];
  /** Degraded but working (e.g. the AT port lost while QMI carries the session), with the code. */
  warning?: string;
}

export interface WlanView {
  present: boolean;
  interface: string;
  /** e.g. station, ap, mesh. */
  mode: string;
  state: string;
  ssid?: string;
  bssid?: string;
  frequencyMhz?: number;
  channel?: number;
  signalDbm?: number;
  txBitrateMbps?: number;
  rxBitrateMbps?: number;
  stations?: number;
}

/**
 * A resource policy as the API and the page carry it (web/schemas.ts PolicySpecSchema, nested):
 * the cell default (GET/PUT /policy) or one subscriber's own. The store's PolicySpec (flat, one
 * row of the policies table) is the model; wiring/policy.ts maps between the two.
 */
export interface PolicyDto {
  limits: {
    /** Concurrent M-sessions from one UE. */
    maxSessions: number;
    /** Subflows per M-session. */
    maxSubflows: number;
    /** Concurrent M-sessions to one N-server. */
    maxSessionsPerServer: number;
  };
  /** Access types whose uplinks may carry this traffic. */
  allowedAccess: AccessType[];
  /** Prefixes (CIDR) from which subflows may join; empty: any. */
  allowedNetworks: string[];
  steering: {
    mode: SteeringMode;
    /** The preferred path for active-standby and priority. */
    primary: AccessType;
    /** Share of traffic in percent per path, summing to 100 (mode `ratio`). */
    ratio: { cellular: number; wlan: number };
  };
  /** UDP steering mode for this policy's devices (absent: the MPTCP mode's counterpart). */
  udpMode?: 'active-standby' | 'priority' | 'smallest-delay' | 'load-balancing';
  /** `block`: UDP/443 answered with ICMP port-unreachable, so QUIC falls back to TCP at once. */
  quic?: 'allow' | 'block';
}

/** GET /api/v1/udp: UDP steering per flow (off unless the board enables it). */
export interface UdpView {
  enabled: boolean;
  /** The default policy's UDP mode. */
  mode?: string;
  flows: Array<{ src: string; sport: number; dst: string; dport: number; uplink: string; bytes: number; packets: number }>;
  /** Moves and flows moved since start; flows per uplink now (for /metrics). */
  moves?: number;
  flowsMoved?: number;
  /** New flows refused by the per-device flow cap since start, by source address (for /metrics). */
  capDrops?: Record<string, number>;
  /** UDP/443 packets answered with port-unreachable (`quic: block`) since start (for /metrics). */
  quicBlocked?: number;
  /** UDP/443 packets dropped unanswered, over the reject limits of `quic: block`, since start (for /metrics). */
  quicLimited?: number;
}

export interface PolicyView {
  /** Version of the OTA bundle the policy came from, null if set locally only. */
  version: number | null;
  updatedAt: string;
  defaults: PolicyDto;
}

export interface SubscriberInput {
  name: string;
  enabled: boolean;
  identifiers: {
    /** IPv4/IPv6 addresses or prefixes. */
    addresses: string[];
    macs: string[];
  };
  /** null: the cell default applies. */
  policy: PolicyDto | null;
}

export interface SubscriberView extends SubscriberInput {
  id: string;
  createdAt: string;
  updatedAt: string;
}

export interface ProxyView {
  id: string;
  address: string;
  port: number;
  protocol: 'convert' | 'socks5';
  priority: number;
  healthy: boolean;
  rttMs?: number;
  // candidate fields (issue 15), present when the store backs the list
  name?: string;
  location?: string;
  type?: 'on-path' | 'off-path';
  weight?: number;
  enabled?: boolean;
  socks5?: string | null;
  /** A SOCKS5 candidate's credentials: the username only, never the password. */
  auth?: { username: string } | null;
  apps?: Array<{ name: string; ports: number[]; prefixes: string[]; sni?: string[] }>;
  policies?: string[];
  /** Sessions chosen onto it now, and failed probes / sessions in a row. */
  sessions?: number;
  probeFailures?: number;
  sessionFailures?: number;
  lastError?: string | null;
}

export interface OtaView {
  version: number | null;
  previousVersion: number | null;
  appliedAt: string | null;
  lastCheck: string | null;
  lastError: { code: string; message: string } | null;
  source: string | null;
}

export type WebEventName = 'paths' | 'sessions' | 'modem' | 'wlan' | 'policy' | 'ota' | 'subscribers';

/** A tiny key-value store for the web's own state (admin hash, sessions); the lead backs it with SQLite. */
export interface KeyValueStore {
  get(key: string): string | undefined;
  set(key: string, value: string): void;
}

export interface WebDeps {
  health(): HealthView;
  sessions(): SessionDto[];
  paths(): PathView[];
  modem?(): ModemView;
  wlan?(): WlanView;
  subscribers: {
    list(): Promise<SubscriberView[]>;
    get(id: string): Promise<SubscriberView>;
    create(input: SubscriberInput): Promise<SubscriberView>;
    update(id: string, input: SubscriberInput): Promise<SubscriberView>;
    remove(id: string): Promise<void>;
  };
  policy: {
    get(): Promise<PolicyView>;
    set(defaults: PolicyDto): Promise<PolicyView>;
  };
  proxies(): ProxyView[];
  /** Replace the candidate list (refused as a whole: the old list stays). */
  setProxies?(list: unknown): Promise<ProxyView[]>;
  /** The M-server bypass cache of on-path steering. */
  mservers?(): Array<{ address: string; port: number; expiresAt: string }>;
  ota: {
    status(): OtaView;
    /** Verify and apply a pushed bundle; throws a DuocellError (DC_OTA_…) when refused. */
    pushBundle(bytes: Buffer): Promise<OtaView>;
  };
  /** The path manager and the resource policy's counters. */
  pathManager?(): Promise<PathManagerView>;
  /** Counters of refused sessions/subflows by reason, for /metrics. */
  refusals?(): Record<string, number>;
  /** DC_TARGET_FORBIDDEN refusals keyed "FRONT REASON" (e.g. "socks5 own-address"), for /metrics. */
  targetRefusals?(): Record<string, number>;
  /** Connections the fast path relayed / handed to the JS path since start (engine.fastCounts), for /metrics. */
  fastPath?(): { fast: number; handedOver: number };
  /** Outcomes of the SNI front's ClientHello reads since start ('sni', 'no-sni', DC_TLS_… codes), for /metrics. */
  sniOutcomes?(): Record<string, number>;
  /** UDP steering per flow (absent: not enabled on this box). */
  udp?(): Promise<UdpView>;
  /** Change notifications; the returned function unsubscribes. */
  events: { on(name: WebEventName, fn: () => void): () => void };
  /** Where the admin password hash and login sessions are kept. */
  kv: KeyValueStore;
}

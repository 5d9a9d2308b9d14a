import type { MptcpEvent } from '../../protocols/mptcp-pm/index.js';
import type { AccessType, PathEvent, PathView } from '../paths/types.js';

/** The path manager service's contracts and views (service.ts). */

export type EndpointFlag = 'signal' | 'subflow' | 'backup' | 'fullmesh';

export interface PmEndpoint {
  readonly id: number;
  readonly address: string;
  readonly flags: readonly string[];
  readonly ifIndex?: number;
  readonly port?: number;
}

export interface PmBackend {
  limits(): Promise<{ subflows: number; addAddrAccepted: number }>;
  setLimits(l: { subflows?: number; addAddrAccepted?: number }): Promise<void>;
  endpoints(): Promise<PmEndpoint[]>;
  addEndpoint(e: { address: string; id?: number; flags?: readonly EndpointFlag[]; ifIndex?: number }): Promise<void>;
  deleteEndpoint(id: number, address?: string): Promise<void>;
  setEndpointFlags(e: { id?: number; address?: string; flags: readonly EndpointFlag[] }): Promise<void>;
  /** Userspace PM (per connection); only in namespaces with net.mptcp.path_manager=userspace. */
  subflowCreate?(token: number, local: { address: string; id: number; ifIndex?: number }, remote: { address: string; port: number }): Promise<void>;
  subflowDestroy?(token: number, local: { address: string; port: number }, remote: { address: string; port: number }): Promise<void>;
  /** Userspace PM: ADD_ADDR of one local address with its id, on one connection. */
  announce?(token: number, local: { address: string; id: number }): Promise<void>;
  subscribe(): void;
  on(ev: 'event', cb: (e: MptcpEvent) => void): unknown;
  on(ev: 'lost', cb: (e: Error) => void): unknown;
  off(ev: 'event', cb: (e: MptcpEvent) => void): unknown;
  off(ev: 'lost', cb: (e: Error) => void): unknown;
}

export interface PathsLike {
  list(): PathView[];
  byAddress(address: string): PathView | undefined;
  on(ev: 'event', cb: (e: PathEvent) => void): unknown;
  off(ev: 'event', cb: (e: PathEvent) => void): unknown;
}

export interface SubflowView {
  readonly token: number;
  readonly saddr: string;
  readonly daddr: string;
  readonly sport: number;
  readonly dport: number;
  readonly locId: number;
  readonly remId: number;
  readonly access: AccessType | 'unknown';
  readonly path?: string;
  readonly backup: boolean;
  readonly state: 'established' | 'closed';
  readonly since: string;
  readonly error?: number;
  /** From sock_diag tcp_info (refreshCounters): bytes sent/received on this subflow, smoothed RTT. */
  readonly bytesSent?: number;
  readonly bytesReceived?: number;
  readonly rttMs?: number;
}

/** Per-subflow counters (drivers/netlink SockDiag.subflows() satisfies this). */
export interface SubflowCountersLike {
  readonly token?: number;
  readonly saddr: string;
  readonly sport: number;
  readonly daddr: string;
  readonly dport: number;
  readonly bytesSent: number;
  readonly bytesReceived: number;
  readonly rttMs: number;
}

/** Totals over the established subflows of one access type. */
export interface AccessTotals {
  readonly subflows: number;
  readonly bytesSent: number;
  readonly bytesReceived: number;
  /** Mean smoothed RTT of its subflows (ms). */
  readonly rttMs?: number;
}

/** One MPTCP connection as the path manager follows it (not the proxy's relayed session). */
export interface PmConnectionView {
  readonly token: number;
  readonly family: 4 | 6;
  readonly saddr: string;
  readonly daddr: string;
  readonly sport: number;
  readonly dport: number;
  readonly serverSide: boolean;
  /** The peer set the C flag: no join to its initial address and port (join what it announces). */
  readonly denyJoinInitial: boolean;
  readonly state: 'created' | 'established';
  readonly since: string;
  readonly subflows: readonly SubflowView[];
  /** Addresses the peer announced (ADD_ADDR): remote id → address. */
  readonly announced: Readonly<Record<number, string>>;
  /** Ports that came with an announcement (ADD_ADDR with a port): remote id → port. */
  readonly announcedPorts: Readonly<Record<number, number>>;
}

export interface PmStats {
  /** Events received, by type. */
  readonly events: Record<string, number>;
  readonly subflowsOpened: Record<string, number>;
  readonly subflowsClosed: Record<string, number>;
  readonly subflowErrors: number;
  readonly endpointAdds: number;
  readonly endpointDeletes: number;
  readonly syncFailures: number;
  /** Subflows destroyed because admitSubflow refused them, by reason. */
  readonly subflowsRefused: Record<string, number>;
  /** Subflows duocell asked the userspace PM to open. */
  readonly subflowsCreated: number;
  /** Last time (ms) from a refused subflow's event to its destroy command completing. */
  readonly lastEnforceMs?: number;
  /** Last time (ms) from a path event to the endpoint command that answered it. */
  readonly lastReactionMs?: number;
}

export interface PmServiceOptions {
  pm: PmBackend;
  paths: PathsLike;
  /** Limits to hold the kernel at (default subflows 8, add_addr_accepted 8). */
  limits?: { subflows: number; addAddrAccepted: number };
  /** Endpoint flags per path (default: ['subflow'] for every path). */
  flags?: (path: PathView) => EndpointFlag[];
  /** Do not touch endpoints (the userspace PM is in use: subflows are made per connection). */
  manageEndpoints?: boolean;
  /** Keep at most this many closed subflows per session in the view (default 8). */
  keepClosed?: number;
  /**
   * Admission of every subflow the kernel reports (policy: subflow limits, allowed access
   * networks / origin authentication). `false` or a reason string: the subflow is destroyed at
   * once (userspace PM only) and counted. The initial subflow is not subject to it.
   */
  admitSubflow?: (session: PmConnectionView, subflow: SubflowView) => boolean | string;
  /**
   * Userspace PM: which extra subflows a connection should have, asked when it is established
   * and when a path comes up. Each entry opens a subflow from `address` (of `path`) to the
   * connection's remote address and port, unless one from that address exists.
   */
  planSubflows?: (session: PmConnectionView, up: readonly PathView[]) => ReadonlyArray<{ path: PathView; address: string; remote?: { address: string; port: number } }>;
  /**
   * Userspace PM, connections the box accepted: the local addresses (with their ids) to announce
   * (ADD_ADDR) once the connection is established (the per-radio address ids of an M-UE session;
   * wiring/pm.ts `mueRadioAddresses`). Asked once per connection; nothing by default.
   */
  announceOnAccept?: (session: PmConnectionView) => ReadonlyArray<{ address: string; id: number }>;
  /** Per-subflow counters source (sock_diag); used by refreshCounters(). */
  counters?: () => Promise<readonly SubflowCountersLike[]>;
  /**
   * Access type of a subflow (default: the path owning its local address). A connection the
   * host accepted (serverSide) is better labelled from the peer's address: the access network
   * the UE joined from.
   */
  label?: (sf: { saddr: string; daddr: string; serverSide: boolean }) => { access: AccessType | 'unknown'; path?: string } | undefined;
  /** At most this many sessions tracked (default 65536): oldest dropped first. */
  maxSessions?: number;
  now?: () => number;
}

export interface PmServiceEvents {
  subflow: [{ type: 'opened' | 'closed' | 'priority'; subflow: SubflowView }];
  session: [{ type: 'opened' | 'established' | 'closed'; token: number }];
  synced: [{ added: number; deleted: number; changed: number }];
}

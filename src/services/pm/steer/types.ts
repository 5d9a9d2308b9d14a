import type { SteeringMode } from '../../../store/types.js';
import type { PathEvent, PathView } from '../../paths/types.js';
import type { PmConnectionView, SubflowCountersLike, SubflowView } from '../types.js';

/** The steering controller's words and contracts (see controller.ts for the picture). */

export type SteerAccess = 'cellular' | 'wlan';
/** The controller's modes: exactly the policy's steering modes. */
export type SteerModeName = SteeringMode;
/** Which accesses a connection may send on (the others' subflows are backup). */
export type Placement = 'both' | 'cellular' | 'wlan';

export interface SteerPolicy {
  readonly mode: SteerModeName;
  /** Percent, cellular + wlan = 100 (ratio mode). */
  readonly ratio: { readonly cellular: number; readonly wlan: number };
  /** active-standby: the active access; priority: the preferred one. Default 'wlan'. */
  readonly preferred?: SteerAccess;
  /** Connections with the same group are steered together (a subscriber). Default 'default'. */
  readonly group?: string;
}

/** Per-subflow counters (drivers/netlink SockDiag.subflows() satisfies this): the pm service's, plus bytes acked and the minimum RTT. */
export type SteerCounters = Omit<SubflowCountersLike, 'rttMs'> & {
  readonly rttMs?: number;
  readonly bytesAcked?: number;
  readonly minRttMs?: number;
};

/** drivers/netlink MptcpPm satisfies this. */
export interface SteerBackend {
  setSubflowFlags(token: number, local: { address: string; port: number }, remote: { address: string; port: number }, flags: readonly 'backup'[]): Promise<void>;
  subflowDestroy?(token: number, local: { address: string; port: number }, remote: { address: string; port: number }): Promise<void>;
}

/** services/pm PmService satisfies this. */
export interface SteerSessions {
  sessions(): PmConnectionView[];
  session(token: number): PmConnectionView | undefined;
  on(ev: 'subflow', cb: (e: { type: 'opened' | 'closed' | 'priority'; subflow: SubflowView }) => void): unknown;
  on(ev: 'session', cb: (e: { type: 'opened' | 'established' | 'closed'; token: number }) => void): unknown;
  off(ev: 'subflow', cb: (e: { type: 'opened' | 'closed' | 'priority'; subflow: SubflowView }) => void): unknown;
  off(ev: 'session', cb: (e: { type: 'opened' | 'established' | 'closed'; token: number }) => void): unknown;
}

/** services/paths PathsService satisfies this. */
export interface SteerPaths {
  list(): PathView[];
  on(ev: 'event', cb: (e: PathEvent) => void): unknown;
  off(ev: 'event', cb: (e: PathEvent) => void): unknown;
}

export interface SteeringOptions {
  sessions: SteerSessions;
  backend: SteerBackend;
  /** The steering policy of a connection; undefined leaves it alone. */
  policy: (session: PmConnectionView) => SteerPolicy | undefined;
  /** Per-subflow counters (sock_diag): needed by ratio and priority. */
  counters?: () => Promise<readonly SteerCounters[]>;
  /** Path events: a path going down triggers failover at once (else only subflow closes do). */
  paths?: SteerPaths;
  /** Access type of a subflow (default: the PmService label). */
  accessOf?: (sf: SubflowView) => SteerAccess | undefined;
  /** Measurement and decision period (default 250 ms). */
  intervalMs?: number;
  /** Sliding window of the measured split (default 3000 ms). */
  windowMs?: number;
  /** Ratio: no move while |share − target| ≤ this many percentage points (default 1). */
  deadbandPp?: number;
  /** Ratio: after a move, wait this long before the next (default 250 ms). */
  settleMs?: number;
  /** Ratio: judge the share this far ahead along its current slope (default 750 ms). */
  lookaheadMs?: number;
  /** Do not decide on a window that carried fewer bytes (default 64 KiB). */
  minWindowBytes?: number;
  /** Destroy the subflows on a path that went down (default true; userspace PM only). */
  closeDownPaths?: boolean;
  now?: () => number;
}

export interface SteerStats {
  readonly ticks: number;
  readonly commands: number;
  readonly commandFailures: number;
  /** Connections whose SET_FLAGS the kernel refused with EINVAL (not under the userspace PM). */
  readonly unsupported: number;
  readonly badPolicies: number;
  /** Level changes made by the ratio loop. */
  readonly moves: number;
  readonly failovers: number;
  readonly subflowsDestroyed: number;
  /** Last time (ms) from a failure (path down / active subflows closed) to the flags acknowledged. */
  readonly lastFailoverMs?: number;
  /** Last time (ms) a SET_FLAGS took to be acknowledged. */
  readonly lastCommandMs?: number;
}

export interface SteerGroupView {
  readonly group: string;
  readonly mode: SteerModeName;
  /** Target cellular share, percent (ratio mode). */
  readonly target?: number;
  /** Measured cellular share over the window, percent (undefined: too few bytes). */
  readonly share?: number;
  readonly windowBytes: number;
  readonly level?: number;
  readonly connections: number;
  readonly placements: Readonly<Record<Placement | 'fixed', number>>;
  readonly overflow?: boolean;
  /** smallest-delay: the access with the lowest measured RTT. */
  readonly fastest?: SteerAccess;
}

export interface SteeringEvents {
  placement: [{ token: number; group: string; placement: Placement }];
  failover: [{ ms: number; sessions: number; cause: string }];
  tick: [readonly SteerGroupView[]];
}


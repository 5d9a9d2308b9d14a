import type { Placement, SteerAccess, SteerGroupView, SteerModeName, SteerPolicy } from './types.js';

/**
 * A steering mode is a plugin of the controller (as mptcpd's path-manager plugins are): it keeps
 * its own state per group (subscriber) and fills only the hooks it needs. The controller
 * measures, calls the hooks, and turns what `carry` answers into backup flags.
 *
 *   policy seen / changed ─► init(now, previous)         fresh state of the group
 *   every tick ────────────► tick(state, measurement)    decide (ratio level, overflow, …)
 *   reconcile ─────────────► place(state, n)             one placement per movable connection
 *                            carry(state, policy, place) accesses a connection sends on
 *   groups() ──────────────► view(state, policy)         extra fields for the status view
 */

/** RTT figures of one access: the subflows' smoothed RTT (mean) and minimum RTT (TCP_INFO). */
export interface AccessRtt {
  readonly meanMs: number;
  readonly minMs: number;
}

/** What the controller measured for one group over its sliding window. */
export interface ModeTick {
  readonly now: number;
  readonly group: string;
  readonly policy: SteerPolicy;
  /** Bytes per access over the window, and the window's length (ms). */
  readonly cell: number;
  readonly wlan: number;
  readonly spanMs: number;
  /** Cellular share over the window 0..1 (undefined: too few bytes). */
  readonly share: number | undefined;
  /** The window's samples (bytes per access per tick), oldest first. */
  readonly samples: ReadonlyArray<{ readonly t: number; readonly cell: number; readonly wlan: number }>;
  /** Fewest bytes a window must carry to be judged. */
  readonly minWindowBytes: number;
  /** Smoothed share change per ms. */
  readonly slope: number;
  /** Connections with a live subflow on both accesses. */
  readonly movable: number;
  /** Per access, from the group's subflows (TCP_INFO); missing: no subflow reported an RTT. */
  readonly rtt: Partial<Record<SteerAccess, AccessRtt>>;
  /** Per access, the paths service's measured RTT (probes, else passive), up paths only. */
  readonly pathRttMs: Partial<Record<SteerAccess, number>>;
  /** The controller's tuning. */
  readonly deadband: number;
  readonly settleMs: number;
  readonly lookaheadMs: number;
  /** Hysteresis hold for overflow decisions (ms). */
  readonly holdMs: number;
  /** Count a move (the controller's `moves` statistic). */
  moved(): void;
}

export interface SteerMode<S = unknown> {
  readonly name: SteerModeName;
  /** Reason a policy of this mode cannot be used (mode-specific fields), or undefined. */
  problem?(p: Record<string, unknown>): string | undefined;
  /** State for a group whose policy is new (or changed); `previous` is this mode's own earlier state, if any. */
  init(now: number, previous: S | undefined): S;
  /** One measurement round (every intervalMs). */
  tick?(s: S, m: ModeTick): void;
  /** Placements of the group's n movable connections (first-seen order); without it, undefined each. */
  place?(s: S, n: number): Placement[];
  /** Accesses one connection should send on; the others' subflows become backup. */
  carry(s: S, policy: SteerPolicy, placement: Placement | undefined): ReadonlySet<SteerAccess>;
  /** Mode-specific fields of the group's status view. */
  view?(s: S, policy: SteerPolicy): Partial<SteerGroupView>;
}

/** Shorthand for a set of accesses. */
export const accesses = (...a: SteerAccess[]): ReadonlySet<SteerAccess> => new Set(a);

import { EventEmitter } from 'node:events';
import { DuocellError, toDuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import type { SteeringMode } from '../../store/types.js';
import type { PathEvent, PathView } from '../paths/types.js';
import type { SessionView, SubflowCountersLike, SubflowView } from './service.js';

/**
 * Steering: a subscriber's steering mode realised per connection with the one lever the kernel
 * gives, the backup flag of a subflow (MPTCP_PM_CMD_SET_FLAGS with a token; the kernel sets the
 * local `request_bkup`, which its own scheduler honours, and sends MP_PRIO, which the peer's
 * scheduler honours). A connection whose cellular subflows are backup sends on WLAN only, and
 * so on. Per-connection SET_FLAGS needs net.mptcp.path_manager=userspace in the namespace: the
 * in-kernel PM answers EINVAL (the session is then marked unsupported and left alone).
 *
 *   PmService 'subflow' events ──► reconcile that connection at once (new joins get their flag)
 *   paths 'path-down' ───────────► destroy subflows on it, re-flag every connection (failover)
 *   every intervalMs: counters (sock_diag, one dump) ─► per-access byte deltas per group
 *        ─► sliding window share ─► ratio: move the group's level ─► placements ─► SET_FLAGS
 *
 * Modes (per group = per subscriber):
 *   active-standby  the `preferred` (active) access carries everything; the other one's subflows
 *                   are backup from the moment they open. When the active access has no live
 *                   subflow (path down, subflows closed) the standby's flags are cleared at once;
 *                   when an active subflow is back, the standby is made backup again.
 *   priority        as active-standby while the preferred access keeps up, but the other access
 *                   is also used when the preferred one is saturated (its subflows' smoothed RTT
 *                   well above their minimum: a standing queue); released when the group's total
 *                   throughput falls below 80 % of what the preferred access alone carried.
 *   ratio           closed loop on the cellular share of the group's bytes over a sliding window.
 *                   The group's connections sit on a ladder of 2N+1 levels: level L ≤ N gives L
 *                   connections both accesses and the rest WLAN only; L > N gives L−N connections
 *                   cellular only and the rest both. Outside a deadband the level moves towards
 *                   the target (step ∝ error; going down, doubled while the error does not
 *                   shrink), then waits settleMs for the kernel's queues to follow.
 *
 * Measurement: sock_diag (one netlink dump of every subflow's tcp_info, keyed by the token the
 * mptcp_pm events carry), not MPTCP_FULL_INFO: that is a getsockopt on each connection's fd,
 * which this service does not hold (the proxy engine does, and the kernel PM's connections may
 * belong to anyone), and it would cost one syscall per connection per tick. Bytes = acked sent
 * + received, per subflow, per tick.
 *
 * With greedy flows on separate bottlenecks, any connection on a path fills it, so the ladder's
 * middle levels all give the natural capacity split (after the connections' windows have grown);
 * the loop then alternates between low levels and the window average meets the target (a
 * delta-sigma modulation in time): measured on 20 bulk transfers over 20/30 Mbit/s, 30:70 is
 * reached in about 3 s and the 3 s window then swings about ±5 points around it with a period of
 * about 4-5 s. The kernel takes about 1 s to act on a backup flag when the subflow's send buffer
 * is full: net.ipv4.tcp_notsent_lowat (e.g. 16384) in the namespace shortens that.
 * With application-limited traffic the middle levels give intermediate shares and the loop
 * settles on one.
 */

const log = logger('duocell:pm:steer');

export type SteerAccess = 'cellular' | 'wlan';
/** Which accesses a connection may send on (the others' subflows are backup). */
export type Placement = 'both' | 'cellular' | 'wlan';

export interface SteerPolicy {
  readonly mode: SteeringMode;
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
  sessions(): SessionView[];
  session(token: number): SessionView | undefined;
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
  policy: (session: SessionView) => SteerPolicy | undefined;
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
  readonly mode: SteeringMode;
  /** Target cellular share, percent (ratio mode). */
  readonly target?: number;
  /** Measured cellular share over the window, percent (undefined: too few bytes). */
  readonly share?: number;
  readonly windowBytes: number;
  readonly level?: number;
  readonly connections: number;
  readonly placements: Readonly<Record<Placement | 'fixed', number>>;
  readonly overflow?: boolean;
}

export interface SteeringEvents {
  placement: [{ token: number; group: string; placement: Placement }];
  failover: [{ ms: number; sessions: number; cause: string }];
  tick: [readonly SteerGroupView[]];
}

// --- pure decisions (unit-tested) ----------------------------------------------------------------

/** Reason a policy cannot be used, or undefined when it is fine. */
export function policyProblem(p: unknown): string | undefined {
  if (typeof p !== 'object' || p === null) return 'policy is not an object';
  const o = p as Record<string, unknown>;
  if (o.mode !== 'active-standby' && o.mode !== 'priority' && o.mode !== 'ratio') return `unknown steering mode ${JSON.stringify(o.mode)}`;
  if (o.preferred !== undefined && o.preferred !== 'cellular' && o.preferred !== 'wlan') return `unknown access ${JSON.stringify(o.preferred)}`;
  if (o.group !== undefined && typeof o.group !== 'string') return 'group is not a string';
  if (o.mode === 'ratio') {
    const r = o.ratio as Record<string, unknown> | undefined;
    if (typeof r !== 'object' || r === null) return 'ratio missing';
    const c = r.cellular;
    const w = r.wlan;
    if (typeof c !== 'number' || typeof w !== 'number' || !Number.isFinite(c) || !Number.isFinite(w) || c < 0 || w < 0) return 'ratio shares must be numbers ≥ 0';
    if (Math.abs(c + w - 100) > 0.5) return `ratio ${c}:${w} does not add up to 100`;
  }
  return undefined;
}

/** Placements of n connections (in first-seen order) at a ladder level 0..2n. */
export function placementsAt(level: number, n: number): Placement[] {
  const l = Math.max(0, Math.min(2 * n, Math.round(level)));
  const out: Placement[] = [];
  for (let i = 0; i < n; i++) {
    if (l <= n) out.push(i < l ? 'both' : 'wlan');
    else out.push(i < l - n ? 'cellular' : 'both');
  }
  return out;
}

export interface RatioState {
  readonly level: number;
  /** Direction of the last move (0: none / in band). */
  readonly dir: -1 | 0 | 1;
  readonly step: number;
  /** |error| when the last move was made. */
  readonly lastError: number;
  readonly lastMoveAt: number;
  /**
   * What the levels were seen to do: `lo` is the highest level seen to give too little
   * cellular (kept for the view only), `hi` the lowest level ≥ 1 seen to give too much
   * (−1 / 2N+1: not seen). The loop does not climb to `hi` or above: with greedy flows it ends
   * up alternating between hi−1 and hi. Both are forgotten after boundsMs.
   */
  readonly lo: number;
  readonly hi: number;
  readonly boundsAt: number;
}

export interface RatioInput {
  /** Target cellular share 0..1. */
  readonly target: number;
  /** Measured cellular share over the window 0..1 (undefined: not enough bytes). */
  readonly share: number | undefined;
  /** Share since the last move settled, i.e. what the current level gives (undefined: unknown). */
  readonly fast?: number | undefined;
  /** Share change per ms (for the look-ahead), 0 if unknown. */
  readonly slope?: number;
  readonly n: number;
  readonly deadband: number;
  readonly settleMs: number;
  readonly lookaheadMs: number;
  /** Forget lo/hi after this long (the traffic may have changed; default 5 s). */
  readonly boundsMs?: number;
  readonly now: number;
}

export const initialRatioState = (n: number): RatioState => ({ level: n, dir: 0, step: 0, lastError: 0, lastMoveAt: -Infinity, lo: -1, hi: 2 * n + 1, boundsAt: -Infinity });

/** One decision of the ratio loop: the next ladder level. */
export function ratioStep(s: RatioState, i: RatioInput): RatioState {
  const max = 2 * i.n;
  const fixed = (level: number): RatioState => ({ ...s, level, dir: 0, step: 0, lo: -1, hi: max + 1 });
  if (i.n === 0) return fixed(0);
  if (i.target <= 0) return fixed(0);
  if (i.target >= 1) return fixed(max);
  const level = Math.max(0, Math.min(max, s.level));
  if (i.share === undefined || i.now - s.lastMoveAt < i.settleMs) return { ...s, level };
  // what the current level does
  let lo = s.lo;
  let hi = Math.min(s.hi, max + 1);
  if (i.now - s.boundsAt > (i.boundsMs ?? 5000)) {
    lo = -1;
    hi = max + 1;
  }
  const boundsAt = lo === -1 && hi === max + 1 ? i.now : s.boundsAt;
  if (i.fast !== undefined) {
    // (level 0 cannot be avoided, so it is never a bound: what it shows is queues draining)
    if (i.fast > i.target + i.deadband && level > 0) hi = Math.min(hi, level);
    else if (i.fast < i.target - i.deadband) lo = Math.max(lo, level);
  }
  const predicted = Math.max(0, Math.min(1, i.share + (i.slope ?? 0) * i.lookaheadMs));
  const e = predicted - i.target;
  if (Math.abs(e) <= i.deadband) return { ...s, level, dir: 0, step: 0, lo, hi, boundsAt };
  const dir: -1 | 1 = e > 0 ? -1 : 1;
  // a second move the same way waits until the first one's effect was seen (flows ramp up)
  if (dir === s.dir && i.fast === undefined) return { ...s, level, lo, hi, boundsAt };
  // going down, keep going (and faster) while the error does not shrink: with greedy flows the
  // middle levels all give the same split. Going up never accelerates: flows that were backup
  // ramp up slowly, so the error shrinks late and doubling would overshoot.
  const consecutive = s.dir === dir && i.now - s.lastMoveAt <= 4 * Math.max(i.settleMs, 250);
  const step = dir < 0 && consecutive && Math.abs(e) >= s.lastError * 0.9 ? Math.min(max, s.step * 2) : Math.max(1, Math.ceil(Math.abs(e) * i.n - 1e-9));
  let next = level + dir * step;
  // going up, never above a level seen to give too much; going down, straight below it.
  // (lo is not used to bound moves: right after a move up the flows are still ramping up and
  // the level looks weaker than it is.)
  if (dir < 0) next = Math.min(next, hi - 1);
  else next = Math.min(next, max, hi);
  next = Math.max(0, Math.min(max, next));
  if ((dir < 0 && next >= level) || (dir > 0 && next <= level)) return { ...s, level, dir, step, lastError: Math.abs(e), lo, hi, boundsAt };
  return { level: next, dir, step, lastError: Math.abs(e), lastMoveAt: i.now, lo, hi, boundsAt };
}

/**
 * Backup flag each subflow should have: true = backup. `carry` = accesses the connection should
 * send on; when none of them has a live subflow, nothing is backup (never strand a connection).
 */
export function backupFlags(
  subflows: ReadonlyArray<{ key: string; access: SteerAccess | undefined; alive: boolean }>,
  carry: ReadonlySet<SteerAccess>,
): Map<string, boolean> {
  const alive = new Set(subflows.filter((f) => f.alive && f.access !== undefined).map((f) => f.access!));
  const use = [...carry].some((a) => alive.has(a)) ? carry : alive;
  const out = new Map<string, boolean>();
  for (const f of subflows) if (f.access !== undefined) out.set(f.key, !use.has(f.access));
  return out;
}

export interface PriorityState {
  readonly overflow: boolean;
  readonly since: number;
  /** Highest rate (bytes/ms) the preferred access carried while saturated. */
  readonly capacity: number;
}

export interface PriorityInput {
  readonly now: number;
  /** Mean and minimum smoothed RTT (ms) of the preferred access's subflows. */
  readonly rttMs: number | undefined;
  readonly minRttMs: number | undefined;
  /** Rates over the window, bytes/ms. */
  readonly preferredRate: number;
  readonly totalRate: number;
  readonly holdMs: number;
}

/** Saturated: a standing queue of at least max(minRtt, 10 ms) on the preferred access. */
export function prioritySaturated(rttMs: number | undefined, minRttMs: number | undefined): boolean {
  if (rttMs === undefined || minRttMs === undefined) return false;
  return rttMs - minRttMs >= Math.max(minRttMs, 10);
}

export function priorityStep(s: PriorityState, i: PriorityInput): PriorityState {
  const sat = prioritySaturated(i.rttMs, i.minRttMs);
  if (!s.overflow) {
    const capacity = sat ? Math.max(s.capacity, i.preferredRate) : s.capacity;
    if (sat && i.now - s.since >= i.holdMs) return { overflow: true, since: i.now, capacity };
    return { overflow: false, since: sat ? s.since : i.now, capacity };
  }
  const low = s.capacity > 0 && i.totalRate < 0.8 * s.capacity;
  if (low && i.now - s.since >= i.holdMs) return { overflow: false, since: i.now, capacity: s.capacity };
  return { overflow: true, since: low ? s.since : i.now, capacity: s.capacity };
}

// --- the controller ------------------------------------------------------------------------------

const sfKey = (s: { saddr: string; sport: number; daddr: string; dport: number }): string => `${s.saddr}|${s.sport}|${s.daddr}|${s.dport}`;

interface Sample {
  t: number;
  cell: number;
  wlan: number;
}

interface Group {
  key: string;
  policy: SteerPolicy;
  samples: Sample[];
  ratio: RatioState;
  /** level / 2N, kept when N changes. */
  frac: number;
  n: number;
  prio: PriorityState;
  lastShare: { t: number; share: number } | undefined;
  share: number | undefined;
  windowBytes: number;
  slope: number;
}

interface Conn {
  seq: number;
  /** Flag last set per subflow key (true = backup). */
  applied: Map<string, boolean>;
  unsupported: boolean;
  /** SET_FLAGS the kernel accepted / refused with EINVAL on this connection. */
  accepted: number;
  refused: number;
  placement: Placement | undefined;
}

export class SteeringController extends EventEmitter<SteeringEvents> {
  readonly #o: SteeringOptions;
  readonly #groups = new Map<string, Group>();
  readonly #conns = new Map<number, Conn>();
  readonly #last = new Map<string, number>();
  readonly #down = new Set<string>();
  readonly #policies = new Map<number, SteerPolicy | undefined>();
  #seq = 0;
  #timer: NodeJS.Timeout | undefined;
  #busy = false;
  #started = false;
  readonly #badLogged = new Set<string>();
  readonly #s = {
    ticks: 0, commands: 0, commandFailures: 0, unsupported: 0, badPolicies: 0, moves: 0, failovers: 0, subflowsDestroyed: 0,
    lastFailoverMs: undefined as number | undefined, lastCommandMs: undefined as number | undefined,
  };

  constructor(o: SteeringOptions) {
    super();
    for (const k of ['intervalMs', 'windowMs', 'settleMs', 'lookaheadMs', 'minWindowBytes', 'deadbandPp'] as const) {
      const v = o[k];
      if (v !== undefined && (!Number.isFinite(v) || v < 0 || (k === 'intervalMs' && v === 0))) {
        throw new DuocellError('DC_CONFIG_INVALID', `steering option ${k} must be a positive number, got ${String(v)}`);
      }
    }
    this.#o = o;
  }

  #now(): number {
    return (this.#o.now ?? Date.now)();
  }

  readonly #onSubflow = (e: { type: 'opened' | 'closed' | 'priority'; subflow: SubflowView }): void => {
    if (e.type === 'priority') return;
    const t0 = this.#now();
    const sess = this.#o.sessions.session(e.subflow.token);
    if (sess === undefined) return;
    const wasCarrying = e.type === 'closed' ? this.#carrying(sess, e.subflow) : false;
    void this.#reconcile([sess])
      .then((cleared) => {
        if (wasCarrying && cleared > 0) this.#failedOver(t0, 1, 'subflow closed');
      })
      .catch((x: unknown) => log.warn({ err: x }, 'steering after a subflow event failed'));
  };

  readonly #onSession = (e: { type: 'opened' | 'established' | 'closed'; token: number }): void => {
    if (e.type !== 'closed') return;
    this.#conns.delete(e.token);
    this.#policies.delete(e.token);
  };

  readonly #onPath = (e: PathEvent): void => {
    if (e.type === 'path-changed') return;
    const t0 = this.#now();
    if (e.type === 'path-down') for (const a of e.path.addresses) this.#down.add(a);
    else for (const a of e.path.addresses) this.#down.delete(a);
    const sessions = this.#o.sessions.sessions();
    if (e.type === 'path-down' && this.#o.closeDownPaths !== false) {
      void this.#destroyOn(sessions, e.path.addresses).catch((x: unknown) => log.warn({ err: x }, 'closing subflows on a dead path failed'));
    }
    void this.#reconcile(sessions)
      .then((cleared) => {
        if (e.type === 'path-down' && cleared > 0) this.#failedOver(t0, sessions.length, `path ${e.path.name} down`);
      })
      .catch((x: unknown) => log.warn({ err: x }, 'steering after a path event failed'));
  };

  start(): void {
    if (this.#started) return;
    this.#started = true;
    for (const p of this.#o.paths?.list() ?? []) if (p.state !== 'up') for (const a of p.addresses) this.#down.add(a);
    this.#o.sessions.on('subflow', this.#onSubflow);
    this.#o.sessions.on('session', this.#onSession);
    this.#o.paths?.on('event', this.#onPath);
    const every = this.#o.intervalMs ?? 250;
    this.#timer = setInterval(() => void this.tick().catch((e: unknown) => log.warn({ err: e }, 'steering tick failed')), every);
    this.#timer.unref();
    void this.#reconcile(this.#o.sessions.sessions()).catch((x: unknown) => log.warn({ err: x }, 'steering at start failed'));
  }

  stop(): void {
    if (!this.#started) return;
    this.#started = false;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#o.sessions.off('subflow', this.#onSubflow);
    this.#o.sessions.off('session', this.#onSession);
    this.#o.paths?.off('event', this.#onPath);
  }

  #failedOver(t0: number, sessions: number, cause: string): void {
    const ms = this.#now() - t0;
    this.#s.failovers++;
    this.#s.lastFailoverMs = ms;
    log.info({ ms, sessions, cause }, 'failover: standby subflows carry traffic');
    this.emit('failover', { ms, sessions, cause });
  }

  #access(sf: SubflowView): SteerAccess | undefined {
    if (this.#o.accessOf !== undefined) return this.#o.accessOf(sf);
    return sf.access === 'cellular' || sf.access === 'wlan' ? sf.access : undefined;
  }

  /** The policy of a connection, asked once per tick (the policy function may query the store). */
  #policy(sess: SessionView): SteerPolicy | undefined {
    if (this.#policies.has(sess.token)) return this.#policies.get(sess.token);
    const p = this.#askPolicy(sess);
    this.#policies.set(sess.token, p);
    return p;
  }

  #askPolicy(sess: SessionView): SteerPolicy | undefined {
    let p: SteerPolicy | undefined;
    try {
      p = this.#o.policy(sess);
    } catch (e) {
      this.#bad(sess.token, `policy function threw: ${(e as Error).message}`);
      return undefined;
    }
    if (p === undefined) return undefined;
    const why = policyProblem(p);
    if (why !== undefined) {
      this.#bad(sess.token, why);
      return undefined;
    }
    return p;
  }

  #bad(token: number, why: string): void {
    this.#s.badPolicies++;
    if (this.#badLogged.has(why)) return;
    if (this.#badLogged.size < 64) this.#badLogged.add(why);
    log.warn({ token, why }, 'steering policy unusable: connection left as the kernel made it');
  }

  #conn(token: number): Conn {
    let c = this.#conns.get(token);
    if (c === undefined) {
      c = { seq: this.#seq++, applied: new Map(), unsupported: false, accepted: 0, refused: 0, placement: undefined };
      this.#conns.set(token, c);
    }
    return c;
  }

  #group(key: string, policy: SteerPolicy): Group {
    let g = this.#groups.get(key);
    if (g === undefined) {
      g = {
        key, policy, samples: [], ratio: initialRatioState(0), frac: 0.5, n: 0,
        prio: { overflow: false, since: this.#now(), capacity: 0 }, lastShare: undefined, share: undefined, windowBytes: 0, slope: 0,
      };
      this.#groups.set(key, g);
    }
    if (g.policy.mode !== policy.mode || g.policy.ratio?.cellular !== policy.ratio?.cellular) {
      // a new policy starts the loop afresh
      g.ratio = initialRatioState(g.n);
      g.frac = 0.5;
      g.prio = { overflow: false, since: this.#now(), capacity: 0 };
    }
    g.policy = policy;
    return g;
  }

  #alive(sf: SubflowView): boolean {
    return sf.state === 'established' && !this.#down.has(sf.saddr);
  }

  /** Was this (now closed) subflow one of the accesses its connection sent on? */
  #carrying(sess: SessionView, sf: SubflowView): boolean {
    const c = this.#conns.get(sess.token);
    return c !== undefined && c.applied.get(sfKey(sf)) === false;
  }

  /** Movable members of each group, in first-seen order (both accesses alive). */
  #members(sessions: readonly SessionView[]): Map<string, { group: Group; movable: SessionView[]; fixed: SessionView[] }> {
    const out = new Map<string, { group: Group; movable: SessionView[]; fixed: SessionView[] }>();
    for (const s of sessions) {
      const p = this.#policy(s);
      if (p === undefined) continue;
      const key = p.group ?? 'default';
      let m = out.get(key);
      if (m === undefined) {
        m = { group: this.#group(key, p), movable: [], fixed: [] };
        out.set(key, m);
      }
      const c = this.#conn(s.token);
      if (c.unsupported) {
        m.fixed.push(s); // measured, never flagged
        continue;
      }
      const acc = new Set(s.subflows.filter((f) => this.#alive(f)).map((f) => this.#access(f)));
      (acc.has('cellular') && acc.has('wlan') ? m.movable : m.fixed).push(s);
    }
    for (const m of out.values()) m.movable.sort((a, b) => this.#conn(a.token).seq - this.#conn(b.token).seq);
    return out;
  }

  /** Accesses a connection should send on, from its group's state. */
  #carry(g: Group, placement: Placement | undefined): Set<SteerAccess> {
    const p = g.policy;
    const preferred = p.preferred ?? 'wlan';
    switch (p.mode) {
      case 'active-standby':
        return new Set([preferred]);
      case 'priority':
        return g.prio.overflow ? new Set<SteerAccess>(['cellular', 'wlan']) : new Set([preferred]);
      case 'ratio':
        if (placement === 'cellular') return new Set<SteerAccess>(['cellular']);
        if (placement === 'wlan') return new Set<SteerAccess>(['wlan']);
        return new Set<SteerAccess>(['cellular', 'wlan']);
    }
  }

  /**
   * Bring the flags of these connections in line with their group's state.
   * Resolves to the number of backup flags cleared (a standby taking over).
   */
  async #reconcile(sessions: readonly SessionView[]): Promise<number> {
    const all = this.#members(sessions.length === 0 ? [] : this.#o.sessions.sessions());
    const wanted = new Set(sessions.map((s) => s.token));
    const jobs: Array<Promise<boolean>> = [];
    for (const { group: g, movable, fixed } of all.values()) {
      let places: Placement[] = [];
      if (g.policy.mode === 'ratio') {
        if (g.n !== movable.length) {
          g.n = movable.length;
          g.ratio = { ...g.ratio, level: Math.round(g.frac * 2 * g.n) };
        }
        places = placementsAt(g.ratio.level, movable.length);
      }
      movable.forEach((s, i) => {
        if (!wanted.has(s.token)) return;
        jobs.push(...this.#apply(g, s, places[i]));
      });
      for (const s of fixed) if (wanted.has(s.token)) jobs.push(...this.#apply(g, s, undefined));
    }
    const r = await Promise.all(jobs);
    return r.filter((x) => x).length;
  }

  /** SET_FLAGS for every subflow of one connection whose flag differs; each job → true if it cleared a flag. */
  #apply(g: Group, s: SessionView, placement: Placement | undefined): Array<Promise<boolean>> {
    const c = this.#conn(s.token);
    if (c.unsupported) return [];
    if (placement !== undefined && c.placement !== placement) {
      c.placement = placement;
      this.emit('placement', { token: s.token, group: g.key, placement });
    }
    const est = s.subflows.filter((f) => f.state === 'established');
    const flags = backupFlags(est.map((f) => ({ key: sfKey(f), access: this.#access(f), alive: this.#alive(f) })), this.#carry(g, placement));
    const jobs: Array<Promise<boolean>> = [];
    for (const f of est) {
      const key = sfKey(f);
      const want = flags.get(key);
      if (want === undefined || !this.#alive(f)) continue; // a dead path's subflows are left alone
      const prev = c.applied.get(key);
      if (prev === want) continue;
      if (prev === undefined && !want && !f.backup) {
        c.applied.set(key, false); // the kernel's default: nothing to send
        continue;
      }
      c.applied.set(key, want);
      jobs.push(this.#setFlag(c, f, want).then((ok) => ok && !want));
    }
    for (const k of [...c.applied.keys()]) if (!est.some((f) => sfKey(f) === k)) c.applied.delete(k);
    return jobs;
  }

  async #setFlag(c: Conn, f: SubflowView, backup: boolean): Promise<boolean> {
    const t0 = this.#now();
    this.#s.commands++;
    try {
      await this.#o.backend.setSubflowFlags(f.token, { address: f.saddr, port: f.sport }, { address: f.daddr, port: f.dport }, backup ? ['backup'] : []);
      this.#s.lastCommandMs = this.#now() - t0;
      c.accepted++;
      return true;
    } catch (e) {
      const err = toDuocellError(e);
      // EINVAL: either the connection is not under the userspace PM ("userspace PM not
      // selected") or the kernel found no such subflow (it just closed; also seen for a moment
      // on a brand-new connection). Only a connection that never accepted a SET_FLAGS and
      // refused it four times (one per tick) is given up.
      if (err.errno === 22 && c.accepted === 0 && ++c.refused >= 4) {
        if (!c.unsupported) {
          c.unsupported = true;
          this.#s.unsupported++;
          log.warn({ token: f.token }, 'SET_FLAGS refused (EINVAL): the connection is not under the userspace path manager; not steered');
        }
      } else {
        this.#s.commandFailures++;
        c.applied.delete(sfKey(f)); // try again next time
        log.debug({ err, token: f.token, local: `${f.saddr}:${f.sport}`, remote: `${f.daddr}:${f.dport}`, backup }, 'SET_FLAGS failed (subflow gone?)');
      }
      return false;
    }
  }

  async #destroyOn(sessions: readonly SessionView[], addresses: readonly string[]): Promise<void> {
    const destroy = this.#o.backend.subflowDestroy;
    if (destroy === undefined) return;
    const jobs: Array<Promise<void>> = [];
    for (const s of sessions) {
      if (this.#conns.get(s.token)?.unsupported === true || this.#policy(s) === undefined) continue;
      const est = s.subflows.filter((f) => f.state === 'established');
      for (const f of est) {
        if (!addresses.includes(f.saddr) || est.length < 2) continue;
        jobs.push(destroy.call(this.#o.backend, f.token, { address: f.saddr, port: f.sport }, { address: f.daddr, port: f.dport })
          .then(() => {
            this.#s.subflowsDestroyed++;
          })
          .catch((e: unknown) => log.debug({ err: e, token: f.token }, 'destroying a subflow on a down path failed')));
      }
    }
    await Promise.all(jobs);
  }

  /** One round: measure (counters), decide (ratio / priority), apply. Serialised. */
  async tick(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      await this.#tick();
    } finally {
      this.#busy = false;
    }
  }

  async #tick(): Promise<void> {
    this.#s.ticks++;
    this.#policies.clear();
    const now = this.#now();
    const sessions = this.#o.sessions.sessions();
    const byToken = new Map(sessions.map((s) => [s.token, s]));
    const members = this.#members(sessions);
    const groupOf = new Map<number, Group>();
    for (const m of members.values()) for (const s of [...m.movable, ...m.fixed]) groupOf.set(s.token, m.group);

    // 1. measure: per-access byte deltas per group, RTT of each access
    const delta = new Map<Group, Sample>();
    const rtt = new Map<Group, Record<SteerAccess, { sum: number; n: number; min: number }>>();
    if (this.#o.counters !== undefined) {
      let list: readonly SteerCounters[] = [];
      try {
        list = await this.#o.counters();
      } catch (e) {
        log.warn({ err: e }, 'subflow counters unavailable');
      }
      const seen = new Set<string>();
      for (const c of list) {
        if (c.token === undefined) continue;
        const key = `${c.token}|${sfKey(c)}`;
        seen.add(key);
        const bytes = (c.bytesAcked ?? c.bytesSent) + c.bytesReceived;
        const prev = this.#last.get(key);
        this.#last.set(key, bytes);
        const g = groupOf.get(c.token);
        const s = byToken.get(c.token);
        if (g === undefined || s === undefined) continue;
        const sf = s.subflows.find((f) => sfKey(f) === sfKey(c));
        const a = sf === undefined ? undefined : this.#access(sf);
        if (a === undefined) continue;
        const d = delta.get(g) ?? { t: now, cell: 0, wlan: 0 };
        const inc = prev === undefined ? 0 : Math.max(0, bytes - prev);
        if (a === 'cellular') d.cell += inc;
        else d.wlan += inc;
        delta.set(g, d);
        if (c.rttMs !== undefined && c.rttMs > 0) {
          const r = rtt.get(g) ?? { cellular: { sum: 0, n: 0, min: Infinity }, wlan: { sum: 0, n: 0, min: Infinity } };
          r[a].sum += c.rttMs;
          r[a].n++;
          r[a].min = Math.min(r[a].min, c.minRttMs ?? c.rttMs);
          rtt.set(g, r);
        }
      }
      for (const k of [...this.#last.keys()]) if (!seen.has(k)) this.#last.delete(k);
    }

    // 2. decide per group
    const windowMs = this.#o.windowMs ?? 3000;
    const minBytes = this.#o.minWindowBytes ?? 64 * 1024;
    for (const { group: g, movable } of members.values()) {
      g.samples.push(delta.get(g) ?? { t: now, cell: 0, wlan: 0 });
      while (g.samples.length > 0 && g.samples[0]!.t <= now - windowMs) g.samples.shift();
      const cell = g.samples.reduce((x, y) => x + y.cell, 0);
      const wlan = g.samples.reduce((x, y) => x + y.wlan, 0);
      g.windowBytes = cell + wlan;
      g.share = g.windowBytes >= minBytes ? cell / g.windowBytes : undefined;
      if (g.share !== undefined && g.lastShare !== undefined && now > g.lastShare.t) {
        const inst = (g.share - g.lastShare.share) / (now - g.lastShare.t);
        g.slope = 0.5 * g.slope + 0.5 * inst;
      } else g.slope = 0;
      g.lastShare = g.share === undefined ? undefined : { t: now, share: g.share };
      // what the current level gives: bytes since the last move (its first 150 ms are the queues draining)
      const since = g.ratio.lastMoveAt + 150;
      const recent = g.samples.filter((x) => x.t > since);
      const rc = recent.reduce((x, y) => x + y.cell, 0);
      const rt = rc + recent.reduce((x, y) => x + y.wlan, 0);
      const fast = rt >= minBytes / 4 && recent.length >= 2 ? rc / rt : undefined;
      const span = Math.max(1, g.samples.length > 0 ? now - g.samples[0]!.t + (this.#o.intervalMs ?? 250) : 1);
      if (g.policy.mode === 'ratio') {
        const n = movable.length;
        if (g.n !== n) {
          g.n = n;
          g.ratio = { ...g.ratio, level: Math.round(g.frac * 2 * n) };
        }
        const before = g.ratio.level;
        g.ratio = ratioStep(g.ratio, {
          target: g.policy.ratio.cellular / 100, share: g.share, fast, slope: g.slope, n,
          deadband: (this.#o.deadbandPp ?? 1) / 100, settleMs: this.#o.settleMs ?? 250, lookaheadMs: this.#o.lookaheadMs ?? 750, now,
        });
        if (n > 0) g.frac = g.ratio.level / (2 * n);
        if (g.ratio.level !== before) {
          this.#s.moves++;
          log.debug({ group: g.key, share: g.share, fast, level: g.ratio.level, lo: g.ratio.lo, hi: g.ratio.hi, n }, 'ratio: level moved');
        }
      } else if (g.policy.mode === 'priority') {
        const pref = g.policy.preferred ?? 'wlan';
        const r = rtt.get(g)?.[pref];
        const was = g.prio.overflow;
        g.prio = priorityStep(g.prio, {
          now, rttMs: r === undefined || r.n === 0 ? undefined : r.sum / r.n, minRttMs: r === undefined || r.n === 0 ? undefined : r.min,
          preferredRate: (pref === 'cellular' ? cell : wlan) / span, totalRate: g.windowBytes / span, holdMs: Math.max(1000, (this.#o.settleMs ?? 250) * 4),
        });
        if (g.prio.overflow !== was) log.info({ group: g.key, overflow: g.prio.overflow }, 'priority: secondary access ' + (g.prio.overflow ? 'added' : 'released'));
      }
    }
    // groups with no connections left
    for (const [k, g] of [...this.#groups]) if (!members.has(k) && g.samples.every((s) => s.t <= now - windowMs)) this.#groups.delete(k);

    // 3. apply
    await this.#reconcile(sessions);
    this.emit('tick', this.groups());
  }

  groups(): SteerGroupView[] {
    const out: SteerGroupView[] = [];
    const sessions = this.#o.sessions.sessions();
    const members = this.#members(sessions);
    for (const g of this.#groups.values()) {
      const m = members.get(g.key);
      const placements: Record<Placement | 'fixed', number> = { both: 0, cellular: 0, wlan: 0, fixed: m?.fixed.length ?? 0 };
      for (const s of m?.movable ?? []) {
        const p = this.#conns.get(s.token)?.placement;
        if (p !== undefined) placements[p]++;
      }
      out.push({
        group: g.key, mode: g.policy.mode,
        ...(g.policy.mode === 'ratio' ? { target: g.policy.ratio.cellular, level: g.ratio.level } : {}),
        ...(g.share === undefined ? {} : { share: Math.round(g.share * 1000) / 10 }),
        windowBytes: g.windowBytes, connections: (m?.movable.length ?? 0) + (m?.fixed.length ?? 0), placements,
        ...(g.policy.mode === 'priority' ? { overflow: g.prio.overflow } : {}),
      });
    }
    return out;
  }

  stats(): SteerStats {
    const s = this.#s;
    return {
      ticks: s.ticks, commands: s.commands, commandFailures: s.commandFailures, unsupported: s.unsupported, badPolicies: s.badPolicies,
      moves: s.moves, failovers: s.failovers, subflowsDestroyed: s.subflowsDestroyed,
      ...(s.lastFailoverMs === undefined ? {} : { lastFailoverMs: s.lastFailoverMs }),
      ...(s.lastCommandMs === undefined ? {} : { lastCommandMs: s.lastCommandMs }),
    };
  }
}

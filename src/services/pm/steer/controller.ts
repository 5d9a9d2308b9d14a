import { EventEmitter } from 'node:events';
import { DuocellError, toDuocellError } from '../../../core/errors.js';
import { logger } from '../../../core/logger.js';
import { addressKey } from '../../../core/net.js';
import type { PathEvent } from '../../paths/types.js';
import type { PmConnectionView, SubflowView } from '../types.js';
import type { SteerMode } from './mode.js';
import { measure, sfKey, type SteerSample } from './measure.js';
import { backupFlags, modeOf, policyProblem } from './modes.js';
import type { Placement, SteerAccess, SteerCounters, SteerGroupView, SteeringEvents, SteeringOptions, SteerPolicy, SteerStats } from './types.js';

/**
 * Steering: a subscriber's steering mode realised per connection with the one lever the kernel
 * gives, the backup flag of a subflow (MPTCP_PM_CMD_SET_FLAGS with a token; the kernel sets the
 * local `request_bkup`, which its own scheduler honours, and sends MP_PRIO, which the peer's
 * scheduler honours). A connection whose cellular subflows are backup sends on WLAN only, and
 * so on. Per-connection SET_FLAGS needs net.mptcp.path_manager=userspace in the namespace: the
 * in-kernel PM answers EINVAL (the session is then marked unsupported and left alone).
 *
 *   PmService 'subflow' events ──► reconcile those connections once per event-loop turn (new joins get their flag)
 *   paths 'path-down' ───────────► destroy subflows on it, re-flag every connection (failover)
 *   every intervalMs: counters (sock_diag, one dump) ─► per-access byte deltas per group
 *        ─► sliding window share ─► ratio: move the group's level ─► placements ─► SET_FLAGS
 *
 * Modes (per group = per subscriber) are plugins (mode.ts), one module each, filling only the
 * hooks they need: active-standby.ts, priority.ts, ratio.ts, smallest-delay.ts. This core
 * measures, calls the group's mode, and turns the accesses it answers into backup flags.
 *
 * Measurement: sock_diag (one netlink dump of every subflow's tcp_info, keyed by the token the
 * mptcp_pm events carry), not MPTCP_FULL_INFO: that is a getsockopt on each connection's fd,
 * which this service does not hold (the proxy engine does, and the kernel PM's connections may
 * belong to anyone), and it would cost one syscall per connection per tick. Bytes = acked sent
 * + received, per subflow, per tick.
 *
 * How the ratio loop behaves with greedy and with application-limited flows: docs/policy.md.
 */

const log = logger('duocell:pm:steer');

interface Group {
  key: string;
  policy: SteerPolicy;
  mode: SteerMode<unknown>;
  /** The mode's own state of this group. */
  state: unknown;
  samples: SteerSample[];
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

  /**
   * Connections whose subflows changed since the last flush: the first event's time and whether
   * a subflow that carried traffic closed. Reconciled together once per event-loop turn
   * (setImmediate): one look at every connection per batch, not per event (bench/pm-events-cost).
   */
  readonly #pending = new Map<number, { t0: number; carrying: boolean }>();
  #flushing: NodeJS.Immediate | undefined;

  readonly #onSubflow = (e: { type: 'opened' | 'closed' | 'priority'; subflow: SubflowView }): void => {
    if (e.type === 'priority') return;
    const token = e.subflow.token;
    let p = this.#pending.get(token);
    if (p === undefined) {
      p = { t0: this.#now(), carrying: false };
      this.#pending.set(token, p);
    }
    // judged now, against the flags as they were when it closed
    if (e.type === 'closed' && this.#carrying(token, e.subflow)) p.carrying = true;
    this.#flushing ??= setImmediate(() => this.#flush());
  };

  /** Reconcile the connections of the events since the last flush (those still followed). */
  #flush(): void {
    this.#flushing = undefined;
    if (this.#pending.size === 0) return;
    const batch = [...this.#pending];
    this.#pending.clear();
    const cleared = new Map<number, number>();
    void this.#reconcileTokens(new Set(batch.map(([token]) => token)), cleared)
      .then(() => {
        for (const [token, p] of batch) if (p.carrying && (cleared.get(token) ?? 0) > 0) this.#failedOver(p.t0, 1, 'subflow closed');
      })
      .catch((x: unknown) => log.warn({ err: x }, 'steering after a subflow event failed'));
  }

  readonly #onSession = (e: { type: 'opened' | 'established' | 'closed'; token: number }): void => {
    if (e.type !== 'closed') return;
    this.#conns.delete(e.token);
    this.#policies.delete(e.token);
  };

  readonly #onPath = (e: PathEvent): void => {
    if (e.type === 'path-changed') return;
    const t0 = this.#now();
    if (e.type === 'path-down') for (const a of e.path.addresses) this.#down.add(addressKey(a));
    else for (const a of e.path.addresses) this.#down.delete(addressKey(a));
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
    for (const p of this.#o.paths?.list() ?? []) if (p.state !== 'up') for (const a of p.addresses) this.#down.add(addressKey(a));
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
    if (this.#flushing !== undefined) clearImmediate(this.#flushing);
    this.#flushing = undefined;
    this.#pending.clear();
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
  #policy(sess: PmConnectionView): SteerPolicy | undefined {
    if (this.#policies.has(sess.token)) return this.#policies.get(sess.token);
    const p = this.#askPolicy(sess);
    this.#policies.set(sess.token, p);
    return p;
  }

  #askPolicy(sess: PmConnectionView): SteerPolicy | undefined {
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
      const mode = modeOf(policy.mode);
      g = { key, policy, mode, state: mode.init(this.#now(), undefined), samples: [], lastShare: undefined, share: undefined, windowBytes: 0, slope: 0 };
      this.#groups.set(key, g);
    }
    if (g.policy.mode !== policy.mode || g.policy.ratio?.cellular !== policy.ratio?.cellular) {
      // a new policy starts the mode afresh
      const mode = modeOf(policy.mode);
      g.state = mode.init(this.#now(), mode === g.mode ? g.state : undefined);
      g.mode = mode;
    }
    g.policy = policy;
    return g;
  }

  /** The paths service's RTT per access (up paths; the lowest where an access has several). */
  #pathRtts(): Partial<Record<SteerAccess, number>> {
    const out: Partial<Record<SteerAccess, number>> = {};
    for (const p of this.#o.paths?.list() ?? []) {
      if (p.state !== 'up' || p.rttMs === undefined || (p.access !== 'cellular' && p.access !== 'wlan')) continue;
      out[p.access] = Math.min(out[p.access] ?? Infinity, p.rttMs);
    }
    return out;
  }

  #alive(sf: SubflowView): boolean {
    return sf.state === 'established' && !this.#down.has(addressKey(sf.saddr));
  }

  /** Was this (now closed) subflow one of the accesses its connection sent on? */
  #carrying(token: number, sf: SubflowView): boolean {
    const c = this.#conns.get(token);
    return c !== undefined && c.applied.get(sfKey(sf)) === false;
  }

  /** Movable members of each group, in first-seen order (both accesses alive). */
  #members(sessions: readonly PmConnectionView[]): Map<string, { group: Group; movable: PmConnectionView[]; fixed: PmConnectionView[] }> {
    const out = new Map<string, { group: Group; movable: PmConnectionView[]; fixed: PmConnectionView[] }>();
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

  /**
   * Bring the flags of these connections in line with their group's state.
   * Resolves to the number of backup flags cleared (a standby taking over).
   */
  async #reconcile(sessions: readonly PmConnectionView[]): Promise<number> {
    return this.#reconcileTokens(new Set(sessions.map((s) => s.token)));
  }

  /** The same by tokens; `cleared` (if given) gets the flags cleared per token. */
  async #reconcileTokens(wanted: ReadonlySet<number>, cleared?: Map<number, number>): Promise<number> {
    const all = this.#members(wanted.size === 0 ? [] : this.#o.sessions.sessions());
    const jobs: Array<Promise<boolean>> = [];
    const add = (g: Group, s: PmConnectionView, placement: Placement | undefined): void => {
      for (const j of this.#apply(g, s, placement)) {
        jobs.push(cleared === undefined ? j : j.then((x) => {
          if (x) cleared.set(s.token, (cleared.get(s.token) ?? 0) + 1);
          return x;
        }));
      }
    };
    for (const { group: g, movable, fixed } of all.values()) {
      const places: Placement[] = g.mode.place?.(g.state, movable.length) ?? [];
      movable.forEach((s, i) => {
        if (wanted.has(s.token)) add(g, s, places[i]);
      });
      for (const s of fixed) if (wanted.has(s.token)) add(g, s, undefined);
    }
    const r = await Promise.all(jobs);
    return r.filter((x) => x).length;
  }

  /** SET_FLAGS for every subflow of one connection whose flag differs; each job → true if it cleared a flag. */
  #apply(g: Group, s: PmConnectionView, placement: Placement | undefined): Array<Promise<boolean>> {
    const c = this.#conn(s.token);
    if (c.unsupported) return [];
    if (placement !== undefined && c.placement !== placement) {
      c.placement = placement;
      this.emit('placement', { token: s.token, group: g.key, placement });
    }
    const est = s.subflows.filter((f) => f.state === 'established');
    const flags = backupFlags(est.map((f) => ({ key: sfKey(f), access: this.#access(f), alive: this.#alive(f) })), g.mode.carry(g.state, g.policy, placement));
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

  async #destroyOn(sessions: readonly PmConnectionView[], addresses: readonly string[]): Promise<void> {
    const destroy = this.#o.backend.subflowDestroy;
    if (destroy === undefined) return;
    const jobs: Array<Promise<void>> = [];
    const dead = new Set(addresses.map(addressKey));
    for (const s of sessions) {
      if (this.#conns.get(s.token)?.unsupported === true || this.#policy(s) === undefined) continue;
      const est = s.subflows.filter((f) => f.state === 'established');
      for (const f of est) {
        if (!dead.has(addressKey(f.saddr)) || est.length < 2) continue;
        jobs.push(destroy.call(this.#o.backend, f.token, { address: f.saddr, port: f.sport }, { address: f.daddr, port: f.dport })
          .then(() => void this.#s.subflowsDestroyed++)
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
    let list: readonly SteerCounters[] = [];
    // No tracked M-session, nothing to measure: skip the dump (sock_diag lists every TCP socket of
    // the box, which with 10,000 plain sessions is ~20,000 sockets decoded 4 times a second).
    if (this.#o.counters !== undefined && sessions.length > 0) {
      try {
        list = await this.#o.counters();
      } catch (e) {
        log.warn({ err: e }, 'subflow counters unavailable');
      }
    }
    const { delta, rtt } = measure(list, this.#last, now, (token) => {
      const g = groupOf.get(token);
      const s = byToken.get(token);
      return g === undefined || s === undefined ? undefined : { group: g, subflows: s.subflows };
    }, (sf) => this.#access(sf), this.#o.counters !== undefined);
    const pathRttMs = this.#pathRtts();

    // 2. decide per group (the mode's tick hook)
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
      const span = Math.max(1, g.samples.length > 0 ? now - g.samples[0]!.t + (this.#o.intervalMs ?? 250) : 1);
      const settleMs = this.#o.settleMs ?? 250;
      g.mode.tick?.(g.state, {
        now, group: g.key, policy: g.policy, cell, wlan, spanMs: span, share: g.share, slope: g.slope, samples: g.samples, minWindowBytes: minBytes,
        movable: movable.length, rtt: rtt.get(g) ?? {}, pathRttMs, deadband: (this.#o.deadbandPp ?? 1) / 100, settleMs,
        lookaheadMs: this.#o.lookaheadMs ?? 750, holdMs: Math.max(1000, settleMs * 4), moved: () => void this.#s.moves++,
      });
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
        ...g.mode.view?.(g.state, g.policy),
        ...(g.share === undefined ? {} : { share: Math.round(g.share * 1000) / 10 }),
        windowBytes: g.windowBytes, connections: (m?.movable.length ?? 0) + (m?.fixed.length ?? 0), placements,
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

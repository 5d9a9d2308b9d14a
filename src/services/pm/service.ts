import { EventEmitter } from 'node:events';
import { DuocellError, toDuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import { addressKey, canonicalAddress, sameAddress } from '../../core/net.js';
import type { MptcpEvent } from '../../protocols/mptcp-pm/index.js';
import type { AccessType, PathEvent, PathView } from '../paths/types.js';
import { announceOnAccept } from './announce.js';
import { EndpointTable } from './endpoints.js';
import { accessTotals, subflowRtts } from './totals.js';
import type { AccessTotals, EndpointFlag, PmConnectionView, PmServiceEvents, PmServiceOptions, PmStats, SubflowView } from './types.js';

export type * from './types.js';

/**
 * The path manager service: keeps the kernel's MPTCP endpoints and limits in step with the
 * uplinks that are up, and follows every connection and subflow through the kernel's events,
 * labelling each subflow with its access type (cellular / WLAN) from its local address.
 *
 *   paths: path-up ──► add endpoint(s) for its addresses (flags per access) ─┐
 *          path-down ─► delete its endpoint(s) at once (the kernel closes     ├─ reconcile with
 *                       the subflows on that address)                         │  pm.endpoints()
 *          changed addresses ─► re-sync ─────────────────────────────────────┘  on start/lost
 *   mptcp_pm events ─► sessions: token → { subflows, counters } ─► 'subflow' events
 *
 * The service imports no transport: the mptcp_pm client and the paths service are injected
 * (drivers/netlink MptcpPm and services/paths PathsService satisfy the interfaces below).
 */

const log = logger('duocell:pm');

interface Session {
  token: number;
  family: 4 | 6;
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  serverSide: boolean;
  denyJoinInitial: boolean;
  state: 'created' | 'established';
  /** Local address (addressKey) → the userspace subflow create in flight from it (one at a time). */
  creating: Map<string, number>;
  /** Creates tried per `local→remote:port`: a join the peer keeps refusing is given up after 3. */
  attempts: Map<string, number>;
  since: string;
  subflows: Map<string, SubflowView>;
  announced: Record<number, string>;
  announcedPorts: Record<number, number>;
}

/** The codec's event of one type (a union member may carry several types). */
type Dist<E, K> = E extends { type: infer T } ? (K extends T ? E & { type: K } : never) : never;
export type EventOf<K extends MptcpEvent['type']> = Dist<MptcpEvent, K>;

/** A subflow's key by value: the events and sock_diag may spell one address differently (`::ffff:a47:1`, `10.71.0.1`). */
const sfKey = (s: { saddr?: string; sport?: number; daddr?: string; dport?: number }): string => `${addressKey(s.saddr ?? '')}|${s.sport}|${addressKey(s.daddr ?? '')}|${s.dport}`;

export class PmService extends EventEmitter<PmServiceEvents> {
  readonly #o: PmServiceOptions;
  readonly #sessions = new Map<number, Session>();
  /** The kernel endpoints we own (address → id). */
  readonly #eps = new EndpointTable();
  #chain: Promise<unknown> = Promise.resolve();
  #started = false;
  readonly #stats = {
    events: {} as Record<string, number>,
    subflowsOpened: {} as Record<string, number>,
    subflowsClosed: {} as Record<string, number>,
    subflowErrors: 0,
    endpointAdds: 0,
    endpointDeletes: 0,
    syncFailures: 0,
    subflowsRefused: {} as Record<string, number>,
    subflowsCreated: 0,
    announced: 0,
    lastEnforceMs: undefined as number | undefined,
    lastReactionMs: undefined as number | undefined,
  };

  constructor(o: PmServiceOptions) {
    super();
    this.#o = o;
  }

  #now(): number {
    return (this.#o.now ?? Date.now)();
  }

  readonly #onPath = (e: PathEvent): void => {
    if (e.type === 'path-up') for (const token of this.#sessions.keys()) this.#plan(token);
    const t0 = this.#now();
    void this.sync().then(() => {
      if (e.type !== 'path-changed') this.#stats.lastReactionMs = this.#now() - t0;
    }).catch(() => {});
  };

  readonly #onEvent = (e: MptcpEvent): void => {
    try {
      this.#apply(e);
    } catch (x) {
      log.warn({ err: x, event: e.type }, 'mptcp event not applied');
    }
  };

  readonly #onLost = (): void => {
    log.warn('mptcp_pm events were lost: sessions may be stale; endpoints re-synced');
    void this.sync().catch(() => {});
  };

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const o = this.#o;
    o.pm.on('event', this.#onEvent);
    o.pm.on('lost', this.#onLost);
    o.pm.subscribe();
    o.paths.on('event', this.#onPath);
    if (o.manageEndpoints !== false) {
      const want = o.limits ?? { subflows: 8, addAddrAccepted: 8 };
      const have = await o.pm.limits();
      if (have.subflows !== want.subflows || have.addAddrAccepted !== want.addAddrAccepted) await o.pm.setLimits(want);
    }
    await this.sync();
  }

  stop(): void {
    if (!this.#started) return;
    this.#started = false;
    this.#o.pm.off('event', this.#onEvent);
    this.#o.pm.off('lost', this.#onLost);
    this.#o.paths.off('event', this.#onPath);
  }

  /** Bring the kernel's endpoints in line with the paths that are up (serialised). */
  sync(): Promise<{ added: number; deleted: number; changed: number }> {
    const run = this.#chain.catch(() => {}).then(() => this.#sync());
    this.#chain = run;
    return run;
  }

  async #sync(): Promise<{ added: number; deleted: number; changed: number }> {
    if (this.#o.manageEndpoints === false) return { added: 0, deleted: 0, changed: 0 };
    try {
      const want = new Map<string, { path: PathView; flags: EndpointFlag[] }>();
      for (const p of this.#o.paths.list()) {
        if (p.state !== 'up') continue;
        const flags = this.#o.flags?.(p) ?? ['subflow'];
        for (const a of p.addresses) want.set(a, { path: p, flags });
      }
      const res = await this.#eps.sync(this.#o.pm, want, this.#stats);
      if (res.added + res.deleted + res.changed > 0) {
        log.info({ ...res, endpoints: [...this.#eps.owned.entries()].map(([a, id]) => `${id}:${a}`) }, 'MPTCP endpoints synced');
        this.emit('synced', res);
      }
      return res;
    } catch (e) {
      this.#stats.syncFailures++;
      const err = e instanceof DuocellError && e.code === 'DC_PM_SYNC' ? e : new DuocellError('DC_PM_SYNC', `endpoint sync failed: ${(e as Error).message}`, { cause: e, ...(toDuocellError(e).errno === undefined ? {} : { errno: toDuocellError(e).errno }) });
      log.error({ err }, 'MPTCP endpoint sync failed');
      throw err;
    }
  }

  #label(saddr: string, daddr = '', serverSide = false): { access: AccessType | 'unknown'; path?: string } {
    const custom = this.#o.label?.({ saddr, daddr, serverSide });
    if (custom !== undefined) return custom;
    const p = this.#o.paths.byAddress(saddr);
    return p === undefined ? { access: 'unknown' } : { access: p.access, path: p.name };
  }

  /**
   * One handler per event type. The event is as the codec validated it (protocols/mptcp-pm
   * checks the attributes each type requires), so nothing here checks it again.
   */
  readonly #handlers: { [K in MptcpEvent['type']]?: (e: EventOf<K>, now: string) => void } = {
    created: (e, now) => this.#onCreated(e, now),
    established: (e, now) => this.#onEstablished(e, now),
    closed: (e) => this.#onClosed(e),
    announced: (e) => this.#onAnnounced(e),
    removed: (e) => this.#onRemoved(e),
    sub_established: (e, now) => this.#onSubEstablished(e, now),
    sub_closed: (e, now) => this.#onSubClosed(e, now),
    sub_priority: (e, now) => this.#onSubPriority(e, now),
    // listener_created / listener_closed: counted only (the listeners are the proxy's own)
  };

  #apply(e: MptcpEvent): void {
    const s = this.#stats;
    s.events[e.type] = (s.events[e.type] ?? 0) + 1;
    const handler = this.#handlers[e.type] as ((e: MptcpEvent, now: string) => void) | undefined;
    handler?.(e, new Date(this.#now()).toISOString());
  }

  /** The connection of a created/established event, made (with its initial subflow) when new. */
  #connection(e: Extract<MptcpEvent, { type: 'created' | 'established' }>, now: string): Session {
    const token = e.token;
    let sess = this.#sessions.get(token);
    if (sess === undefined) {
      if (this.#sessions.size >= (this.#o.maxSessions ?? 65536)) {
        const oldest = this.#sessions.keys().next().value;
        if (oldest !== undefined) this.#sessions.delete(oldest);
      }
      sess = {
        token, family: e.family, saddr: e.saddr, daddr: e.daddr, sport: e.sport, dport: e.dport,
        serverSide: e.serverSide === true, denyJoinInitial: ((e.flags ?? 0) & 1) !== 0, state: 'created', since: now, subflows: new Map(), announced: {}, announcedPorts: {}, creating: new Map(), attempts: new Map(),
      };
      this.#sessions.set(token, sess);
      const first: SubflowView = {
        token, saddr: e.saddr, daddr: e.daddr, sport: e.sport, dport: e.dport, locId: 0, remId: 0,
        ...this.#label(e.saddr, e.daddr, e.serverSide === true), backup: false, state: 'established', since: now,
      };
      sess.subflows.set(sfKey(first), first);
      this.#count('subflowsOpened', first.access);
      this.emit('session', { type: 'opened', token });
      this.emit('subflow', { type: 'opened', subflow: first });
    }
    return sess;
  }

  #onCreated(e: EventOf<'created'>, now: string): void {
    this.#connection(e, now);
  }

  #onEstablished(e: EventOf<'established'>, now: string): void {
    const sess = this.#connection(e, now);
    if (sess.state === 'established') return;
    sess.state = 'established';
    this.emit('session', { type: 'established', token: e.token });
    if (sess.serverSide && this.#o.announceOnAccept !== undefined) announceOnAccept(this.#o.pm, this.#o.announceOnAccept, this.#view(sess), () => this.#stats.announced++);
    this.#plan(e.token);
  }

  #onClosed(e: EventOf<'closed'>): void {
    const sess = this.#sessions.get(e.token);
    this.#sessions.delete(e.token);
    if (sess !== undefined) {
      for (const sf of sess.subflows.values()) if (sf.state === 'established') this.#count('subflowsClosed', sf.access);
    }
    this.emit('session', { type: 'closed', token: e.token });
  }

  #onAnnounced(e: EventOf<'announced'>): void {
    const sess = this.#sessions.get(e.token);
    if (sess === undefined) return;
    sess.announced[e.remId] = e.daddr;
    if (e.dport !== undefined && e.dport !== 0) sess.announcedPorts[e.remId] = e.dport;
    this.#plan(e.token); // the peer may want later subflows on the address it announced
  }

  #onRemoved(e: EventOf<'removed'>): void {
    const sess = this.#sessions.get(e.token);
    if (sess === undefined) return;
    delete sess.announced[e.remId];
    delete sess.announcedPorts[e.remId];
  }

  /**
   * The subflow of a sub_* event as a view, with the connection it belongs to (undefined: a
   * connection from before we subscribed). `settled`: the event ends an in-flight create of ours.
   */
  #subflow(e: Extract<MptcpEvent, { type: 'sub_established' | 'sub_closed' | 'sub_priority' }>, now: string): { sess: Session; key: string; prev: SubflowView | undefined; base: SubflowView } | undefined {
    const sess = this.#sessions.get(e.token);
    if (sess === undefined) return undefined;
    const key = sfKey(e);
    const prev = sess.subflows.get(key);
    const base: SubflowView = {
      token: e.token, saddr: e.saddr, daddr: e.daddr, sport: e.sport, dport: e.dport, locId: e.locId ?? 0, remId: e.remId ?? 0,
      ...this.#label(e.saddr, e.daddr, sess.serverSide), backup: e.backup === true, state: 'established', since: prev?.since ?? now,
    };
    return { sess, key, prev, base };
  }

  #onSubEstablished(e: EventOf<'sub_established'>, now: string): void {
    const sub = this.#subflow(e, now);
    if (sub === undefined) return;
    const { sess, key, base } = sub;
    sess.creating.delete(addressKey(e.saddr));
    sess.subflows.set(key, base);
    this.#count('subflowsOpened', base.access);
    this.emit('subflow', { type: 'opened', subflow: base });
    this.#admit(sess, base);
  }

  #onSubPriority(e: EventOf<'sub_priority'>, now: string): void {
    const sub = this.#subflow(e, now);
    if (sub === undefined) return;
    const { sess, key, prev, base } = sub;
    sess.subflows.set(key, { ...base, state: prev?.state ?? 'established' });
    this.emit('subflow', { type: 'priority', subflow: sess.subflows.get(key)! });
  }

  #onSubClosed(e: EventOf<'sub_closed'>, now: string): void {
    const sub = this.#subflow(e, now);
    if (sub === undefined) return;
    const { sess, key, prev, base } = sub;
    const wasCreating = sess.creating.delete(addressKey(e.saddr));
    const closed: SubflowView = { ...base, state: 'closed', since: now, ...(e.error === undefined || e.error === 0 ? {} : { error: e.error }) };
    if (e.error !== undefined && e.error !== 0) this.#stats.subflowErrors++;
    if (prev?.state !== 'closed') this.#count('subflowsClosed', closed.access);
    sess.subflows.delete(key);
    sess.subflows.set(key, closed);
    this.#trimClosed(sess);
    this.emit('subflow', { type: 'closed', subflow: closed });
    // a join of ours that never got established (refused): plan again (another announced
    // address, or a retry). One the peer closed after it was up is not retried here (the
    // peer's policy, or its path: path-up plans again).
    if (!sess.serverSide && wasCreating && prev?.state !== 'established') this.#plan(e.token);
  }

  #view(sess: Session): PmConnectionView {
    const { creating: _inFlight, attempts: _tried, ...view } = sess;
    return { ...view, subflows: [...sess.subflows.values()], announced: { ...sess.announced }, announcedPorts: { ...sess.announcedPorts } };
  }

  /** Ask the policy whether a new subflow may stay; destroy it at once if not. */
  #admit(sess: Session, sf: SubflowView): void {
    const admit = this.#o.admitSubflow;
    if (admit === undefined) return;
    let verdict: boolean | string;
    try {
      verdict = admit(this.#view(sess), sf);
    } catch (e) {
      log.error({ err: e }, 'admitSubflow threw: subflow kept');
      return;
    }
    if (verdict === true) return;
    const reason = verdict === false ? 'refused' : verdict;
    const t0 = this.#now();
    this.#stats.subflowsRefused[reason] = (this.#stats.subflowsRefused[reason] ?? 0) + 1;
    log.warn({ token: sf.token, source: `${sf.daddr}:${sf.dport}`, local: `${sf.saddr}:${sf.sport}`, access: sf.access, reason }, 'subflow refused: destroying');
    const destroy = this.#o.pm.subflowDestroy;
    if (destroy === undefined) {
      log.error('admitSubflow refused a subflow but the backend cannot destroy subflows');
      return;
    }
    destroy.call(this.#o.pm, sf.token, { address: sf.saddr, port: sf.sport }, { address: sf.daddr, port: sf.dport })
      .then(() => {
        this.#stats.lastEnforceMs = this.#now() - t0;
      })
      .catch((e: unknown) => log.warn({ err: e, token: sf.token }, 'destroying a refused subflow failed (already gone, or not the userspace PM)'));
  }

  /** Userspace PM: open the subflows the policy plans for a connection. */
  #plan(token: number): void {
    const plan = this.#o.planSubflows;
    const create = this.#o.pm.subflowCreate;
    const sess = this.#sessions.get(token);
    log.debug({ token, plan: plan !== undefined, create: create !== undefined, state: sess?.state, serverSide: sess?.serverSide }, 'plan subflows');
    if (plan === undefined || create === undefined || sess === undefined || sess.state !== 'established' || sess.serverSide) return;
    let wanted: ReturnType<NonNullable<PmServiceOptions['planSubflows']>>;
    try {
      wanted = plan(this.#view(sess), this.#o.paths.list().filter((p) => p.state === 'up'));
    } catch (e) {
      log.error({ err: e }, 'planSubflows threw');
      return;
    }
    const taken = new Set([...this.#eps.owned.values()]);
    for (const w of wanted) {
      const from = addressKey(w.address);
      if (sess.creating.has(from) || [...sess.subflows.values()].some((f) => f.state === 'established' && sameAddress(f.saddr, w.address))) continue;
      const remote = w.remote ?? { address: sess.daddr, port: sess.dport };
      // the peer refuses joins to its initial address and port: wait for what it announces
      if (sess.denyJoinInitial && remote.port === sess.dport && sameAddress(remote.address, sess.daddr)) continue;
      const pair = `${w.address}>${remote.address}:${remote.port}`;
      const tried = sess.attempts.get(pair) ?? 0;
      if (tried >= 3) continue;
      sess.attempts.set(pair, tried + 1);
      let id = this.#eps.owned.get(w.address);
      if (id === undefined) {
        id = this.#eps.allocId(w.address, taken);
        this.#eps.owned.set(w.address, id);
      }
      const mark = ++this.#createSeq;
      sess.creating.set(from, mark);
      // this attempt's marker only: a newer create from the same address keeps its own
      const done = (): boolean => sess.creating.get(from) === mark && sess.creating.delete(from);
      create.call(this.#o.pm, token, { address: w.address, id, ...(w.path.ifindex === undefined ? {} : { ifIndex: w.path.ifindex }) }, remote)
        .then(() => {
          this.#stats.subflowsCreated++;
          // in flight until the kernel reports the subflow (or for 5 s): no second create meanwhile
          setTimeout(() => {
            if (done() && this.#sessions.get(token) === sess) this.#plan(token);
          }, 5000).unref();
        })
        .catch((e: unknown) => {
          done();
          log.warn({ err: e, token, from: w.address }, 'userspace subflow create failed');
        });
    }
  }

  #createSeq = 0;

  #trimClosed(sess: Session): void {
    const keep = this.#o.keepClosed ?? 8;
    const closed = [...sess.subflows.entries()].filter(([, v]) => v.state === 'closed');
    for (const [k] of closed.slice(0, Math.max(0, closed.length - keep))) sess.subflows.delete(k);
  }

  #count(which: 'subflowsOpened' | 'subflowsClosed', access: string): void {
    this.#stats[which][access] = (this.#stats[which][access] ?? 0) + 1;
  }

  /** Merge per-subflow bytes and RTT from the counters source into the subflow views. */
  async refreshCounters(): Promise<number> {
    if (this.#o.counters === undefined) return 0;
    const list = await this.#o.counters();
    let n = 0;
    for (const c of list) {
      if (c.token === undefined) continue;
      const sess = this.#sessions.get(c.token);
      if (sess === undefined) continue;
      const key = sfKey(c);
      const sf = sess.subflows.get(key);
      if (sf === undefined || sf.state !== 'established') continue;
      sess.subflows.set(key, { ...sf, bytesSent: c.bytesSent, bytesReceived: c.bytesReceived, rttMs: c.rttMs });
      n++;
    }
    return n;
  }

  /**
   * An RTT probe for the paths service: the mean smoothed RTT of the established subflows
   * leaving from the path's addresses (after refreshCounters), undefined without traffic.
   */
  rttProbe(): (path: { addresses: readonly string[] }) => Promise<number | undefined> {
    return async (path) => {
      const rtts = this.subflowRtts(path.addresses);
      return rtts.length === 0 ? undefined : rtts.reduce((x, y) => x + y, 0) / rtts.length;
    };
  }

  /** Smoothed RTTs (TCP_INFO, ms) of the established subflows leaving from these addresses. */
  subflowRtts(addresses: readonly string[]): number[] {
    return subflowRtts(this.#subflows(), addresses);
  }

  /** Bytes and RTT per access type over the established subflows (the actual path split). */
  accessTotals(): Record<string, AccessTotals> {
    return accessTotals(this.#subflows());
  }

  *#subflows(): Iterable<SubflowView> {
    for (const s of this.#sessions.values()) yield* s.subflows.values();
  }

  sessions(): PmConnectionView[] {
    return [...this.#sessions.values()].map((s) => this.#view(s));
  }

  /**
   * The established subflow with these two ends (the box's own first) among the connections
   * followed, or undefined. Addresses compare by value, not by spelling: the kernel reports a
   * subflow accepted on a dual-stack listener IPv4-mapped, which the netlink codec writes in hex
   * (`::ffff:a47:1`), while the proxy names the same flow `10.71.0.1`.
   */
  established(local: { address: string; port: number }, remote: { address: string; port: number }): SubflowView | undefined {
    const canon = (a: string): string => canonicalAddress(a) ?? a;
    const [la, ra] = [canon(local.address), canon(remote.address)];
    for (const s of this.#sessions.values()) {
      for (const sf of s.subflows.values()) {
        if (sf.state === 'established' && sf.sport === local.port && sf.dport === remote.port && canon(sf.saddr) === la && canon(sf.daddr) === ra) return sf;
      }
    }
    return undefined;
  }

  /** How many connections are followed. */
  get size(): number {
    return this.#sessions.size;
  }

  /** One connection's view, by its token (a map look-up: the steering asks on every subflow event). */
  session(token: number): PmConnectionView | undefined {
    const s = this.#sessions.get(token);
    return s === undefined ? undefined : this.#view(s);
  }

  /** Endpoint id per local address that this service installed. */
  endpoints(): Record<string, number> {
    return Object.fromEntries(this.#eps.owned);
  }

  stats(): PmStats {
    const s = this.#stats;
    return {
      events: { ...s.events }, subflowsOpened: { ...s.subflowsOpened }, subflowsClosed: { ...s.subflowsClosed },
      subflowErrors: s.subflowErrors, endpointAdds: s.endpointAdds, endpointDeletes: s.endpointDeletes, syncFailures: s.syncFailures,
      subflowsRefused: { ...s.subflowsRefused }, subflowsCreated: s.subflowsCreated,
      ...(s.lastEnforceMs === undefined ? {} : { lastEnforceMs: s.lastEnforceMs }),
      ...(s.lastReactionMs === undefined ? {} : { lastReactionMs: s.lastReactionMs }),
    };
  }
}

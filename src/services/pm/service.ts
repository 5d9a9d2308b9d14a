import { EventEmitter } from 'node:events';
import { DuocellError, toDuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import type { MptcpEvent } from '../../protocols/mptcp-pm/index.js';
import type { AccessType, PathEvent, PathView } from '../paths/types.js';

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

export interface SessionView {
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
  admitSubflow?: (session: SessionView, subflow: SubflowView) => boolean | string;
  /**
   * Userspace PM: which extra subflows a connection should have, asked when it is established
   * and when a path comes up. Each entry opens a subflow from `address` (of `path`) to the
   * connection's remote address and port, unless one from that address exists.
   */
  planSubflows?: (session: SessionView, up: readonly PathView[]) => ReadonlyArray<{ path: PathView; address: string; remote?: { address: string; port: number } }>;
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
  /** Local address → the userspace subflow create in flight from it (one at a time). */
  creating: Map<string, number>;
  /** Creates tried per `local→remote:port`: a join the peer keeps refusing is given up after 3. */
  attempts: Map<string, number>;
  since: string;
  subflows: Map<string, SubflowView>;
  announced: Record<number, string>;
  announcedPorts: Record<number, number>;
}

const sfKey = (s: { saddr?: string; sport?: number; daddr?: string; dport?: number }): string => `${s.saddr}|${s.sport}|${s.daddr}|${s.dport}`;

export interface PmServiceEvents {
  subflow: [{ type: 'opened' | 'closed' | 'priority'; subflow: SubflowView }];
  session: [{ type: 'opened' | 'established' | 'closed'; token: number }];
  synced: [{ added: number; deleted: number; changed: number }];
}

export class PmService extends EventEmitter<PmServiceEvents> {
  readonly #o: PmServiceOptions;
  readonly #sessions = new Map<number, Session>();
  /** address → endpoint id we own. */
  readonly #owned = new Map<string, number>();
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

  #allocId(address: string, taken: Set<number>): number {
    const had = this.#owned.get(address);
    if (had !== undefined) return had;
    for (let id = 1; id < 256; id++) {
      if (!taken.has(id) && ![...this.#owned.values()].includes(id)) return id;
    }
    throw new DuocellError('DC_PM_SYNC', 'no free MPTCP endpoint id (1-255)');
  }

  async #sync(): Promise<{ added: number; deleted: number; changed: number }> {
    const res = { added: 0, deleted: 0, changed: 0 };
    if (this.#o.manageEndpoints === false) return res;
    const pm = this.#o.pm;
    try {
      const want = new Map<string, { path: PathView; flags: EndpointFlag[] }>();
      for (const p of this.#o.paths.list()) {
        if (p.state !== 'up') continue;
        const flags = this.#o.flags?.(p) ?? ['subflow'];
        for (const a of p.addresses) want.set(a, { path: p, flags });
      }
      const have = await pm.endpoints();
      const byAddr = new Map(have.map((e) => [e.address, e]));
      // 1. delete ours that are no longer wanted (first: a path going down acts at once)
      for (const [address, id] of [...this.#owned]) {
        if (want.has(address)) continue;
        if (byAddr.has(address)) {
          await pm.deleteEndpoint(id, address).catch((e: unknown) => {
            const err = toDuocellError(e);
            if (err.errno !== 22 && err.errno !== 2) throw err; // already gone is fine
          });
          res.deleted++;
          this.#stats.endpointDeletes++;
        }
        this.#owned.delete(address);
      }
      // 2. add what is missing, fix flags that differ
      const taken = new Set(have.map((e) => e.id));
      for (const [address, { path, flags }] of want) {
        const cur = byAddr.get(address);
        if (cur === undefined) {
          const id = this.#allocId(address, taken);
          await pm.addEndpoint({ address, id, flags, ...(path.ifindex === undefined ? {} : { ifIndex: path.ifindex }) });
          this.#owned.set(address, id);
          taken.add(id);
          res.added++;
          this.#stats.endpointAdds++;
        } else {
          this.#owned.set(address, cur.id);
          const curFlags = cur.flags.filter((f) => f !== 'implicit').sort().join(',');
          if (curFlags !== [...flags].sort().join(',')) {
            await pm.setEndpointFlags({ id: cur.id, flags });
            res.changed++;
          }
        }
      }
      if (res.added + res.deleted + res.changed > 0) {
        log.info({ ...res, endpoints: [...this.#owned.entries()].map(([a, id]) => `${id}:${a}`) }, 'MPTCP endpoints synced');
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
  readonly #handlers: { [K in MptcpEvent['type']]?: (e: Extract<MptcpEvent, { type: K }>, now: string) => void } = {
    created: (e, now) => this.#onConnection(e, now),
    established: (e, now) => this.#onConnection(e, now),
    closed: (e) => this.#onClosed(e),
    announced: (e) => this.#onAnnounced(e),
    removed: (e) => this.#onRemoved(e),
    sub_established: (e, now) => this.#onSubflow(e, now),
    sub_closed: (e, now) => this.#onSubflow(e, now),
    sub_priority: (e, now) => this.#onSubflow(e, now),
  };

  #apply(e: MptcpEvent): void {
    const s = this.#stats;
    s.events[e.type] = (s.events[e.type] ?? 0) + 1;
    const handler = this.#handlers[e.type] as ((e: MptcpEvent, now: string) => void) | undefined;
    handler?.(e, new Date(this.#now()).toISOString());
  }

  #onConnection(e: Extract<MptcpEvent, { type: 'created' | 'established' }>, now: string): void {
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
    if (e.type === 'established' && sess.state !== 'established') {
      sess.state = 'established';
      this.emit('session', { type: 'established', token });
      this.#plan(token);
    }
  }

  #onClosed(e: Extract<MptcpEvent, { type: 'closed' }>): void {
    const sess = this.#sessions.get(e.token);
    this.#sessions.delete(e.token);
    if (sess !== undefined) {
      for (const sf of sess.subflows.values()) if (sf.state === 'established') this.#count('subflowsClosed', sf.access);
    }
    this.emit('session', { type: 'closed', token: e.token });
  }

  #onAnnounced(e: Extract<MptcpEvent, { type: 'announced' }>): void {
    const sess = this.#sessions.get(e.token);
    if (sess === undefined) return;
    sess.announced[e.remId] = e.daddr;
    if (e.dport !== undefined && e.dport !== 0) sess.announcedPorts[e.remId] = e.dport;
    this.#plan(e.token); // the peer may want later subflows on the address it announced
  }

  #onRemoved(e: Extract<MptcpEvent, { type: 'removed' }>): void {
    const sess = this.#sessions.get(e.token);
    if (sess === undefined) return;
    delete sess.announced[e.remId];
    delete sess.announcedPorts[e.remId];
  }

  #onSubflow(e: Extract<MptcpEvent, { type: 'sub_established' | 'sub_closed' | 'sub_priority' }>, now: string): void {
    const s = this.#stats;
    const token = e.token;
    const sess = this.#sessions.get(token);
    if (sess === undefined) return; // a connection from before we subscribed
    const key = sfKey(e);
    const prev = sess.subflows.get(key);
    const wasCreating = e.type !== 'sub_priority' && sess.creating.delete(e.saddr);
    const base: SubflowView = {
      token, saddr: e.saddr, daddr: e.daddr, sport: e.sport, dport: e.dport, locId: e.locId ?? 0, remId: e.remId ?? 0,
      ...this.#label(e.saddr, e.daddr, sess.serverSide), backup: e.backup === true, state: 'established', since: prev?.since ?? now,
    };
    if (e.type === 'sub_established') {
      sess.subflows.set(key, base);
      this.#count('subflowsOpened', base.access);
      this.emit('subflow', { type: 'opened', subflow: base });
      this.#admit(sess, base);
    } else if (e.type === 'sub_priority') {
      sess.subflows.set(key, { ...base, state: prev?.state ?? 'established' });
      this.emit('subflow', { type: 'priority', subflow: sess.subflows.get(key)! });
    } else {
      const closed: SubflowView = { ...base, state: 'closed', since: now, ...(e.error === undefined || e.error === 0 ? {} : { error: e.error }) };
      if (e.error !== undefined && e.error !== 0) s.subflowErrors++;
      if (prev?.state !== 'closed') this.#count('subflowsClosed', closed.access);
      sess.subflows.delete(key);
      sess.subflows.set(key, closed);
      this.#trimClosed(sess);
      this.emit('subflow', { type: 'closed', subflow: closed });
      // a join of ours that never got established (refused): plan again (another announced
      // address, or a retry). One the peer closed after it was up is not retried here (the
      // peer's policy, or its path: path-up plans again).
      if (!sess.serverSide && wasCreating && prev?.state !== 'established') this.#plan(token);
    }
  }

  #view(sess: Session): SessionView {
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
    const taken = new Set([...this.#owned.values()]);
    for (const w of wanted) {
      if (sess.creating.has(w.address) || [...sess.subflows.values()].some((f) => f.state === 'established' && f.saddr === w.address)) continue;
      const remote = w.remote ?? { address: sess.daddr, port: sess.dport };
      // the peer refuses joins to its initial address and port: wait for what it announces
      if (sess.denyJoinInitial && remote.address === sess.daddr && remote.port === sess.dport) continue;
      const pair = `${w.address}>${remote.address}:${remote.port}`;
      const tried = sess.attempts.get(pair) ?? 0;
      if (tried >= 3) continue;
      sess.attempts.set(pair, tried + 1);
      let id = this.#owned.get(w.address);
      if (id === undefined) {
        id = this.#allocId(w.address, taken);
        this.#owned.set(w.address, id);
      }
      const mark = ++this.#createSeq;
      sess.creating.set(w.address, mark);
      // this attempt's marker only: a newer create from the same address keeps its own
      const done = (): boolean => sess.creating.get(w.address) === mark && sess.creating.delete(w.address);
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
      const rtts: number[] = [];
      for (const s of this.#sessions.values()) {
        for (const f of s.subflows.values()) {
          if (f.state === 'established' && f.rttMs !== undefined && path.addresses.includes(f.saddr)) rtts.push(f.rttMs);
        }
      }
      return rtts.length === 0 ? undefined : rtts.reduce((x, y) => x + y, 0) / rtts.length;
    };
  }

  /** Smoothed RTTs (TCP_INFO, ms) of the established subflows leaving from these addresses. */
  subflowRtts(addresses: readonly string[]): number[] {
    const out: number[] = [];
    for (const s of this.#sessions.values()) {
      for (const f of s.subflows.values()) if (f.state === 'established' && f.rttMs !== undefined && addresses.includes(f.saddr)) out.push(f.rttMs);
    }
    return out;
  }

  /** Bytes and RTT per access type over the established subflows (the actual path split). */
  accessTotals(): Record<string, AccessTotals> {
    const acc: Record<string, { subflows: number; bytesSent: number; bytesReceived: number; rtt: number[] }> = {};
    for (const s of this.#sessions.values()) {
      for (const f of s.subflows.values()) {
        if (f.state !== 'established') continue;
        const a = (acc[f.access] ??= { subflows: 0, bytesSent: 0, bytesReceived: 0, rtt: [] });
        a.subflows++;
        a.bytesSent += f.bytesSent ?? 0;
        a.bytesReceived += f.bytesReceived ?? 0;
        if (f.rttMs !== undefined) a.rtt.push(f.rttMs);
      }
    }
    return Object.fromEntries(Object.entries(acc).map(([k, v]) => [k, {
      subflows: v.subflows, bytesSent: v.bytesSent, bytesReceived: v.bytesReceived,
      ...(v.rtt.length === 0 ? {} : { rttMs: v.rtt.reduce((x, y) => x + y, 0) / v.rtt.length }),
    }]));
  }

  sessions(): SessionView[] {
    return [...this.#sessions.values()].map((s) => this.#view(s));
  }

  session(token: number): SessionView | undefined {
    return this.sessions().find((s) => s.token === token);
  }

  /** Endpoint id per local address that this service installed. */
  endpoints(): Record<string, number> {
    return Object.fromEntries(this.#owned);
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

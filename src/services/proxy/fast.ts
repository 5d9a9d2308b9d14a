import type net from 'node:net';
import { DuocellError, toDuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import { ipFamily, unmapV4 } from '../../core/net.js';
import type { Accepted, AcceptWatch, ConnectSocketOptions, SpliceDone } from '../../drivers/sockets/index.js';
import { pickLocal } from './connector.js';
import { relayMode, type RelayStats } from './relay.js';
import { Session, type RelayLike, type SessionRegistry } from './session.js';
import type { TargetFilter } from './target-filter.js';
import type { Admission, Admit, FrontInfo, ListenerSpec, Placement, ProxyIo, SessionView } from './types.js';

/**
 * The fast path for fronts that read nothing from the client (explicit, transparent) with the
 * direct connector or one that places sessions (proxy selection: select-connector.ts place()):
 * no Node socket on either side, one JS call per accept wake-up.
 *
 *   listen fd readable ──► addon: accept4 × n ──► batch(fds, addresses) ──► per connection, in JS:
 *       Session record, target filter, admission (the policy's own exact counters), socket(),
 *       non-blocking connect() ──► spliceConnect: the relay thread owns both fds from here
 *   relay thread: upstream connect completes ──► connected(serverMptcp) ──► 'session' event
 *                 connect fails / client goes ──► done(before) ──► refused, client reset
 *                 relayed to the end          ──► done ──► release, 'closed' event
 *
 * Same semantics as the engine's JS path (engine.#runSession with Relay in splice mode): limits
 * and grants from `admit`, target filter, RST to the client when the upstream fails, connect
 * timeout, half-close, FIN hold, reset propagation and idle timeout (in the relay thread and
 * the engine's sweep), per-subflow figures through the live fds. DUOCELL_FAST_PATH=0 turns it
 * off (A/B runs): every listener then takes the JS path.
 *
 * With proxy selection (a cell's transparent listener) the batch asks, per connection:
 *   front.reads(info)? (an SNI rule could place it) ──yes──► JS path from the start
 *   target filter, admission, then connector.place():
 *       direct (on-path candidate, or a direct fallback) ──► connect here as above, the session's
 *           `proxy` is the candidate; its connect failing with another candidate behind it: the
 *           relay thread hands the client fd back, the JS path goes on with the next candidate
 *       not direct (Convert, SOCKS5 to a concentrator) ──► JS path, admitted, with the choice made
 * The JS path takes the accepted fd in a Node socket as its own listener would have handed it
 * (paused: the client's bytes are still in the kernel).
 */

const log = logger('duocell:proxy:fast');
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const EMFILE_PAUSE_MS = 100;

/** What the fast path borrows from its engine. */
export interface FastHost {
  io: ProxyIo;
  registry: SessionRegistry;
  admit?: Admit;
  targetFilter?: TargetFilter;
  onMptcpServer?: (server: { address: string; port: number }) => void;
  view(s: Session): SessionView;
  draining(): boolean;
  count(code: string): void;
  refuse(spec: ListenerSpec, s: Session, err: DuocellError): void;
  emitSession(v: SessionView): void;
  emitClosed(v: SessionView): void;
  /**
   * The JS path takes a connection on: a new one (`admitted` undefined), or an admitted session
   * whose connector goes on from `placed`.
   */
  toJs(spec: ListenerSpec, client: net.Socket, admitted?: { s: Session; info: FrontInfo; placed: unknown }): void;
}

/** Whether a listener runs on the fast path. */
export function fastEligible(spec: ListenerSpec, io: ProxyIo): boolean {
  if (process.env['DUOCELL_FAST_PATH'] === '0') return false;
  if (spec.front.fixed === undefined || (spec.connector.name !== 'direct' && spec.connector.place === undefined)) return false;
  if (!io.fastAvailable() || relayMode(io) !== 'splice') return false;
  // An explicit target given by name would need a resolver per connection: the JS path has one.
  if (spec.front.name === 'explicit') {
    const t = spec.front.fixed({ listener: spec, local: { address: spec.host, port: spec.port }, remote: { address: '', port: 0 }, clientMptcp: false });
    if (ipFamily(t.host) === 0) return false;
  }
  return true;
}

export function actionOf(c: string, front: string): string {
  if (front === 'convert' || front === 'socks5') return `${front}: relayed`;
  switch (c) {
    case 'M-N':
      return 'terminated MPTCP, plain TCP to server';
    case 'M-M':
      return 'proxied MPTCP both sides';
    case 'N-M':
      return 'converted TCP to MPTCP toward server';
    default:
      return 'relayed plain TCP';
  }
}

/** A fast-path session's relay: the addon's spliced session, seen through its id. */
export class FastRelay implements RelayLike {
  readonly mode = 'splice';
  connected = false;
  final: RelayStats | undefined;
  /** Why abort() was called while connecting (the refusal's code). */
  abortCode: 'DC_PROXY_CONNECT_TIMEOUT' | 'DC_ABORTED' | undefined;
  readonly #since = Date.now();

  constructor(
    readonly io: Pick<ProxyIo, 'spliceStats' | 'spliceAbort'>,
    readonly id: number,
    readonly deadline: number,
    /** Proxy selection: where the connector placed the session (direct), told how it went. */
    readonly placement?: Extract<Placement, { direct: true }>,
    readonly info?: FrontInfo,
  ) {}

  get stats(): RelayStats {
    if (this.final !== undefined) return this.final;
    const s = this.io.spliceStats(this.id);
    return s === undefined ? { up: 0, down: 0, lastActivity: this.#since } : { up: s.up, down: s.down, lastActivity: s.lastActivity };
  }

  fd(side: 'client' | 'server'): number | undefined {
    if (this.final !== undefined) return undefined;
    const s = this.io.spliceStats(this.id);
    return s === undefined ? undefined : side === 'client' ? s.clientFd : s.serverFd;
  }

  abort(code: 'DC_PROXY_CONNECT_TIMEOUT' | 'DC_ABORTED' = 'DC_ABORTED'): void {
    if (!this.connected) this.abortCode ??= code;
    if (this.final === undefined) this.io.spliceAbort(this.id);
  }
}

interface Listening {
  fd: number;
  watch: AcceptWatch;
  pause: NodeJS.Timeout | undefined;
  /** Every connection's local address, when the listener's own says it (bound to one address, not transparent). */
  local: { address: string; port: number } | undefined;
}

/** The connect socket's options (no spreads: one object shape, built per connection). */
function connectOptions(o: NonNullable<ListenerSpec['upstream']>, family: 4 | 6): ConnectSocketOptions {
  const c: ConnectSocketOptions = { family, mptcp: o.mptcp };
  const localAddress = pickLocal(o.localAddresses, family);
  if (localAddress !== undefined) c.localAddress = localAddress;
  if (o.mark !== undefined) c.mark = o.mark;
  if (o.device !== undefined) c.device = o.device;
  return c;
}

const WILDCARD = new Set(['0.0.0.0', '::', '::ffff:0.0.0.0', '']);

export class FastPath {
  readonly #host: FastHost;
  readonly #listening = new Map<string, Listening>();
  /** Sessions whose upstream connect is in flight: swept for the connect timeout. */
  readonly #connecting = new Set<Session>();
  #sweep: NodeJS.Timeout | undefined;
  /** Connections relayed here / handed to the JS path (proxy selection, SNI): for tests and /metrics. */
  readonly counts = { fast: 0, handedOver: 0 };

  constructor(host: FastHost) {
    this.#host = host;
  }

  /** Listen on `fd` (created and bound by the engine) and accept from now on. */
  listen(spec: ListenerSpec, fd: number): { address: string; port: number } {
    const { io } = this.#host;
    io.listen(fd, spec.backlog ?? 4096);
    const addr = io.sockName(fd);
    // Bound to one address and not transparent: every connection's local address is the
    // listener's, so the addon asks no getsockname per connection (TPROXY's original
    // destination and a wildcard listener's address need it).
    const known = spec.transparent !== true && !WILDCARD.has(addr.address);
    const local = known ? { address: unmapV4(addr.address), port: addr.port } : undefined;
    const l: Listening = { fd, watch: undefined as unknown as AcceptWatch, pause: undefined, local };
    l.watch = local === undefined ? io.acceptWatch(fd, (list, errno) => this.#batch(spec, l, list, errno)) : io.acceptWatch(fd, (list, errno) => this.#batch(spec, l, list, errno), local);
    this.#listening.set(spec.name, l);
    return addr;
  }

  /** Stop accepting on every listener and close them. */
  close(): void {
    for (const l of this.#listening.values()) {
      if (l.pause !== undefined) clearTimeout(l.pause);
      l.watch.stop();
      this.#host.io.close(l.fd);
    }
    this.#listening.clear();
    if (this.#sweep !== undefined) clearInterval(this.#sweep);
    this.#sweep = undefined;
  }

  #batch(spec: ListenerSpec, l: Listening, list: Accepted[], errno: number): void {
    for (const a of list) this.#accept(spec, l, a);
    if (errno !== 0) {
      // Accept errors (EMFILE/ENFILE/ENOBUFS) are survived: pause, the backlog keeps the rest.
      const code = errno === 24 || errno === 23 ? 'DC_PROXY_EMFILE' : 'DC_PROXY_LISTEN';
      log.error({ code, listener: spec.name, errno }, 'accept error: pausing the listener');
      this.#host.count(code);
      l.pause = setTimeout(() => {
        l.pause = undefined;
        l.watch.resume();
      }, EMFILE_PAUSE_MS);
    }
  }

  #accept(spec: ListenerSpec, l: Listening, a: Accepted): void {
    const h = this.#host;
    const { io } = h;
    if (h.draining()) {
      h.count('DC_PROXY_SHUTDOWN');
      io.closeReset(a.fd);
      return;
    }
    const ra = unmapV4(a.remote.address);
    const remote = ra === a.remote.address ? a.remote : { address: ra, port: a.remote.port };
    const local = l.local !== undefined && a.local === l.local ? l.local : { address: unmapV4(a.local.address), port: a.local.port };
    const clientMptcp = spec.mptcp && io.isMptcp(a.fd);
    const info: FrontInfo = { listener: spec, local, remote, clientMptcp };
    if (spec.front.reads?.(info) === true) {
      this.#handOver(spec, a.fd, undefined);
      return;
    }
    const target = spec.front.fixed!(info);
    const s = new Session(h.registry.nextId(), spec.name, spec.front.name, undefined, remote, clientMptcp, target, io);
    h.registry.add(s);
    let admission: void | Admission | Promise<void | Admission>;
    try {
      const verdict = h.targetFilter?.(target);
      if (verdict !== undefined) {
        throw new DuocellError('DC_TARGET_FORBIDDEN', `target ${target.host}:${target.port} is not allowed (${verdict.reason}: ${verdict.judged})`, {
          origin: 'local',
          reason: verdict.reason,
        });
      }
      admission = h.admit?.(info, { target });
    } catch (e) {
      this.#fail(spec, s, a.fd, toDuocellError(e, 'DC_PROXY_CLIENT_ERROR'));
      return;
    }
    if (admission instanceof Promise) {
      admission.then(
        (x) => this.#admitted(spec, s, info, a.fd, x),
        (e: unknown) => this.#fail(spec, s, a.fd, toDuocellError(e, 'DC_PROXY_CLIENT_ERROR')),
      );
    } else {
      this.#admitted(spec, s, info, a.fd, admission);
    }
  }

  #admitted(spec: ListenerSpec, s: Session, info: FrontInfo, cfd: number, a: void | Admission): void {
    if (a !== undefined) {
      s.grant = a.grant;
      s.release = a.release;
      if (a.grant?.subscriber != null && s.subscriber === undefined) s.subscriber = a.grant.subscriber;
    }
    const upstream = spec.upstream ?? { mptcp: false };
    const place = spec.connector.place;
    if (place === undefined) {
      this.#connect(spec, s, cfd, upstream, undefined, info);
      return;
    }
    let p: Placement;
    try {
      p = place.call(spec.connector, { target: s.target!, options: upstream, client: s.clientEndpoint, ...(s.subscriber === undefined ? {} : { subscriber: s.subscriber }) });
    } catch (e) {
      this.#fail(spec, s, cfd, toDuocellError(e, 'DC_PROXY_CONNECT_FAILED'));
      return;
    }
    if (p.direct) this.#connect(spec, s, cfd, p.options, p, info);
    else this.#handOver(spec, cfd, { s, info, placed: p.resume });
  }

  /** The JS path takes the connection on (its own listener's socket, paused). */
  #handOver(spec: ListenerSpec, cfd: number, admitted: { s: Session; info: FrontInfo; placed: unknown } | undefined): void {
    const h = this.#host;
    let client: net.Socket;
    try {
      client = h.io.acceptedOn(cfd);
    } catch (e) {
      const err = toDuocellError(e, 'DC_PROXY_CLIENT_ERROR');
      if (admitted !== undefined) this.#fail(spec, admitted.s, cfd, err);
      else {
        h.count(err.code);
        h.io.closeReset(cfd);
      }
      return;
    }
    this.counts.handedOver++;
    h.toJs(spec, client, admitted);
  }

  #connect(spec: ListenerSpec, s: Session, cfd: number, o: NonNullable<ListenerSpec['upstream']>, p: Extract<Placement, { direct: true }> | undefined, info: FrontInfo): void {
    const { io } = this.#host;
    const target = s.target!;
    let sfd = -1;
    try {
      const family = ipFamily(target.host) as 4 | 6;
      sfd = io.createConnectSocket(connectOptions(o, family));
      io.connectStart(sfd, target.host, target.port);
      const id = io.spliceConnect(
        cfd,
        sfd,
        (m) => this.#connected(spec, s, m),
        (r) => this.#done(spec, s, r),
        p?.more === true,
        !o.mptcp,
      );
      const relay = new FastRelay(io, id, Date.now() + (o.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS), p, info);
      s.relay = relay;
      this.#connecting.add(s);
      this.#sweep ??= setInterval(() => this.#timeouts(), 250).unref();
    } catch (e) {
      if (sfd >= 0) io.close(sfd);
      const d = e instanceof DuocellError ? e.detail : {};
      const err =
        e instanceof DuocellError && e.code === 'DC_SOCKET_SYSCALL'
          ? new DuocellError('DC_PROXY_CONNECT_FAILED', `connect ${target.host}:${target.port}: ${e.message}`, { cause: e, origin: 'kernel', errno: typeof d.errno === 'number' ? d.errno : undefined })
          : toDuocellError(e, 'DC_PROXY_CONNECT_FAILED');
      // The client fd is still ours: another candidate may take the session.
      const next = p?.failed(err);
      if (next !== undefined) this.#handOver(spec, cfd, { s, info, placed: next.resume });
      else this.#fail(spec, s, cfd, err);
    }
  }

  #connected(spec: ListenerSpec, s: Session, serverMptcp: boolean): void {
    const h = this.#host;
    const relay = s.relay as FastRelay;
    relay.connected = true;
    this.#connecting.delete(s);
    s.serverMptcp = serverMptcp;
    s.server = { address: unmapV4(s.target!.host), port: s.target!.port };
    if (relay.placement !== undefined) {
      relay.placement.connected();
      if (relay.placement.via !== undefined) s.via = relay.placement.via;
    }
    this.counts.fast++;
    s.action = actionOf(s.combination, spec.front.name);
    if (s.serverMptcp && spec.transparent === true) {
      s.action += '; M-server remembered for end-to-end bypass';
      try {
        h.onMptcpServer?.(s.server);
      } catch (e) {
        log.warn({ err: (e as Error).message }, 'M-server hook failed');
      }
    }
    s.state = 'relaying';
    h.registry.totals.byCombination[s.combination]++;
    h.emitSession(h.view(s));
  }

  #done(spec: ListenerSpec, s: Session, r: SpliceDone): void {
    const h = this.#host;
    const relay = s.relay as FastRelay;
    this.#connecting.delete(s);
    if (r.before !== undefined) {
      relay.final = { up: 0, down: 0, lastActivity: Date.now() };
      const t = `${s.target!.host}:${s.target!.port}`;
      const err =
        r.before === 'server'
          ? new DuocellError('DC_PROXY_CONNECT_FAILED', `connect ${t}: ${r.errnoName ?? r.errno}`, { origin: 'kernel', sysCode: r.errnoName, errno: r.errno })
          : r.before === 'abort' && relay.abortCode === 'DC_PROXY_CONNECT_TIMEOUT'
            ? new DuocellError('DC_PROXY_CONNECT_TIMEOUT', `no answer from ${t} in time`)
            : new DuocellError('DC_ABORTED', 'client went away during connect');
      // Handed back (keepClient): another candidate may take the session; else reset it here.
      // Otherwise the relay thread already closed both fds, with a RST (the client sees the failure).
      const next = relay.placement?.failed(err);
      if (r.clientFd !== undefined && next !== undefined && !h.draining()) {
        s.relay = undefined;
        this.#handOver(spec, r.clientFd, { s, info: relay.info!, placed: next.resume });
        return;
      }
      this.#fail(spec, s, r.clientFd ?? -1, err);
      return;
    }
    relay.final = { up: r.up, down: r.down, lastActivity: Date.now() };
    relay.placement?.ended();
    if (r.reset) {
      h.registry.totals.reset++;
      log.debug({ code: 'DC_PROXY_RESET', errno: r.errnoName ?? r.errno, up: r.up, down: r.down }, 'spliced session reset');
    }
    s.state = 'closing';
    this.#release(s);
    h.registry.totals.completed++;
    const v = h.view(s);
    h.registry.remove(s);
    h.emitClosed(v);
  }

  /** A session refused before relaying: count it, reset the client (unless gone), release. */
  #fail(spec: ListenerSpec, s: Session, cfd: number, err: DuocellError): void {
    const h = this.#host;
    h.refuse(spec, s, err);
    if (cfd >= 0) h.io.closeReset(cfd);
    s.state = 'closing';
    this.#release(s);
    h.registry.totals.failed++;
    h.registry.remove(s);
  }

  #release(s: Session): void {
    const release = s.release;
    s.release = undefined;
    if (release === undefined) return;
    try {
      release();
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'admission release failed');
    }
  }

  #timeouts(): void {
    const now = Date.now();
    for (const s of this.#connecting) {
      const r = s.relay as FastRelay;
      if (now >= r.deadline) {
        this.#connecting.delete(s);
        r.abort('DC_PROXY_CONNECT_TIMEOUT');
      }
    }
  }

}

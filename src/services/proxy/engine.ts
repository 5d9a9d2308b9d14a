import type net from 'node:net';
import { EventEmitter } from 'node:events';
import { DuocellError, toDuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import { prefixContains, unmapV4, type Prefix } from '../../core/net.js';
import { Relay } from './relay.js';
import { Session, SessionRegistry } from './session.js';
import { actionOf, FastPath, fastEligible } from './fast.js';
import { LogLimiter } from '../../core/log-limit.js';
import type { TargetFilter } from './target-filter.js';
import type { AccessType, Admit, Endpoint, FrontInfo, FrontRequest, ListenerSpec, ProxyIo, SessionView } from './types.js';

/**
 * The proxy engine: listeners → session → upstream connector → relay.
 *
 *   accept ──► front.accept (read request) ──► admit (policy) ──► connector.connect
 *          ──► front.answer (reply/reset) ──► Relay (both ways) ──► close, account
 *
 * Nothing here blocks the event loop or trusts a client: every step has a timeout, every socket
 * error is caught and logged with a code, and a hostile client only ever costs its own session.
 */

const log = logger('duocell:proxy');

export interface EngineOptions {
  /** The socket operations (production: drivers/sockets/io.ts socketIo). */
  io: ProxyIo;
  /** Close sessions that carried no byte for this long (default 15 min). */
  idleTimeoutMs?: number;
  /** Time a front may take to read the client's request (default 10 s). */
  handshakeTimeoutMs?: number;
  /** Label an address with its access type (subflow accounting). */
  label?: (address: string) => AccessType;
  admit?: Admit;
  /**
   * Relay targets no front may reach (the box itself, special-purpose ranges): a verdict refuses
   * the session with DC_TARGET_FORBIDDEN, which each front answers in its own protocol.
   */
  targetFilter?: TargetFilter;
  /** A transparent session's server answered MPTCP: steering may let later ones go end to end. */
  onMptcpServer?: (server: { address: string; port: number }) => void;
}

export interface EngineEvents {
  session: [SessionView];
  closed: [SessionView];
  refused: [{ listener: string; code: string; client: string }];
}

export class ProxyEngine extends EventEmitter<EngineEvents> {
  readonly registry = new SessionRegistry();
  readonly #servers = new Map<string, net.Server>();
  /** Listeners on the fast path (fast.ts): their bound addresses. */
  readonly #fastAddrs = new Map<string, net.AddressInfo>();
  readonly #fast: FastPath;
  readonly #io: ProxyIo;
  readonly #opts: Required<Omit<EngineOptions, 'io' | 'admit' | 'onMptcpServer' | 'targetFilter'>> &
    Pick<EngineOptions, 'admit' | 'onMptcpServer' | 'targetFilter'>;
  #sweep: NodeJS.Timeout | undefined;
  #draining = false;
  readonly refusals = new Map<string, number>();
  /** DC_TARGET_FORBIDDEN refusals by front and reason ("socks5 own-address"). */
  readonly targetRefusals = new Map<string, number>();
  /** Refusals are logged once per code per window, with a summary of the rest. */
  readonly #refusalLog = new LogLimiter({ log, windowMs: 60_000 });

  constructor(opts: EngineOptions) {
    super();
    this.#io = opts.io;
    this.#opts = {
      idleTimeoutMs: opts.idleTimeoutMs ?? 15 * 60_000,
      handshakeTimeoutMs: opts.handshakeTimeoutMs ?? 10_000,
      label: opts.label ?? (() => 'unknown'),
      ...(opts.admit === undefined ? {} : { admit: opts.admit }),
      ...(opts.onMptcpServer === undefined ? {} : { onMptcpServer: opts.onMptcpServer }),
      ...(opts.targetFilter === undefined ? {} : { targetFilter: opts.targetFilter }),
    };
    this.#fast = new FastPath({
      io: this.#io,
      registry: this.registry,
      ...(opts.admit === undefined ? {} : { admit: opts.admit }),
      ...(opts.targetFilter === undefined ? {} : { targetFilter: opts.targetFilter }),
      ...(opts.onMptcpServer === undefined ? {} : { onMptcpServer: opts.onMptcpServer }),
      view: (s) => s.view(this.#opts.label),
      draining: () => this.#draining,
      count: (code) => this.#count(code),
      refuse: (spec, s, err) => this.#refuse(spec, s, err),
      emitSession: (v) => this.emit('session', v),
      emitClosed: (v) => this.emit('closed', v),
      toJs: (spec, client, admitted) => {
        if (admitted === undefined) {
          this.#onClient(spec, client);
          return;
        }
        client.on('error', () => undefined); // as #onClient: the session's own path handles errors
        admitted.s.adoptClient(client);
        void this.#runSession(spec, admitted.s, admitted.info, { req: { target: admitted.s.target! }, placed: admitted.placed });
      },
    });
  }

  /** Connections the fast path relayed itself, and those it handed to the JS path (proxy selection, SNI). */
  get fastCounts(): Readonly<{ fast: number; handedOver: number }> {
    return this.#fast.counts;
  }

  /** Open a listener; resolves with its bound address. */
  async listen(spec: ListenerSpec): Promise<net.AddressInfo> {
    if (this.#servers.has(spec.name) || this.#fastAddrs.has(spec.name)) throw new DuocellError('DC_PROXY_LISTEN', `listener ${spec.name} exists`);
    const fd = this.#io.createListenSocket({
      host: spec.host,
      port: spec.port,
      mptcp: spec.mptcp,
      ...(spec.transparent === undefined ? {} : { transparent: spec.transparent }),
      ...(spec.fastOpen === undefined ? {} : { fastOpen: spec.fastOpen }),
    });
    if (fastEligible(spec, this.#io)) return this.#listenFast(spec, fd);
    const server = this.#io.server((c) => this.#onClient(spec, c));
    server.on('error', (e: NodeJS.ErrnoException) => {
      // Accept errors (EMFILE/ENFILE/ENOBUFS) are survived: libuv keeps the listener open.
      const code = e.code === 'EMFILE' || e.code === 'ENFILE' ? 'DC_PROXY_EMFILE' : 'DC_PROXY_LISTEN';
      log.error({ code, listener: spec.name, err: e.message }, 'listener error');
      this.#count(code);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ fd, backlog: spec.backlog ?? 4096 }, () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
    this.#servers.set(spec.name, server);
    return this.#listening(spec, server.address() as net.AddressInfo, false);
  }

  #listenFast(spec: ListenerSpec, fd: number): net.AddressInfo {
    let a: Endpoint;
    try {
      a = this.#fast.listen(spec, fd);
    } catch (e) {
      this.#io.close(fd);
      throw toDuocellError(e, 'DC_PROXY_LISTEN');
    }
    const addr: net.AddressInfo = { address: a.address, port: a.port, family: a.address.includes(':') ? 'IPv6' : 'IPv4' };
    this.#fastAddrs.set(spec.name, addr);
    return this.#listening(spec, addr, true);
  }

  #listening(spec: ListenerSpec, addr: net.AddressInfo, fast: boolean): net.AddressInfo {
    if (this.#sweep === undefined) {
      this.#sweep = setInterval(() => this.#idleSweep(), Math.min(1000, this.#opts.idleTimeoutMs / 2));
      this.#sweep.unref();
    }
    log.info({ listener: spec.name, front: spec.front.name, connector: spec.connector.name, address: addr, mptcp: spec.mptcp, transparent: spec.transparent === true, fast }, 'listening');
    return addr;
  }

  address(name: string): net.AddressInfo | undefined {
    return this.#fastAddrs.get(name) ?? (this.#servers.get(name)?.address() as net.AddressInfo | null) ?? undefined;
  }

  #count(reason: string): void {
    this.refusals.set(reason, (this.refusals.get(reason) ?? 0) + 1);
  }

  #onClient(spec: ListenerSpec, client: net.Socket): void {
    client.on('error', () => undefined); // every error is handled by the session's own path
    if (this.#draining) {
      this.#count('DC_PROXY_SHUTDOWN');
      client.resetAndDestroy();
      return;
    }
    const cfd = this.#io.fdOf(client);
    const local = { address: unmapV4(client.localAddress ?? ''), port: client.localPort ?? 0 };
    const remote = { address: unmapV4(client.remoteAddress ?? ''), port: client.remotePort ?? 0 };
    if (client.remoteAddress === undefined) {
      client.destroy(); // already gone
      return;
    }
    const clientMptcp = cfd !== undefined && spec.mptcp && this.#io.isMptcp(cfd);
    const info: FrontInfo = { listener: spec, local, remote, clientMptcp };
    const s = new Session(this.registry.nextId(), spec.name, spec.front.name, client, remote, clientMptcp, undefined, this.#io);
    this.registry.add(s);
    void this.#runSession(spec, s, info);
  }

  /**
   * `admitted`: a session the fast path accepted, filtered and admitted, handed over to connect
   * from `placed` on (the connector's own state, proxy selection).
   */
  async #runSession(spec: ListenerSpec, s: Session, info: FrontInfo, admitted?: { req: FrontRequest; placed: unknown }): Promise<void> {
    const client = s.client!;
    const abort = new AbortController();
    const onGone = (): void => abort.abort();
    client.once('close', onGone);
    let req: FrontRequest;
    let viaConverter = false;
    // Fronts that read a request (Convert, SOCKS5) need the client's bytes now. For explicit and
    // transparent ones the bytes stay in the kernel until the relay takes the socket: no read
    // start/stop round trip and no handshake timer per connection.
    const reads = spec.front.name !== 'explicit' && spec.front.name !== 'transparent';
    if (admitted !== undefined) req = admitted.req;
    else {
      try {
        if (reads) client.resume();
        const accepted = spec.front.accept(client, info);
        req = reads ? await withTimeout(accepted, this.#opts.handshakeTimeoutMs, 'client request') : await accepted;
        s.target = req.target;
        if (req.subscriber !== undefined) s.subscriber = req.subscriber;
        if (req.sni !== undefined) s.sni = req.sni;
        const verdict = this.#opts.targetFilter?.(req.target);
        if (verdict !== undefined) {
          throw new DuocellError('DC_TARGET_FORBIDDEN', `target ${req.target.host}:${req.target.port} is not allowed (${verdict.reason}: ${verdict.judged})`, {
            origin: 'local',
            reason: verdict.reason,
          });
        }
        if (this.#opts.admit !== undefined) {
          const a = await this.#opts.admit(info, req);
          if (a !== undefined) {
            s.grant = a.grant;
            s.release = a.release;
            if (a.grant?.subscriber != null && s.subscriber === undefined) s.subscriber = a.grant.subscriber;
          }
        }
      } catch (e) {
        const err = toDuocellError(e, 'DC_PROXY_CLIENT_ERROR');
        this.#refuse(spec, s, err);
        await safeAnswer(spec, client, { ok: false, error: err }, info);
        this.#end(s, false);
        return;
      }
    }
    try {
      if (abort.signal.aborted) throw new DuocellError('DC_ABORTED', 'client went away before connect');
      if (reads) client.pause();
      const { socket, serverMptcp, via, converter } = await spec.connector.connect({
        target: req.target,
        ...(req.early === undefined ? {} : { early: req.early }),
        options: spec.upstream ?? { mptcp: false },
        signal: abort.signal,
        client: s.clientEndpoint,
        ...(s.subscriber === undefined ? {} : { subscriber: s.subscriber }),
        ...(req.sni === undefined ? {} : { sni: req.sni }),
        io: this.#io,
        ...(admitted === undefined ? {} : { placed: admitted.placed }),
        clientSocket: client,
      });
      s.upstream = socket;
      if (via !== undefined) s.via = via;
      s.serverMptcp = serverMptcp;
      viaConverter = converter === true;
      s.server = { address: unmapV4(socket.remoteAddress ?? req.target.host), port: socket.remotePort ?? req.target.port };
      socket.setKeepAlive(true, 60_000);
      socket.setNoDelay(true);
      if (abort.signal.aborted) throw new DuocellError('DC_ABORTED', 'client went away during connect');
      await spec.front.answer(
        client,
        { ok: true, upstream: socket, local: { address: socket.localAddress ?? '', port: socket.localPort ?? 0 }, serverMptcp, ...(s.grant === undefined ? {} : { grant: s.grant }) },
        info,
      );
    } catch (e) {
      const err = toDuocellError(e, 'DC_PROXY_CONNECT_FAILED');
      s.upstream?.destroy();
      this.#refuse(spec, s, err);
      await safeAnswer(spec, client, { ok: false, error: err }, info);
      this.#end(s, false);
      return;
    } finally {
      client.removeListener('close', onGone);
    }
    const upstream = s.upstream;
    if (upstream === undefined || client.destroyed) {
      upstream?.destroy();
      this.#end(s, false);
      return;
    }
    client.setKeepAlive(true, 60_000);
    s.action = actionOf(s.combination, spec.front.name);
    // Through a converter the MPTCP peer is the concentrator, not the server: nothing to bypass
    // (remembering it cost an nft run and a store write on every pooled N-UE session). The
    // connector says so per session: a cell's transparent listener has the selecting connector,
    // whose sessions go through a converter or not (a name check missed them: convert-setup).
    if (s.serverMptcp && spec.transparent === true && s.server !== undefined && !viaConverter) {
      s.action += '; M-server remembered for end-to-end bypass';
      try {
        this.#opts.onMptcpServer?.(s.server);
      } catch (e) {
        log.warn({ err: (e as Error).message }, 'M-server hook failed');
      }
    }
    s.state = 'relaying';
    this.registry.totals.byCombination[s.combination]++;
    const relay = new Relay(client, upstream, this.#io);
    s.relay = relay;
    this.emit('session', s.view(this.#opts.label));
    const r = await relay.done;
    if (r.reset) this.registry.totals.reset++;
    this.#end(s, true);
  }

  #refuse(spec: ListenerSpec, s: Session, err: DuocellError): void {
    const fields = { code: err.code, listener: spec.name, client: s.clientEndpoint, target: s.target, err: err.message };
    if (err.code === 'DC_ABORTED') log.debug(fields, 'session refused');
    else this.#refusalLog.warn(err.code, fields, 'session refused');
    this.#count(err.code);
    if (err.code === 'DC_TARGET_FORBIDDEN') {
      // From the filter here or a front's own check (SOCKS5 resolves names itself).
      const key = `${spec.front.name} ${typeof err.detail.reason === 'string' ? err.detail.reason : 'unknown'}`;
      this.targetRefusals.set(key, (this.targetRefusals.get(key) ?? 0) + 1);
    }
    s.action = `refused:${err.code}`;
    this.emit('refused', { listener: spec.name, code: err.code, client: `${s.clientEndpoint.address}:${s.clientEndpoint.port}` });
  }

  #end(s: Session, relayed: boolean): void {
    s.state = 'closing';
    const release = s.release;
    s.release = undefined;
    if (release !== undefined) {
      try {
        release();
      } catch (e) {
        log.warn({ err: (e as Error).message }, 'admission release failed');
      }
    }
    // A refused client was answered and ended by safeAnswer (its reply must not be discarded).
    if (relayed && s.client !== undefined && !s.client.destroyed) s.client.destroy();
    if (s.upstream !== undefined && !s.upstream.destroyed) s.upstream.destroy();
    if (relayed) this.registry.totals.completed++;
    else this.registry.totals.failed++;
    const v = relayed ? s.view(this.#opts.label) : undefined;
    this.registry.remove(s);
    if (v !== undefined) this.emit('closed', v);
  }

  #idleSweep(): void {
    const limit = Date.now() - this.#opts.idleTimeoutMs;
    for (const s of this.registry.values()) {
      if (s.relay !== undefined && s.relay.stats.lastActivity < limit) {
        log.info({ code: 'DC_PROXY_IDLE_TIMEOUT', session: s.id }, 'idle session closed');
        this.registry.totals.idleClosed++;
        this.#count('DC_PROXY_IDLE_TIMEOUT');
        s.relay.abort();
      }
    }
  }

  /**
   * Subflows of live sessions whose other end (toward the UE) or own end (toward the server) is
   * inside one of `prefixes`: the ones a radio that just went down was carrying.
   */
  subflowsWithin(prefixes: readonly Prefix[]): Array<{ session: string; side: 'client' | 'server'; local: Endpoint; remote: Endpoint }> {
    const out: Array<{ session: string; side: 'client' | 'server'; local: Endpoint; remote: Endpoint }> = [];
    for (const s of this.registry.values()) {
      s.sample();
      for (const [side, fi] of [['client', s.lastClientInfo], ['server', s.lastServerInfo]] as const) {
        for (const sf of fi?.subflows ?? []) {
          if (sf.local === undefined || sf.remote === undefined) continue;
          const probe = side === 'client' ? sf.remote.address : sf.local.address;
          if (prefixes.some((p) => prefixContains(p, probe))) {
            out.push({ session: s.id, side, local: { address: sf.local.address, port: sf.local.port }, remote: { address: sf.remote.address, port: sf.remote.port } });
          }
        }
      }
    }
    return out;
  }

  sessions(): SessionView[] {
    return [...this.registry.values()].map((s) => s.view(this.#opts.label));
  }

  /**
   * Stop accepting, let live sessions finish for up to `drainMs`, then reset what is left.
   * Resolves when every session is gone.
   */
  async close(drainMs = 5000): Promise<void> {
    this.#draining = true;
    this.#fast.close();
    this.#fastAddrs.clear();
    await Promise.all([...this.#servers.values()].map((srv) => new Promise<void>((r) => srv.close(() => r()))));
    this.#servers.clear();
    const deadline = Date.now() + drainMs;
    while (this.registry.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const s of this.registry.values()) {
      if (s.relay !== undefined) s.relay.abort();
      else {
        s.client?.destroy();
        s.upstream?.destroy();
      }
    }
    while (this.registry.size > 0) await new Promise((r) => setTimeout(r, 10));
    if (this.#sweep !== undefined) clearInterval(this.#sweep);
    this.#sweep = undefined;
    this.#refusalLog.flush();
  }
}

async function safeAnswer(spec: ListenerSpec, client: net.Socket, r: { ok: false; error: DuocellError }, info: FrontInfo): Promise<void> {
  try {
    await spec.front.answer(client, r, info);
  } catch (e) {
    log.debug({ err: (e as Error).message }, 'answer to client failed');
  }
  // Never leave a refused client open: if the front wrote a reply and ended, this only frees the fd.
  if (!client.destroyed) {
    client.end();
    setTimeout(() => client.destroy(), 2000).unref();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new DuocellError('DC_TIMEOUT', `timed out after ${ms} ms waiting for ${what}`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

import type net from 'node:net';
import { DuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import { Socks5ClientHandshake, SocksMethod, type Socks5Step, encodeGreeting, encodeUserPassRequest, parseMethodSelection, parseUserPassReply } from '../../protocols/socks5/index.js';
import { openUpstream } from './connector.js';
import { FrontReader } from './fronts/reader.js';
import type { ConnectRequest, Connector, Endpoint, ProxyIo, UpstreamOptions } from './types.js';

/**
 * SOCKS5 client (cell side): reaches the server through a SOCKS5 proxy (a candidate whose
 * protocol is `socks5`: duocell's own SOCKS5 front on a concentrator, or any RFC 1928 server).
 *
 *   1. MPTCP socket to the proxy from the listener's uplink addresses (falls back to plain TCP
 *      when the proxy does not speak MPTCP; the session then shows a plain TCP server side).
 *   2. Greeting → method (→ RFC 1929 username/password) → CONNECT to the numeric target →
 *      reply, all within `handshakeTimeoutMs` from the connection being up
 *      (protocols/socks5/client.ts does the bytes). One round trip more than Convert's 0-RTT
 *      per step: the client's early bytes are written only after the reply.
 *   3. A failure reply becomes a DuocellError with a stable code (DC_SOCKS_PEER_*) whose
 *      `detail.outcome` says whether it is about the session or the proxy (select-connector.ts
 *      counts the latter against the candidate); detail.socksReply carries the REP code, which
 *      duocell's own SOCKS5 front passes on to its client.
 *   4. Bytes that arrived behind the reply (same segment) are put back in front of the stream:
 *      the relay reads them first.
 */

const log = logger('duocell:proxy:socks5-client');

export const DEFAULT_SOCKS_HANDSHAKE_MS = 10_000;

export interface Socks5Credentials {
  username: string;
  password: string;
}

export interface Socks5ClientOptions {
  /** The proxy. A function lets a selector choose per session. */
  proxy: Endpoint | ((req: ConnectRequest) => Endpoint);
  /** RFC 1929 credentials (per proxy when a function). */
  auth?: Socks5Credentials | ((req: ConnectRequest) => Socks5Credentials | undefined);
  /** Open MPTCP toward the proxy. Default true. */
  mptcp?: boolean;
  /** Time allowed from the connection being up to the CONNECT reply (default 10 s). */
  handshakeTimeoutMs?: number;
}

/** Run the handshake on a connected socket; resolves with the reply's bound address, leaving later bytes on the socket. */
async function handshake(socket: net.Socket, hs: Socks5ClientHandshake, timeoutMs: number, signal: AbortSignal): Promise<string> {
  const reader = new FrontReader(socket, 0);
  const onAbort = (): void => {
    socket.destroy();
  };
  signal.addEventListener('abort', onAbort, { once: true });
  const deadline = Date.now() + timeoutMs;
  try {
    socket.write(hs.start());
    for (;;) {
      // Feed whatever arrived; the state machine says what to send and when it is done.
      const step = await reader.next<Socks5Step>(
        (b) => (b.length === 0 ? { need: 1 } : { value: hs.feed(b), consumed: b.length }),
        `the SOCKS5 proxy's ${hs.state === 'method' ? 'method selection' : hs.state === 'auth' ? 'authentication reply' : 'CONNECT reply'}`,
        Math.max(1, deadline - Date.now()),
        'DC_SOCKS_TRUNCATED',
        { outcome: 'candidate', phase: hs.state },
      );
      if (signal.aborted) throw new DuocellError('DC_ABORTED', 'client went away during the SOCKS5 handshake');
      if (step.send !== undefined) socket.write(step.send);
      if (step.done !== undefined) {
        reader.detach();
        if (step.done.rest.length > 0) socket.unshift(step.done.rest);
        return `${step.done.bound.host}:${step.done.bound.port}`;
      }
    }
  } catch (e) {
    reader.detach();
    if (signal.aborted && !(e instanceof DuocellError && e.code === 'DC_ABORTED')) {
      throw new DuocellError('DC_ABORTED', 'client went away during the SOCKS5 handshake', { cause: e });
    }
    throw e;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

export function socks5Connector(o: Socks5ClientOptions): Connector {
  return {
    name: 'socks5',
    async connect(req) {
      const proxy = typeof o.proxy === 'function' ? o.proxy(req) : o.proxy;
      const auth = typeof o.auth === 'function' ? o.auth(req) : o.auth;
      // Encode first: a target or credential SOCKS5 cannot carry fails before any connection.
      const hs = new Socks5ClientHandshake({ host: req.target.host, port: req.target.port, ...(auth === undefined ? {} : { auth }) });
      const { socket, serverMptcp } = await openUpstream({
        target: { host: proxy.address, port: proxy.port },
        options: { ...req.options, mptcp: o.mptcp ?? true, fastOpen: false },
        signal: req.signal,
        io: req.io,
      });
      let bound: string;
      try {
        bound = await handshake(socket, hs, o.handshakeTimeoutMs ?? DEFAULT_SOCKS_HANDSHAKE_MS, req.signal);
      } catch (e) {
        if (!socket.destroyed) socket.resetAndDestroy();
        const err = e instanceof DuocellError ? e : new DuocellError('DC_SOCKS_TRUNCATED', String(e), { cause: e, outcome: 'candidate' });
        log.debug({ code: err.code, socksReply: err.detail.socksReply, target: req.target, proxy }, 'socks5 connect refused');
        throw err;
      }
      // Errors from here on are the relay's; never let one go unheard between hand-over and relay.
      socket.on('error', () => undefined);
      if (req.early !== undefined && req.early.length > 0) socket.write(req.early);
      log.debug({ target: req.target, proxy, bound, mptcp: serverMptcp }, 'socks5 connected');
      return { socket, serverMptcp };
    },
  };
}

/**
 * Probe a SOCKS5 proxy as a session would reach it, without a CONNECT: greeting, method
 * selection and (with credentials) the RFC 1929 exchange. Resolves with the time from the
 * connection being up to the last answer (one RTT, two with credentials), in ms; rejects when
 * it cannot connect, accepts none of our methods, refuses the credentials, or says nothing.
 */
export async function probeSocks5(
  proxy: Endpoint,
  o: { auth?: Socks5Credentials; options: UpstreamOptions; signal: AbortSignal; timeoutMs?: number; io: ProxyIo },
): Promise<number> {
  const timeoutMs = o.timeoutMs ?? 1000;
  const { socket } = await openUpstream({
    target: { host: proxy.address, port: proxy.port },
    options: { ...o.options, fastOpen: false, connectTimeoutMs: timeoutMs },
    signal: o.signal,
    io: o.io,
  });
  socket.on('error', () => undefined);
  const reader = new FrontReader(socket, 0);
  const onAbort = (): void => {
    socket.destroy();
  };
  o.signal.addEventListener('abort', onAbort, { once: true });
  try {
    const t0 = performance.now();
    socket.write(encodeGreeting(o.auth === undefined ? [SocksMethod.NO_AUTH] : [SocksMethod.USERPASS, SocksMethod.NO_AUTH]));
    const { method } = await reader.next(parseMethodSelection, "the SOCKS5 proxy's method selection", timeoutMs, 'DC_SOCKS_TRUNCATED');
    if (method === SocksMethod.USERPASS && o.auth !== undefined) {
      socket.write(encodeUserPassRequest(o.auth.username, o.auth.password));
      const { status } = await reader.next(parseUserPassReply, "the SOCKS5 proxy's authentication reply", timeoutMs, 'DC_SOCKS_TRUNCATED');
      if (status !== 0) throw new DuocellError('DC_SOCKS_PEER_AUTH', `the SOCKS5 proxy refused our username/password (status ${status})`, { origin: 'peer' });
    } else if (method !== SocksMethod.NO_AUTH) {
      throw new DuocellError('DC_SOCKS_PEER_AUTH', `the SOCKS5 proxy chose method ${method}`, { origin: 'peer', method });
    }
    return performance.now() - t0;
  } finally {
    o.signal.removeEventListener('abort', onAbort);
    reader.detach();
    socket.destroy();
  }
}

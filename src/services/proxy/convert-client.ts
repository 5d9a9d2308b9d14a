import type net from 'node:net';
import diagnostics from 'node:diagnostics_channel';
import dns from 'node:dns/promises';
import { checkListenerOptions } from '../../core/board.js';
import { DuocellError } from '../../core/errors.js';
import { parseHostPort } from '../../core/net.js';
import { logger } from '../../core/logger.js';
import {
  ConvertErrorCode,
  convertErrorName,
  encodeConvertMessage,
  parseConvertMessage,
  parseIPv4,
  parseIPv6,
  validateResponse,
  type ConvertMessage,
  type ConvertTlv,
  type TcpOption,
} from '../../protocols/convert/index.js';
import { openUpstream } from './connector.js';
import { FrontReader } from './fronts/reader.js';
import type { ConnectRequest, Connector, Endpoint, Grant, ProxyIo, UpstreamOptions } from './types.js';

/**
 * RFC 8803 Convert client (cell side): reaches the server through a concentrator.
 *
 *   1. MPTCP socket to the concentrator, from the uplink addresses the listener's upstream
 *      options name (the kernel path manager adds the other subflows).
 *   2. Convert message (Connect [+ Cookie]) followed by the client's early bytes, written before
 *      connect() completes: with `fastOpen` (TCP_FASTOPEN_CONNECT) they ride in the SYN (0-RTT).
 *   3. 0-RTT data: once connected, whatever the client sends (req.clientSocket) goes on to the
 *      converter at once, behind the Convert message, without waiting for the reply (at most
 *      MAX_UNANSWERED_BYTES; then the client waits). RFC 8803 section 3: the converter keeps it
 *      for the server, which it reaches only after the message; the reply comes back in front of
 *      the server's bytes.
 *   4. Meanwhile the converter's reply is read off the downstream: an Error TLV becomes
 *      DC_CONVERT_PEER_ERROR (origin 'peer', detail.convertError), which the engine turns into a
 *      reset toward the N-UE (or selection into the next candidate); anything else (Extended TCP
 *      Header, Supported TCP Extensions) means go. On any failure the bytes sent ahead are put
 *      back in front of the client's stream, so the next attempt sends them again, once.
 *   5. Bytes the server sent with the reply (same segment, even with a FIN) are put back in
 *      front of the downstream: the relay hands them to the client first, untouched.
 *   6. Resource Exceeded / Network Failure carry the delay the converter asks for before any new
 *      connection through it (RFC 8803 4.2.8; 0 = at least 30 s): until then connect() fails at
 *      once with DC_CONVERT_BACKOFF instead of soliciting the converter again.
 *   7. With `askGrant` the Connect carries the duocell grant request (a Private Use TLV only a
 *      duocell concentrator understands) and the grant it answers is on the result.
 */

const log = logger('duocell:proxy:convert-client');

export interface ConvertClientOptions {
  /** The concentrator's Convert service (numeric address). A function lets policy choose per target. */
  concentrator: Endpoint | ((req: ConnectRequest) => Endpoint);
  /** Cookie TLV to present (as configured for this cell). */
  cookie?: string | Buffer;
  /** TCP options to ask the converter to use toward the server (kind, optional value). */
  tcpOptions?: TcpOption[];
  /**
   * Send the Convert message in the SYN (TCP_FASTOPEN_CONNECT): 0-RTT. Default false: on
   * kernel 6.18 an MPTCP connection opened this way falls back to plain TCP when the listener
   * does not take the SYN data, and runs several times slower when it does (docs/convert.md).
   */
  fastOpen?: boolean;
  /** Open MPTCP toward the concentrator. Default true. */
  mptcp?: boolean;
  /** Time allowed for the converter's reply after connect (default 10 s). */
  replyTimeoutMs?: number;
  /**
   * Ask a duocell concentrator for the resource policy granted to each session (Private Use TLV
   * 0xD0, docs/convert.md). Only for duocell concentrators: an independent converter answers an
   * unknown TLV with Unsupported Message. Default false.
   */
  askGrant?: boolean;
  /** Clock for the retry back-off (tests). */
  now?: () => number;
}

/** What convertConnector().connect() resolves to: the socket, and the grant when one came. */
export interface ConvertConnectResult {
  socket: net.Socket;
  serverMptcp: boolean;
  /** Always true: the peer is the converter. */
  converter: true;
  grant?: Grant;
}

export interface ConvertConnector extends Connector {
  connect(req: ConnectRequest): Promise<ConvertConnectResult>;
  /** Epoch ms until which the converter asked not to be solicited (0: none). */
  readonly backoffUntil: number;
}

/** RFC 8803 4.2.8: a delay of 0 in Resource Exceeded / Network Failure means "at least 30 s". */
export const DEFAULT_RETRY_SECONDS = 30;

async function numeric(host: string, signal: AbortSignal): Promise<string> {
  if (parseIPv4(host) !== undefined || parseIPv6(host) !== undefined) return host;
  try {
    const r = await dns.lookup(host, { verbatim: true });
    if (signal.aborted) throw new DuocellError('DC_ABORTED', 'client went away during name resolution');
    return r.address;
  } catch (e) {
    if (e instanceof DuocellError) throw e;
    throw new DuocellError('DC_PROXY_CONNECT_FAILED', `cannot resolve ${host}: ${(e as Error).message}`, {
      cause: e,
      origin: 'peer',
      unreachable: true,
    });
  }
}

/** Client bytes sent to the converter ahead of its reply, at most (then the client waits for it). */
export const MAX_UNANSWERED_BYTES = 64 * 1024;

const EMPTY: Buffer = Buffer.alloc(0);

/**
 * Per-connection stamps for tracing the Convert exchange (docs/convert.md, "Where the time
 * goes"): published on this diagnostics channel only while someone subscribes, so the data path
 * pays nothing otherwise. Message: { id, stage, t } with `t` from performance.now().
 */
export const CONVERT_TRACE_CHANNEL = 'duocell:convert-client';
const trace = diagnostics.channel(CONVERT_TRACE_CHANNEL);
let traceSeq = 0;
export type ConvertTraceStage = 'start' | 'connected' | 'first-up' | 'reply' | 'refused';
function stamp(id: number, stage: ConvertTraceStage, extra?: Record<string, unknown>): void {
  if (trace.hasSubscribers) trace.publish({ id, stage, t: performance.now(), ...extra });
}

/**
 * Read the converter's reply. The socket is read in paused mode, taking exactly what is buffered
 * (read(readableLength)), so the stream's end is never consumed here: the bytes behind the reply
 * (the server's first bytes, even with its FIN in the same segment) can always be put back in
 * front of the stream for the relay.
 */
export function readReplyMessage(socket: net.Socket, timeoutMs: number, signal: AbortSignal): Promise<{ msg: ConvertMessage; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = EMPTY;
    let settled = false;
    const finish = (f: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeListener('readable', onReadable);
      socket.removeListener('end', onEnd);
      socket.removeListener('close', onEnd);
      socket.removeListener('error', onError);
      signal.removeEventListener('abort', onAbort);
      socket.pause();
      f();
    };
    const truncated = (why: string, extra: Record<string, unknown> = {}): DuocellError =>
      new DuocellError('DC_CONVERT_TRUNCATED', `${why} with ${buf.length} bytes of the converter's reply`, { origin: 'local', received: buf.length, ...extra });
    const onReadable = (): void => {
      while (!settled && socket.readableLength > 0) {
        const d = socket.read(socket.readableLength) as Buffer | null;
        if (d === null) break;
        buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
        let r: ReturnType<typeof parseConvertMessage>;
        try {
          r = parseConvertMessage(buf);
        } catch (e) {
          finish(() => reject(e));
          return;
        }
        if (!('need' in r)) {
          const { message, consumed } = r;
          finish(() => resolve({ msg: message, rest: buf.subarray(consumed) }));
          return;
        }
      }
      // Nothing buffered: read(0) lets a pending end of stream be seen ('end'), or asks for more.
      if (!settled) socket.read(0);
    };
    const onEnd = (): void => finish(() => reject(truncated('the converter closed')));
    const onError = (e: NodeJS.ErrnoException): void =>
      finish(() =>
        reject(
          new DuocellError('DC_CONVERT_TRUNCATED', `socket failed while reading the converter's reply: ${e.message}`, {
            origin: 'kernel',
            cause: e,
            ...(typeof e.code === 'string' ? { sysCode: e.code } : {}),
            ...(typeof e.errno === 'number' ? { errno: Math.abs(e.errno) } : {}),
          }),
        ),
      );
    const onAbort = (): void => finish(() => reject(new DuocellError('DC_ABORTED', 'client went away while the converter answered')));
    const timer = setTimeout(() => finish(() => reject(truncated(`timed out after ${timeoutMs} ms`))), timeoutMs);
    socket.on('readable', onReadable);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.once('error', onError);
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) onAbort();
    else onReadable();
  });
}

/** The reply as the session sees it: the grant, or the converter's Error TLV as DC_CONVERT_PEER_ERROR. */
export function checkReply(msg: ConvertMessage): { grant?: Grant } {
  const res = validateResponse(msg);
  if (res.error !== undefined) {
    const code = res.error.code;
    const delay = code === ConvertErrorCode.RESOURCE_EXCEEDED || code === ConvertErrorCode.NETWORK_FAILURE ? res.error.value[0] ?? 0 : undefined;
    throw new DuocellError('DC_CONVERT_PEER_ERROR', `converter refused: ${res.error.name} (${code})`, {
      origin: 'peer',
      convertError: code,
      value: res.error.value.toString('hex'),
      ...(code === ConvertErrorCode.DESTINATION_UNREACHABLE ? { icmpCode: res.error.value[0] } : {}),
      ...(delay === undefined ? {} : { retryAfterSeconds: delay === 0 ? DEFAULT_RETRY_SECONDS : delay }),
    });
  }
  return res.grant === undefined ? {} : { grant: res.grant };
}

/**
 * 0-RTT (RFC 8803 section 3): while the converter's reply is outstanding, the client's bytes go
 * to the converter at once, behind the Convert message, up to `limit` bytes. Reading starts
 * before the connection to the converter is opened: what the client already sent by then
 * (take()) goes out with the Convert message, in the SYN with TFO (0-RTT proper: otherwise the
 * client's first bytes wait a round trip for the handshake, docs/convert.md "RTT accounting");
 * once connected (to(upstream)) the rest follows as it comes. Read in paused mode (exactly what
 * is buffered), so the client's end of stream is left for the relay. stop() pauses the client
 * and returns everything taken from it, which a refusal puts back in front of the client's
 * stream (client.unshift) for the next attempt or candidate: nothing is lost.
 */
export function forwardAhead(client: net.Socket, limit: number, onFirst: () => void): { settled(): Promise<void>; take(): Buffer; to(upstream: net.Socket): void; stop(): Buffer } {
  const sent: Buffer[] = [];
  let bytes = 0;
  /** Taken from the client, not yet handed on (before the connection to the converter). */
  let held: Buffer[] = [];
  let upstream: net.Socket | undefined;
  const pump = (): void => {
    while (bytes < limit && client.readableLength > 0) {
      const d = client.read(Math.min(client.readableLength, limit - bytes)) as Buffer | null;
      if (d === null) break;
      sent.push(d);
      bytes += d.length;
      if (upstream === undefined) held.push(d);
      else {
        if (bytes === d.length) onFirst();
        upstream.write(d);
      }
    }
  };
  client.on('readable', pump);
  pump();
  const concat = (a: Buffer[]): Buffer => (a.length === 0 ? EMPTY : a.length === 1 ? a[0]! : Buffer.concat(a));
  return {
    /**
     * Resolves once the bytes already in the kernel's receive queue have been read: reading
     * starts with the 'readable' listener (its read(0) on the next tick); the next poll phase
     * reads what is queued and the second check phase comes after it. Nothing waits for bytes
     * that are not there yet (a server that speaks first loses two event-loop turns, no time).
     */
    settled(): Promise<void> {
      if (client.readableLength > 0 || client.destroyed) return Promise.resolve();
      return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
    },
    take(): Buffer {
      const b = concat(held);
      held = [];
      if (b.length > 0) onFirst();
      return b;
    },
    to(u: net.Socket): void {
      upstream = u;
      const b = concat(held);
      held = [];
      if (b.length > 0) {
        if (bytes === b.length) onFirst();
        u.write(b);
      }
      pump();
    },
    stop(): Buffer {
      client.removeListener('readable', pump);
      client.pause();
      return concat(sent);
    },
  };
}

export function convertConnector(o: ConvertClientOptions): ConvertConnector {
  const cookie = o.cookie === undefined ? undefined : typeof o.cookie === 'string' ? Buffer.from(o.cookie, 'utf8') : o.cookie;
  const now = o.now ?? Date.now;
  /** Per concentrator ("address:port"): epoch ms before which it must not be solicited. */
  const backoff = new Map<string, number>();
  let lastUntil = 0;
  return {
    name: 'convert',
    get backoffUntil() {
      return lastUntil > now() ? lastUntil : 0;
    },
    async connect(req) {
      const conc = typeof o.concentrator === 'function' ? o.concentrator(req) : o.concentrator;
      const key = `${conc.address}|${conc.port}`;
      const until = backoff.get(key);
      if (until !== undefined) {
        if (until > now()) {
          throw new DuocellError('DC_CONVERT_BACKOFF', `the converter ${conc.address}:${conc.port} asked to wait ${Math.ceil((until - now()) / 1000)} s more`, {
            origin: 'local',
            retryAt: new Date(until).toISOString(),
          });
        }
        backoff.delete(key);
      }
      const address = await numeric(req.target.host, req.signal);
      const tlvs: ConvertTlv[] = [{ type: 'connect', address, port: req.target.port, tcpOptions: o.tcpOptions ?? [] }];
      if (cookie !== undefined) tlvs.push({ type: 'cookie', cookie });
      if (o.askGrant === true) tlvs.push({ type: 'grant-request' });
      const hello = encodeConvertMessage(tlvs);
      const id = ++traceSeq;
      stamp(id, 'start');
      const client = req.clientSocket;
      const ahead = client === undefined || client.destroyed ? undefined : forwardAhead(client, MAX_UNANSWERED_BYTES, () => stamp(id, 'first-up'));
      let grant: Grant | undefined;
      let rest: Buffer;
      let socket: net.Socket | undefined;
      let serverMptcp = false;
      try {
        // The client's bytes already here ride with the Convert message: in the SYN with TFO.
        await ahead?.settled();
        const queued = ahead?.take() ?? EMPTY;
        const parts = [hello, ...(req.early === undefined ? [] : [req.early]), ...(queued.length > 0 ? [queued] : [])];
        ({ socket, serverMptcp } = await openUpstream({
          target: { host: conc.address, port: conc.port },
          early: parts.length === 1 ? hello : Buffer.concat(parts),
          options: { ...req.options, mptcp: o.mptcp ?? true, fastOpen: o.fastOpen ?? false },
          signal: req.signal,
          io: req.io,
        }));
        stamp(id, 'connected');
        // The Convert message and the client's bytes behind it must not wait for ACKs (Nagle).
        socket.setNoDelay(true);
        ahead?.to(socket);
        const r = await readReplyMessage(socket, o.replyTimeoutMs ?? 10_000, req.signal);
        rest = r.rest;
        ({ grant } = checkReply(r.msg));
        stamp(id, 'reply', { rest: rest.length });
      } catch (e) {
        // Put what the client sent ahead back in front of its stream: another attempt (the next
        // candidate) sends it again, a refused session loses nothing it had not already lost.
        const sent = ahead?.stop();
        if (sent !== undefined && sent.length > 0 && client !== undefined && !client.destroyed) client.unshift(sent);
        // The converter said no (or never said anything): reset our side, report with the code.
        if (socket !== undefined && !socket.destroyed) socket.resetAndDestroy();
        const err0 = e instanceof DuocellError ? e : new DuocellError('DC_CONVERT_TRUNCATED', String(e), { cause: e });
        const err = req.signal.aborted && err0.code !== 'DC_ABORTED' ? new DuocellError('DC_ABORTED', 'client went away while the converter answered', { cause: err0 }) : err0;
        stamp(id, 'refused', { code: err.code, ahead: sent?.length ?? 0 });
        if (typeof err.detail.retryAfterSeconds === 'number') {
          lastUntil = now() + err.detail.retryAfterSeconds * 1000;
          backoff.set(key, lastUntil);
          log.warn({ concentrator: conc, convertError: err.detail.convertError, seconds: err.detail.retryAfterSeconds }, 'the converter asked to wait before new connections');
        }
        log.debug({ code: err.code, convertError: err.detail.convertError, target: req.target, concentrator: conc, ahead: sent?.length ?? 0 }, 'convert refused');
        throw err;
      }
      ahead?.stop();
      // The server's bytes that came with the reply go first to the client (the relay drains them).
      if (rest.length > 0) socket.unshift(rest);
      // Errors from here on are the relay's; never let one go unheard between hand-over and relay.
      socket.on('error', () => undefined);
      log.debug({ target: req.target, concentrator: conc, mptcp: serverMptcp, grant }, 'converted');
      return { socket, serverMptcp, converter: true, ...(grant === undefined ? {} : { grant }) };
    },
  };
}

export { convertErrorName };

/**
 * The Convert connector of a board listener whose `options` name a concentrator:
 *   { "concentrator": "203.0.113.10:5124", "cookie": "…", "fastOpen": false, "replyTimeoutMs": 10000,
 *     "askGrant": false }
 * `cookieHex` instead of `cookie` gives the cookie as hex bytes (one the subscriber store issued:
 * `duocell subscribers cookie NAME`).
 * undefined when there is no `concentrator` (the listener then connects directly).
 */
export function convertConnectorFromOptions(options: Readonly<Record<string, unknown>> | undefined): Connector | undefined {
  if (options?.concentrator === undefined) return undefined;
  checkListenerOptions('connectorOptions', options, 'convert client options');
  const o = options as { concentrator: string; cookie?: string; cookieHex?: string; fastOpen?: boolean; askGrant?: boolean; replyTimeoutMs?: number };
  const fail = (msg: string): never => {
    throw new DuocellError('DC_CONFIG_INVALID', `convert client options: ${msg}`);
  };
  const hp = parseHostPort(o.concentrator);
  if (hp === undefined || (parseIPv4(hp.host) === undefined && parseIPv6(hp.host) === undefined) || hp.port < 1) {
    fail(`concentrator ${JSON.stringify(o.concentrator)} is not a numeric "address:port"`);
  }
  if (o.cookie !== undefined && o.cookieHex !== undefined) fail('cookie and cookieHex together');
  const rt = o.replyTimeoutMs;
  return convertConnector({
    concentrator: { address: hp!.host, port: hp!.port },
    ...(typeof o.cookie === 'string' ? { cookie: o.cookie } : {}),
    ...(typeof o.cookieHex === 'string' ? { cookie: Buffer.from(o.cookieHex, 'hex') } : {}),
    ...(typeof o.fastOpen === 'boolean' ? { fastOpen: o.fastOpen } : {}),
    ...(o.askGrant === true ? { askGrant: true } : {}),
    ...(typeof rt === 'number' ? { replyTimeoutMs: rt } : {}),
  });
}

/**
 * Probe a concentrator with the RFC 8803 Info exchange: open a connection as a session would,
 * send an Info TLV (with the cell's cookie), read the Supported TCP Extensions reply. Resolves
 * with the time from the connection being up to the whole reply (about one RTT), in ms; rejects
 * when it cannot connect, answers an Error TLV or nothing.
 */
export async function probeConvert(
  conc: Endpoint,
  o: { cookie?: Buffer; options: UpstreamOptions; signal: AbortSignal; timeoutMs?: number; io: ProxyIo },
): Promise<number> {
  const tlvs: ConvertTlv[] = [{ type: 'info' }];
  if (o.cookie !== undefined) tlvs.push({ type: 'cookie', cookie: o.cookie });
  const timeoutMs = o.timeoutMs ?? 1000;
  const { socket } = await openUpstream({
    target: { host: conc.address, port: conc.port },
    options: { ...o.options, mptcp: o.options.mptcp, fastOpen: false, connectTimeoutMs: timeoutMs },
    signal: o.signal,
    io: o.io,
  });
  socket.on('error', () => undefined);
  try {
    const t0 = performance.now();
    socket.write(encodeConvertMessage(tlvs));
    const reader = new FrontReader(socket, 0);
    const onAbort = (): void => {
      socket.destroy();
    };
    o.signal.addEventListener('abort', onAbort, { once: true });
    try {
      const msg = await reader.next(
        (b) => {
          const r = parseConvertMessage(b);
          return 'need' in r ? r : { value: r.message, consumed: r.consumed };
        },
        "the converter's Info reply",
        timeoutMs,
        'DC_CONVERT_TRUNCATED',
      );
      const res = validateResponse(msg);
      if (res.error !== undefined) throw new DuocellError('DC_CONVERT_PEER_ERROR', `converter refused the probe: ${res.error.name} (${res.error.code})`, { origin: 'peer', convertError: res.error.code });
      return performance.now() - t0;
    } finally {
      o.signal.removeEventListener('abort', onAbort);
      reader.detach();
    }
  } finally {
    socket.destroy();
  }
}

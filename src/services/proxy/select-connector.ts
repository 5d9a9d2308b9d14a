import { DuocellError, toDuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import { ipFamily, unmapV4 } from '../../core/net.js';
import { openUpstream } from './connector.js';
import { convertConnector, type ConvertClientOptions } from './convert-client.js';
import type { Candidate, Choice, ProxySelector, SelectRequest } from './selection.js';
import { socks5Connector, type Socks5ClientOptions } from './socks5-client.js';
import type { ConnectRequest, Connector, Endpoint, Placement, Target, UpstreamOptions } from './types.js';

/**
 * The connector of a cell's listener when it has candidate proxies: asks the selector for the
 * candidate of each new session, reaches the server through it (off-path: the Convert or the
 * SOCKS5 client to that proxy, by the candidate's `protocol`; on-path: the cell itself,
 * directly), and tells the selector how it went.
 *
 *   choose ──► connect via candidate ──ok──► session (counted on the candidate until it closes)
 *                     │ failed (no connection, no reply, back-off)
 *                     ▼
 *              mark a failed session, choose again without it (at most `maxTries` candidates)
 *
 * A refusal the proxy answered about the server is the session's, not the candidate's: it is not
 * retried elsewhere and counts as a sign of life (Convert: an Error TLV other than Resource
 * Exceeded / Network Failure; SOCKS5: replies 02–06). A SOCKS5 proxy that fails itself (reply
 * 01 or 07, no acceptable method, refused credentials, no or garbled reply) fails the attempt
 * like a dead one; reply 08 (address type) sends the session on without counting. Nothing has been
 * relayed to the client before connect() resolves, so a retry never repeats or loses a byte
 * toward the client: the same early bytes go to the next candidate. The Convert client sends the
 * client's bytes ahead of the converter's reply (0-RTT) and puts them back in front of the
 * client's stream when an attempt fails, so the next candidate gets them once, in order. A
 * converter that refuses with an Error TLV has not reached the server (RFC 8803: the error
 * replaces the connection), so no server sees them twice; one that accepted, relayed them and
 * then said nothing before the reply timer (10 s) may have, and the next candidate's server
 * sees them again: the price of 0-RTT, as with the early bytes of a SYN. With no eligible
 * candidate the listener's own connector (`fallback`) applies.
 *
 * The fast path (fast.ts) asks place() instead, per accepted connection: the same choice and
 * attempts as connect(). An on-path candidate (or a direct fallback) is `direct`: the fast path
 * connects it in the relay thread and reports back (connected, ended, failed); a failure with
 * another candidate behind it, like an off-path choice, goes on in connect() from that state
 * (`placed`), on the JS path, with the same client socket.
 */

const log = logger('duocell:proxy:select');

export interface SelectingOptions {
  selector: ProxySelector;
  /** When no candidate is eligible. */
  fallback: Connector;
  /** The subscriber policy in force for a client (null: none). */
  policyOf?: (client: Endpoint | undefined, subscriber: string | undefined) => string | null;
  /** Convert client settings shared by every concentrator (cookie, grant, reply timeout). */
  convert?: Omit<ConvertClientOptions, 'concentrator'>;
  /** SOCKS5 client settings shared by every SOCKS5 candidate (handshake timeout). */
  socks5?: Omit<Socks5ClientOptions, 'proxy' | 'auth'>;
  /** Candidates tried per session (default 3). */
  maxTries?: number;
  /** Connect timeout of an attempt that has a next candidate behind it (default 3000 ms). */
  attemptTimeoutMs?: number;
}

const viaKey = Symbol('via');
type ViaRequest = ConnectRequest & { [viaKey]?: Candidate };

/** What a failed attempt says about the candidate (see the header). */
export function attemptVerdict(err: DuocellError): 'session' | 'candidate' | 'elsewhere' {
  if (err.code === 'DC_CONVERT_PEER_ERROR') return err.detail.retryAfterSeconds === undefined ? 'session' : 'candidate';
  const o = err.detail.outcome;
  return o === 'session' || o === 'elsewhere' ? o : 'candidate';
}

function chosen(req: ConnectRequest): Candidate {
  const c = (req as ViaRequest)[viaKey];
  if (c === undefined) throw new DuocellError('DC_INTERNAL', 'selecting connector: no proxy chosen');
  return c;
}

/** One session's attempts so far: shared by place() and connect() (the fast path's `placed`). */
class Attempts {
  readonly tried = new Set<string>();
  i = 0;
  last: DuocellError | undefined;
  /** A choice already made (by place()): the next attempt takes it. */
  next: Choice | undefined;
}

export function selectingConnector(o: SelectingOptions): Connector {
  const conv = convertConnector({
    ...(o.convert ?? {}),
    concentrator: (req) => chosen(req),
  });
  const socks = socks5Connector({
    ...(o.socks5 ?? {}),
    proxy: (req) => chosen(req),
    auth: (req) => {
      const a = chosen(req).auth;
      return a?.password === undefined ? undefined : { username: a.username, password: a.password };
    },
  });
  const maxTries = o.maxTries ?? 3;
  const ask = (r: { target: Target; client?: Endpoint; subscriber?: string; sni?: string }): SelectRequest => ({
    policy: o.policyOf?.(r.client, r.subscriber) ?? null,
    address: unmapV4(r.target.host),
    port: r.target.port,
    ...(r.sni === undefined ? {} : { sni: r.sni }),
  });
  /** The next attempt's candidate and options (a shorter connect timeout when another follows); undefined: none left. */
  const nextAttempt = (q: SelectRequest, st: Attempts, options: UpstreamOptions): { c: Candidate; more: boolean; options: UpstreamOptions } | undefined => {
    if (st.i >= maxTries) return undefined;
    const choice = st.next ?? o.selector.choose(q, st.tried);
    st.next = undefined;
    if (choice === undefined) return undefined;
    const c = choice.candidate;
    st.tried.add(c.name);
    const more = st.i + 1 < maxTries && o.selector.choose(q, st.tried) !== undefined;
    return { c, more, options: more ? { ...options, connectTimeoutMs: Math.min(options.connectTimeoutMs ?? 10_000, o.attemptTimeoutMs ?? 3000) } : options };
  };
  /** An attempt failed (not aborted): the error to end the session with, or undefined to go on. */
  const failedOn = (c: Candidate, err: DuocellError, st: Attempts, target: Target): DuocellError | undefined => {
    const verdict = attemptVerdict(err);
    if (verdict === 'session') {
      o.selector.sessionResult(c.name, true); // it is alive: the refusal is about the server
      return err;
    }
    if (verdict === 'candidate') o.selector.sessionResult(c.name, false, `${err.code}: ${err.message}`);
    log.debug({ code: err.code, proxy: c.name, target, attempt: st.i + 1 }, 'candidate failed: trying the next');
    st.last = err;
    st.i++;
    return undefined;
  };
  const succeeded = (c: Candidate): void => {
    o.selector.sessionResult(c.name, true);
    o.selector.began(c.name);
  };
  const viaFallback = (options: UpstreamOptions): Placement =>
    o.fallback.name === 'direct'
      ? { direct: true, options, more: false, connected: () => undefined, ended: () => undefined, failed: () => undefined }
      : { direct: false, resume: undefined };
  return {
    name: 'select',
    async connect(req) {
      const placed = req.placed instanceof Attempts ? req.placed : undefined;
      const host = unmapV4(req.target.host);
      if (placed === undefined && (ipFamily(host) === 0 || o.selector.size === 0)) return o.fallback.connect(req);
      const st = placed ?? new Attempts();
      const q = ask(req);
      for (;;) {
        const a = nextAttempt(q, st, req.options);
        if (a === undefined) break;
        const { c, options } = a;
        try {
          const via = Object.assign({ ...req, options }, { [viaKey]: c }) as ViaRequest;
          const r = c.type === 'on-path' ? await openUpstream({ ...req, options }) : c.protocol === 'socks5' ? await socks.connect(via) : await conv.connect(via);
          succeeded(c);
          r.socket.once('close', () => o.selector.ended(c.name));
          return { ...r, via: c.name };
        } catch (e) {
          const err = toDuocellError(e, 'DC_PROXY_CONNECT_FAILED');
          if (req.signal.aborted || err.code === 'DC_ABORTED') throw err;
          const end = failedOn(c, err, st, req.target);
          if (end !== undefined) throw end;
        }
      }
      if (st.last !== undefined) throw st.last;
      return o.fallback.connect(req);
    },
    place(req) {
      if (ipFamily(unmapV4(req.target.host)) === 0 || o.selector.size === 0) return viaFallback(req.options);
      const q = ask(req);
      const st = new Attempts();
      st.next = o.selector.choose(q, st.tried);
      if (st.next === undefined) return viaFallback(req.options);
      if (st.next.candidate.type !== 'on-path') return { direct: false, resume: st };
      const a = nextAttempt(q, st, req.options)!;
      return {
        direct: true,
        via: a.c.name,
        options: a.options,
        more: a.more,
        connected: () => succeeded(a.c),
        ended: () => o.selector.ended(a.c.name),
        failed: (err) => {
          if (err.code === 'DC_ABORTED') return undefined;
          if (failedOn(a.c, err, st, req.target) !== undefined) return undefined;
          // No candidate left: connect() would end the session with this error too.
          return a.more ? { resume: st } : undefined;
        },
      };
    },
  };
}

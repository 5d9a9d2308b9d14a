import { DuocellError, toDuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import { ipFamily, unmapV4 } from '../../core/net.js';
import { openUpstream } from './connector.js';
import { convertConnector, type ConvertClientOptions } from './convert-client.js';
import type { Candidate, ProxySelector } from './selection.js';
import { socks5Connector, type Socks5ClientOptions } from './socks5-client.js';
import type { ConnectRequest, Connector, Endpoint } from './types.js';

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
 * relayed to the client before connect() resolves, so a retry never repeats or loses a byte:
 * the same early bytes go to the next candidate. With no eligible candidate the listener's own
 * connector (`fallback`) applies.
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
  return {
    name: 'select',
    async connect(req) {
      const host = unmapV4(req.target.host);
      if (ipFamily(host) === 0 || o.selector.size === 0) return o.fallback.connect(req);
      const policy = o.policyOf?.(req.client, req.subscriber) ?? null;
      const sni = req.sni === undefined ? {} : { sni: req.sni };
      const tried = new Set<string>();
      let last: DuocellError | undefined;
      for (let i = 0; i < maxTries; i++) {
        const choice = o.selector.choose({ policy, address: host, port: req.target.port, ...sni }, tried);
        if (choice === undefined) break;
        const c = choice.candidate;
        tried.add(c.name);
        const more = i + 1 < maxTries && o.selector.choose({ policy, address: host, port: req.target.port, ...sni }, tried) !== undefined;
        const options = more ? { ...req.options, connectTimeoutMs: Math.min(req.options.connectTimeoutMs ?? 10_000, o.attemptTimeoutMs ?? 3000) } : req.options;
        try {
          const via = Object.assign({ ...req, options }, { [viaKey]: c }) as ViaRequest;
          const r = c.type === 'on-path' ? await openUpstream({ ...req, options }) : c.protocol === 'socks5' ? await socks.connect(via) : await conv.connect(via);
          o.selector.sessionResult(c.name, true);
          o.selector.began(c.name);
          r.socket.once('close', () => o.selector.ended(c.name));
          return { ...r, via: c.name };
        } catch (e) {
          const err = toDuocellError(e, 'DC_PROXY_CONNECT_FAILED');
          if (req.signal.aborted || err.code === 'DC_ABORTED') throw err;
          const verdict = attemptVerdict(err);
          if (verdict === 'session') {
            o.selector.sessionResult(c.name, true); // it is alive: the refusal is about the server
            throw err;
          }
          if (verdict === 'candidate') o.selector.sessionResult(c.name, false, `${err.code}: ${err.message}`);
          log.debug({ code: err.code, proxy: c.name, target: req.target, attempt: i + 1 }, 'candidate failed: trying the next');
          last = err;
        }
      }
      if (last !== undefined) throw last;
      return o.fallback.connect(req);
    },
  };
}

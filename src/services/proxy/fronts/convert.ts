import type net from 'node:net';
import { createHash } from 'node:crypto';
import { checkListenerOptions } from '../../../core/board.js';
import { DuocellError, type ErrorCode } from '../../../core/errors.js';
import { logger } from '../../../core/logger.js';
import {
  ConvertErrorCode,
  TCP_OPT_FASTOPEN,
  TCP_OPT_MPTCP,
  TCP_OPT_MSS,
  TCP_OPT_SACK_PERM,
  TCP_OPT_TIMESTAMPS,
  TCP_OPT_WSCALE,
  convertFault,
  encodeConvertError,
  encodeConvertMessage,
  parseConvertMessage,
  validateRequest,
  type ConvertTlv,
} from '../../../protocols/convert/index.js';
import type { FrontInfo, FrontProtocol, FrontRequest, Target } from '../types.js';
import { FrontReader, drain } from './reader.js';

const log = logger('duocell:proxy:convert');

// ───────────────────────────── the Convert front ─────────────────────────────

/**
 * RFC 8803 Transport Converter (concentrator side).
 *
 *   client SYN [+TFO data]: Convert msg (Connect [+Cookie] [+Info]) [+ application bytes]
 *     │ accept(): parse (version → magic → lengths → TLVs) → role check → cookie → TCP options → target
 *     │           fault → answer() writes header + Error TLV (code per RFC 8803 4.2.8) and closes
 *     ▼
 *   engine connects upstream (application bytes go first, in the SYN with TFO)
 *     │ answer(ok): header + Extended TCP Header TLV [+ Supported TCP Extensions if Info asked]
 *     │             written as soon as the upstream connection is up, before any relayed byte
 *     │ answer(fail): header + Error TLV (Connection Reset / Destination Unreachable / ...)
 *     ▼
 *   relay
 *
 * Never an open proxy: without a valid Cookie TLV nothing is relayed, unless the operator set
 * allowWithoutCookie for a trusted network.
 */

export interface ConvertCookie {
  /** The opaque value as configured (trailing zero bytes are padding on the wire and ignored). */
  cookie: string | Buffer;
  /** Who presents it (a cell, a subscriber): shown on the session. */
  subscriber?: string;
}

export interface ConvertFrontOptions {
  /** Cookies that authorise a client. */
  cookies?: readonly ConvertCookie[];
  /** Or ask someone (the subscriber store): the owner of this cookie, undefined when invalid. */
  verifyCookie?: (cookie: Buffer, info: FrontInfo) => string | undefined | Promise<string | undefined>;
  /** Relay for clients that send no Cookie TLV (trusted networks only). Default false. */
  allowWithoutCookie?: boolean;
  /** A further target policy: return false to answer Not Authorized. */
  allowTarget?: (target: Target, info: FrontInfo) => boolean;
  /** Time allowed for the whole Convert message to arrive (default 5 s). */
  requestTimeoutMs?: number;
  /**
   * Suggested retry delay in Resource Exceeded / Network Failure errors caused by the converter
   * as a whole (s; 0 = RFC default ≥ 30 s). Faults of one request only say 1 s.
   */
  retryAfterSeconds?: number;
  /** The upstream leg speaks MPTCP (kind 30 may then be asked for in a Connect TLV). */
  upstreamMptcp?: boolean;
  /**
   * Error messages are rate-limited (RFC 8803 4.2.4 SHOULD): at most `burst` at once, refilled at
   * `perSecond`. Past it, a refused client is closed without an Error TLV. Default 100/s, burst 200.
   */
  errorRate?: { perSecond: number; burst: number };
}

/** A token bucket: take() is false when empty. */
class Bucket {
  #tokens: number;
  #at = Date.now();
  constructor(
    readonly perSecond: number,
    readonly burst: number,
  ) {
    this.#tokens = burst;
  }
  take(): boolean {
    const now = Date.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) / 1000) * this.perSecond);
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

/**
 * TCP options in a Connect TLV (RFC 8803 section 5):
 * - MSS (2), window scale (3) and SACK (5) are properties of our own stack: ignored, value or not;
 * - SACK-permitted (4), timestamps (8) and TFO (34) may be asked for without a value: the kernel
 *   puts them in our SYN to the server anyway (TFO when the listener's upstream has fastOpen);
 * - anything else, or one of those with a value (which would have to be copied verbatim into our
 *   SYN, and the socket API cannot do that), is answered with Unsupported TCP Option.
 */
const IGNORED_OPTIONS: ReadonlySet<number> = new Set([TCP_OPT_MSS, TCP_OPT_WSCALE, 5]);
const KERNEL_OPTIONS: readonly number[] = [TCP_OPT_SACK_PERM, TCP_OPT_TIMESTAMPS, TCP_OPT_FASTOPEN];

/** Trailing zero bytes are padding on the wire; compare cookies without them, in constant time. */
function cookieKey(c: string | Buffer): Buffer {
  const b = typeof c === 'string' ? Buffer.from(c, 'utf8') : c;
  let end = b.length;
  while (end > 0 && b[end - 1] === 0) end--;
  return createHash('sha256').update(b.subarray(0, end)).digest();
}

/**
 * Seconds a client is asked to wait after a Resource Exceeded / Network Failure that concerns
 * this one request only (a subscriber's limit, one server not answering). RFC 8803 4.2.8 makes
 * the delay apply to every new connection through the converter, and a value of 0 means "at
 * least 30 s": so 0 is kept for converter-wide trouble (out of descriptors, draining) and these
 * get the shortest delay the field can say.
 */
export const PER_REQUEST_RETRY_SECONDS = 1;

/**
 * Which Convert Error TLV answers a failure, and its value (RFC 8803 4.2.8): the ICMP code for
 * Destination Unreachable; for Resource Exceeded and Network Failure `delaySeconds` when the
 * fault concerns this request only (else the converter's configured delay applies).
 */
export function convertErrorFor(err: DuocellError): { code: number; icmpCode?: number; delaySeconds?: number } | undefined {
  if (typeof err.detail.convertError === 'number') return { code: err.detail.convertError };
  const sys = typeof err.detail.sysCode === 'string' ? err.detail.sysCode : undefined;
  switch (err.code) {
    case 'DC_ABORTED':
      return undefined; // the client is gone: nobody to answer
    case 'DC_TARGET_FORBIDDEN':
      return { code: ConvertErrorCode.NOT_AUTHORIZED }; // refused by the converter's policy (administratively prohibited)
    case 'DC_TIMEOUT':
      return { code: ConvertErrorCode.MALFORMED_MESSAGE }; // the message never completed
    case 'DC_PROXY_EMFILE':
    case 'DC_PROXY_SHUTDOWN':
      return { code: ConvertErrorCode.RESOURCE_EXCEEDED };
    case 'DC_PROXY_CONNECT_TIMEOUT':
      return { code: ConvertErrorCode.NETWORK_FAILURE, delaySeconds: PER_REQUEST_RETRY_SECONDS };
    case 'DC_SOCKET_SYSCALL':
      return { code: ConvertErrorCode.RESOURCE_EXCEEDED };
    // A SOCKS5 candidate answered about the server (services/proxy/socks5-client.ts): say the same.
    case 'DC_SOCKS_PEER_REFUSED':
      return { code: ConvertErrorCode.CONNECTION_RESET };
    case 'DC_SOCKS_PEER_UNREACHABLE':
      return { code: ConvertErrorCode.DESTINATION_UNREACHABLE, icmpCode: err.detail.socksReply === 3 ? 0 : 1 };
    case 'DC_SOCKS_PEER_NOT_ALLOWED':
      return { code: ConvertErrorCode.DESTINATION_UNREACHABLE, icmpCode: 13 };
    case 'DC_PROXY_CONNECT_FAILED':
      switch (sys) {
        case 'ECONNREFUSED':
        case 'ECONNRESET':
          return { code: ConvertErrorCode.CONNECTION_RESET };
        case 'ENETUNREACH':
          return { code: ConvertErrorCode.DESTINATION_UNREACHABLE, icmpCode: 0 }; // net unreachable
        case 'EHOSTUNREACH':
        case 'EHOSTDOWN':
          return { code: ConvertErrorCode.DESTINATION_UNREACHABLE, icmpCode: 1 }; // host unreachable
        case 'EACCES':
        case 'EPERM':
          return { code: ConvertErrorCode.DESTINATION_UNREACHABLE, icmpCode: 13 }; // administratively prohibited
        case 'EADDRNOTAVAIL':
        case 'ENOBUFS':
        case 'ENOMEM':
        case 'EMFILE':
        case 'ENFILE':
          return { code: ConvertErrorCode.RESOURCE_EXCEEDED };
        default:
          return { code: ConvertErrorCode.NETWORK_FAILURE, delaySeconds: PER_REQUEST_RETRY_SECONDS };
      }
    default:
      // An admission policy said no: over a limit is Resource Exceeded, anything else Not Authorized.
      if (/LIMIT|QUOTA|RESOURCE|EXCEEDED/.test(err.code)) return { code: ConvertErrorCode.RESOURCE_EXCEEDED, delaySeconds: PER_REQUEST_RETRY_SECONDS };
      if (err.code.startsWith('DC_POLICY') || err.code.startsWith('DC_SUBSCRIBER')) return { code: ConvertErrorCode.NOT_AUTHORIZED };
      return { code: ConvertErrorCode.NETWORK_FAILURE };
  }
}

/** The received message for an echo: cut at its Total Length when that much is known. */
function messageBytes(received: Buffer): Buffer {
  if (received.length >= 2 && received[0] === 1 && received[1]! > 0) return received.subarray(0, received[1]! * 4);
  return received;
}

interface ClientState {
  reader: FrontReader;
  info: boolean;
  /** The client asked for the duocell grant extension. */
  grant: boolean;
}

export function convertFront(o: ConvertFrontOptions = {}): FrontProtocol {
  const keys = new Map<string, string | undefined>();
  for (const c of o.cookies ?? []) keys.set(cookieKey(c.cookie).toString('hex'), c.subscriber);
  const timeoutMs = o.requestTimeoutMs ?? 5000;
  const acceptedKinds = new Set<number>([...KERNEL_OPTIONS, ...(o.upstreamMptcp === true ? [TCP_OPT_MPTCP] : [])]);
  // Announced: what we convert (MPTCP on the client leg) and what clients may ask for.
  const announced = [TCP_OPT_MPTCP, ...[...acceptedKinds].filter((k) => k !== TCP_OPT_MPTCP)];
  const states = new WeakMap<net.Socket, ClientState>();
  const errors = new Bucket(o.errorRate?.perSecond ?? 100, o.errorRate?.burst ?? 200);
  let suppressed = 0;

  async function authorise(cookie: Buffer | undefined, info: FrontInfo): Promise<string | undefined> {
    if (cookie === undefined) {
      if (o.allowWithoutCookie === true) return undefined;
      throw convertFault(ConvertErrorCode.MISSING_COOKIE, 'this converter requires a Cookie TLV');
    }
    const k = cookieKey(cookie).toString('hex');
    if (keys.has(k)) return keys.get(k) ?? 'cookie';
    if (o.verifyCookie !== undefined) {
      let end = cookie.length;
      while (end > 0 && cookie[end - 1] === 0) end--;
      const who = await o.verifyCookie(cookie.subarray(0, end), info);
      if (who !== undefined) return who;
    }
    throw convertFault(ConvertErrorCode.NOT_AUTHORIZED, 'the Cookie TLV is not valid here');
  }

  return {
    name: 'convert',

    async accept(client, info): Promise<FrontRequest> {
      const reader = new FrontReader(client);
      const st: ClientState = { reader, info: false, grant: false };
      states.set(client, st);
      try {
        const msg = await reader.next(
          (b) => {
            const r = parseConvertMessage(b);
            return 'need' in r ? r : { value: r.message, consumed: r.consumed };
          },
          'the Convert message',
          timeoutMs,
          'DC_CONVERT_TRUNCATED',
          { convertError: ConvertErrorCode.MALFORMED_MESSAGE },
        );
        const req = validateRequest(msg);
        st.info = req.info;
        st.grant = req.grant === true;
        const subscriber = await authorise(req.cookie, info);
        if (req.connect === undefined) {
          // Info alone: say what we support, relay nothing.
          reader.detach();
          client.write(encodeConvertMessage([{ type: 'supported-tcp-extensions', kinds: announced }]));
          throw new DuocellError('DC_ABORTED', 'Info request answered', { answered: true });
        }
        const refused = req.connect.tcpOptions
          .filter((t) => !IGNORED_OPTIONS.has(t.kind) && (t.data.length > 0 || !acceptedKinds.has(t.kind)))
          .map((t) => t.kind);
        if (refused.length > 0) {
          throw convertFault(ConvertErrorCode.UNSUPPORTED_TCP_OPTION, `cannot use TCP options ${refused.join(', ')}`, {
            kinds: refused,
          });
        }
        const target: Target = { host: req.connect.address, port: req.connect.port };
        if (o.allowTarget !== undefined && !o.allowTarget(target, info)) {
          throw convertFault(ConvertErrorCode.NOT_AUTHORIZED, `target ${target.host}:${target.port} refused by policy`);
        }
        const early = reader.detach();
        log.debug({ client: info.remote, target, subscriber, early: early.length }, 'convert request');
        return {
          target,
          ...(early.length > 0 ? { early } : {}),
          ...(subscriber === undefined ? {} : { subscriber }),
        };
      } catch (e) {
        reader.detach();
        throw e;
      }
    },

    answer(client, result): void {
      const st = states.get(client);
      states.delete(client);
      if (client.destroyed || !client.writable) return;
      if (result.ok) {
        const tlvs: ConvertTlv[] = [{ type: 'extended-tcp-header', tcpOptions: Buffer.alloc(0) }];
        if (st?.info === true) tlvs.push({ type: 'supported-tcp-extensions', kinds: announced });
        // The grant only to a client that asked for it: an independent client never sees it.
        if (st?.grant === true && result.grant !== undefined) tlvs.push({ type: 'grant', grant: result.grant });
        let reply: Buffer;
        try {
          reply = encodeConvertMessage(tlvs);
        } catch (e) {
          log.warn({ err: (e as Error).message }, 'grant not encodable: answered without it');
          reply = encodeConvertMessage(tlvs.filter((t) => t.type !== 'grant'));
        }
        client.write(reply);
        return;
      }
      const err = result.error;
      drain(client);
      if (err.detail.answered === true) return;
      const c = convertErrorFor(err);
      if (c === undefined) return;
      if (!errors.take()) {
        if (suppressed++ % 1000 === 0) log.warn({ suppressed }, 'Convert error replies rate-limited');
        return;
      }
      const kinds = Array.isArray(err.detail.kinds) ? (err.detail.kinds as number[]) : undefined;
      const reply = encodeConvertError(c.code, {
        ...(st === undefined ? {} : { received: messageBytes(st.reader.received) }),
        ...(kinds === undefined ? {} : { kinds }),
        ...(c.icmpCode === undefined ? {} : { icmpCode: c.icmpCode }),
        delaySeconds: c.delaySeconds ?? o.retryAfterSeconds ?? 0,
      });
      log.debug({ code: err.code, convertError: c.code }, 'convert error answered');
      client.write(reply);
    },
  };
}

// ───────────────────────── from a board listener's options ─────────────────────────

function configFail(msg: string): never {
  throw new DuocellError('DC_CONFIG_INVALID', `convert listener options: ${msg}`);
}

/** A convert listener's `options` once board/schema.json ($defs.convertOptions) has vouched for them. */
interface ConvertListenerOptions {
  cookies?: 'store' | Array<string | { cookie: string; subscriber?: unknown; hex?: unknown }>;
  allowWithoutCookie?: boolean;
  requestTimeoutMs?: number;
  retryAfterSeconds?: number;
}

/** The subscriber store's cookie lookup, as the composition root injects it. */
export type StoreCookieLookup = (cookie: Buffer) => string | undefined | Promise<string | undefined>;

/**
 * The Convert front of a board listener (`kind: "convert"`), from its `options`:
 *   { "cookies": ["secret", { "cookie": "…", "subscriber": "cell-7", "hex": false }],
 *     "allowWithoutCookie": false, "requestTimeoutMs": 5000, "retryAfterSeconds": 0 }
 * or `"cookies": "store"`: the cookies the subscriber store issued (`storeCookie`, injected by
 * the composition root; without it DC_CONFIG_INVALID). No cookies and no allowWithoutCookie:
 * every request is refused (never an open proxy).
 */
export function convertFrontFromOptions(
  options: Readonly<Record<string, unknown>> | undefined,
  extra: Pick<ConvertFrontOptions, 'verifyCookie' | 'allowTarget' | 'upstreamMptcp'> & { storeCookie?: StoreCookieLookup } = {},
): FrontProtocol {
  checkListenerOptions('convertOptions', options ?? {}, 'convert listener options');
  const o = (options ?? {}) as ConvertListenerOptions;
  const cookies: ConvertCookie[] = [];
  const { storeCookie, ...rest } = extra;
  let verifyCookie = rest.verifyCookie;
  if (o.cookies === 'store') {
    if (storeCookie === undefined) configFail('cookies "store" needs the subscriber store (duocell run)');
    const own = verifyCookie;
    verifyCookie = async (c, info) => (await storeCookie!(c)) ?? (own === undefined ? undefined : await own(c, info));
  } else if (o.cookies !== undefined) {
    for (const [i, c] of o.cookies.entries()) {
      if (typeof c === 'string') {
        cookies.push({ cookie: c });
        continue;
      }
      if (c.hex === true && !/^([0-9a-fA-F]{2})+$/.test(c.cookie)) configFail(`cookies[${i}] is not hex`);
      const value = c.hex === true ? Buffer.from(c.cookie, 'hex') : c.cookie;
      if (value.length === 0) configFail(`cookies[${i}] is empty`);
      cookies.push({ cookie: value, ...(typeof c.subscriber === 'string' ? { subscriber: c.subscriber } : {}) });
    }
  }
  const { requestTimeoutMs, retryAfterSeconds } = o;
  return convertFront({
    cookies,
    ...(o.allowWithoutCookie === true ? { allowWithoutCookie: true } : {}),
    ...(requestTimeoutMs === undefined ? {} : { requestTimeoutMs }),
    ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
    ...rest,
    ...(verifyCookie === undefined ? {} : { verifyCookie }),
  });
}

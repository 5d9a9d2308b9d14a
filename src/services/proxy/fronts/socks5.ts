import type net from 'node:net';
import dns from 'node:dns/promises';
import { createHash, timingSafeEqual } from 'node:crypto';
import { checkListenerOptions } from '../../../core/board.js';
import { DuocellError } from '../../../core/errors.js';
import { logger } from '../../../core/logger.js';
import { unmapV4 } from '../../../core/net.js';
import { forbiddenTarget, parseIPv4, parseIPv6, toIPv6Bytes } from '../../../protocols/convert/index.js';
import {
  SocksCommand,
  SocksMethod,
  SocksReply,
  encodeMethodSelection,
  encodeReply,
  encodeUserPassReply,
  parseGreeting,
  parseRequest,
  parseUserPassRequest,
} from '../../../protocols/socks5/index.js';
import { specialPurpose } from '../target-filter.js';
import type { FrontInfo, FrontProtocol, FrontRequest, Target } from '../types.js';
import { FrontReader, drain } from './reader.js';

/**
 * SOCKS5 front (RFC 1928) with username/password (RFC 1929), CONNECT only.
 *
 *   greeting ──► method: 02 when credentials are configured, 00 only if allowAnonymous, else FF
 *   [02] ──► username/password ──► verify() ──► 01 00 | 01 01 and close
 *   request ──► CONNECT only (else reply 07) ──► resolve name ──► refuse loopback/multicast (02)
 *   engine connects ──► answer(): reply 00 with the upstream's local address, or the REP code
 *                       that fits the failure (05 refused, 04 host / 03 network unreachable, ...)
 *
 * Never an open proxy: constructing it without credentials and without allowAnonymous fails.
 */

const log = logger('duocell:proxy:socks5');

export interface SocksUser {
  username: string;
  password: string;
  /** Shown on the session (default: the username). */
  subscriber?: string;
}

export interface Socks5FrontOptions {
  /** RFC 1929 check (the subscriber store will provide it). */
  verify?: (username: string, password: string, info: FrontInfo) => boolean | Promise<boolean>;
  /** Or a configured list of users. */
  users?: readonly SocksUser[];
  /** Serve clients that offer "no authentication" (trusted networks only). Default false. */
  allowAnonymous?: boolean;
  /** A further target policy: false → reply 02 (not allowed by ruleset). */
  allowTarget?: (target: Target, info: FrontInfo) => boolean;
  /** Time allowed for each client message (default 10 s). */
  requestTimeoutMs?: number;
  /** Name resolution (default: the system resolver). */
  resolve?: (host: string) => Promise<string>;
}

/** REP code for a failure (RFC 1928 section 6), undefined when no reply should be written. */
export function socksReplyFor(err: DuocellError): number | undefined {
  if (typeof err.detail.socksReply === 'number') return err.detail.socksReply;
  const sys = typeof err.detail.sysCode === 'string' ? err.detail.sysCode : undefined;
  switch (err.code) {
    case 'DC_ABORTED':
      return undefined;
    case 'DC_TARGET_FORBIDDEN':
      return SocksReply.NOT_ALLOWED; // 02: connection not allowed by ruleset
    case 'DC_PROXY_CONNECT_TIMEOUT':
      return SocksReply.HOST_UNREACHABLE;
    case 'DC_PROXY_CONNECT_FAILED':
      if (err.detail.unreachable === true) return SocksReply.HOST_UNREACHABLE;
      switch (sys) {
        case 'ECONNREFUSED':
          return SocksReply.CONNECTION_REFUSED;
        case 'ENETUNREACH':
          return SocksReply.NETWORK_UNREACHABLE;
        case 'EHOSTUNREACH':
        case 'EHOSTDOWN':
        case 'ETIMEDOUT':
          return SocksReply.HOST_UNREACHABLE;
        case 'EACCES':
        case 'EPERM':
          return SocksReply.NOT_ALLOWED;
        default:
          return SocksReply.GENERAL_FAILURE;
      }
    default:
      if (err.code.startsWith('DC_POLICY') || err.code.startsWith('DC_SUBSCRIBER')) return SocksReply.NOT_ALLOWED;
      return SocksReply.GENERAL_FAILURE;
  }
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

async function systemResolve(host: string): Promise<string> {
  return (await dns.lookup(host, { verbatim: true })).address;
}

type Phase = 'greeting' | 'auth' | 'request';

export function socks5Front(o: Socks5FrontOptions): FrontProtocol {
  const users = new Map<string, { pass: Buffer; subscriber: string }>();
  for (const u of o.users ?? []) users.set(u.username, { pass: digest(u.password), subscriber: u.subscriber ?? u.username });
  const needAuth = o.verify !== undefined || users.size > 0;
  if (!needAuth && o.allowAnonymous !== true) {
    throw new DuocellError('DC_CONFIG_INVALID', 'a SOCKS5 listener needs users, a verify callback, or allowAnonymous');
  }
  const timeoutMs = o.requestTimeoutMs ?? 10_000;
  const resolve = o.resolve ?? systemResolve;
  const phases = new WeakMap<net.Socket, Phase>();

  async function check(username: string, password: string, info: FrontInfo): Promise<string | undefined> {
    const u = users.get(username);
    const ok = u !== undefined && timingSafeEqual(u.pass, digest(password));
    if (ok) return u.subscriber;
    if (o.verify !== undefined && (await o.verify(username, password, info))) return username;
    return undefined;
  }

  return {
    name: 'socks5',

    async accept(client, info): Promise<FrontRequest> {
      const reader = new FrontReader(client, 0);
      phases.set(client, 'greeting');
      try {
        const { methods } = await reader.next(parseGreeting, 'the SOCKS greeting', timeoutMs, 'DC_SOCKS_TRUNCATED');
        const method = needAuth
          ? methods.includes(SocksMethod.USERPASS)
            ? SocksMethod.USERPASS
            : o.allowAnonymous === true && methods.includes(SocksMethod.NO_AUTH)
              ? SocksMethod.NO_AUTH
              : SocksMethod.NO_ACCEPTABLE
          : methods.includes(SocksMethod.NO_AUTH)
            ? SocksMethod.NO_AUTH
            : SocksMethod.NO_ACCEPTABLE;
        client.write(encodeMethodSelection(method));
        if (method === SocksMethod.NO_ACCEPTABLE) {
          throw new DuocellError('DC_SOCKS_NO_ACCEPTABLE_METHOD', `offered methods ${methods.join(',')}`, { answered: true });
        }
        let subscriber: string | undefined;
        if (method === SocksMethod.USERPASS) {
          phases.set(client, 'auth');
          const cred = await reader.next(parseUserPassRequest, 'the SOCKS username/password', timeoutMs, 'DC_SOCKS_TRUNCATED');
          subscriber = await check(cred.username, cred.password, info);
          client.write(encodeUserPassReply(subscriber === undefined ? 1 : 0));
          if (subscriber === undefined) {
            throw new DuocellError('DC_SOCKS_AUTH_FAILED', `bad credentials for ${JSON.stringify(cred.username)}`, { answered: true });
          }
        }
        phases.set(client, 'request');
        const req = await reader.next(parseRequest, 'the SOCKS request', timeoutMs, 'DC_SOCKS_TRUNCATED');
        if (req.command !== SocksCommand.CONNECT) {
          throw new DuocellError('DC_SOCKS_COMMAND_UNSUPPORTED', `command ${req.command} is not served`, {
            socksReply: SocksReply.COMMAND_NOT_SUPPORTED,
          });
        }
        if (req.port === 0) {
          throw new DuocellError('DC_SOCKS_MALFORMED', 'CONNECT to port 0', { socksReply: SocksReply.GENERAL_FAILURE });
        }
        let address = req.host;
        if (req.type === 'domain' && parseIPv4(req.host) === undefined && parseIPv6(req.host) === undefined) {
          try {
            address = unmapV4(await resolve(req.host));
          } catch (e) {
            throw new DuocellError('DC_PROXY_CONNECT_FAILED', `cannot resolve ${req.host}: ${(e as Error).message}`, {
              cause: e,
              origin: 'peer',
              unreachable: true,
            });
          }
        }
        const bytes = toIPv6Bytes(address);
        const target: Target = { host: address, port: req.port };
        if (bytes === undefined) {
          throw new DuocellError('DC_SOCKS_MALFORMED', `target ${address}:${req.port} is not an address`, { socksReply: SocksReply.NOT_ALLOWED });
        }
        // Never relayed even by an engine without a target filter (RFC 8803's list, as Convert).
        const bad = forbiddenTarget(bytes);
        if (bad !== undefined) {
          throw new DuocellError('DC_TARGET_FORBIDDEN', `target ${address}:${req.port} not allowed (${bad})`, {
            origin: 'local',
            reason: specialPurpose(bytes) ?? 'reserved',
            socksReply: SocksReply.NOT_ALLOWED,
          });
        }
        if (o.allowTarget !== undefined && !o.allowTarget(target, info)) {
          throw new DuocellError('DC_SOCKS_MALFORMED', `target ${address}:${req.port} not allowed by policy`, { socksReply: SocksReply.NOT_ALLOWED });
        }
        const early = reader.detach();
        log.debug({ client: info.remote, target, name: req.type === 'domain' ? req.host : undefined, subscriber }, 'socks5 request');
        return { target, ...(early.length > 0 ? { early } : {}), ...(subscriber === undefined ? {} : { subscriber }) };
      } catch (e) {
        reader.detach();
        throw e;
      }
    },

    answer(client, result): void {
      const phase = phases.get(client);
      phases.delete(client);
      if (client.destroyed || !client.writable) return;
      if (result.ok) {
        client.write(encodeReply(SocksReply.SUCCEEDED, { host: unmapV4(result.local.address) || '0.0.0.0', port: result.local.port }));
        return;
      }
      drain(client);
      const err = result.error;
      // Before the request, the method or auth answer was the reply; nothing more to say.
      if (err.detail.answered === true || phase !== 'request') return;
      const rep = socksReplyFor(err);
      if (rep !== undefined) client.write(encodeReply(rep));
    },
  };
}

/** The subscriber store's RFC 1929 check (username = subscriber name), as the composition root injects it. */
export type StorePasswordCheck = (username: string, password: string) => boolean | Promise<boolean>;

/**
 * The SOCKS5 front of a board listener (`kind: "socks5"`), from its `options`:
 *   { "users": [{ "username": "kt", "password": "…", "subscriber": "phone-1" }],
 *     "allowAnonymous": false, "requestTimeoutMs": 10000 }
 * or `"users": "store"`: the subscribers' passwords in the store (`storeUser`, injected by the
 * composition root; without it DC_CONFIG_INVALID). Neither users, verify nor allowAnonymous:
 * DC_CONFIG_INVALID (never an open proxy).
 */
export function socks5FrontFromOptions(
  options: Readonly<Record<string, unknown>> | undefined,
  extra: Pick<Socks5FrontOptions, 'verify' | 'allowTarget' | 'resolve'> & { storeUser?: StorePasswordCheck } = {},
): FrontProtocol {
  checkListenerOptions('socks5Options', options ?? {}, 'socks5 listener options');
  const o = (options ?? {}) as { users?: 'store' | Array<{ username: string; password: string; subscriber?: unknown }>; allowAnonymous?: boolean; requestTimeoutMs?: number };
  const fail = (msg: string): never => {
    throw new DuocellError('DC_CONFIG_INVALID', `socks5 listener options: ${msg}`);
  };
  const users: SocksUser[] = [];
  const { storeUser, ...rest } = extra;
  let verify = rest.verify;
  if (o.users === 'store') {
    if (storeUser === undefined) fail('users "store" needs the subscriber store (duocell run)');
    const own = verify;
    verify = async (u, p, info) => (await storeUser!(u, p)) || (own !== undefined && (await own(u, p, info)));
  } else if (o.users !== undefined) {
    for (const [i, e] of o.users.entries()) {
      const { username, password } = e;
      if (Buffer.byteLength(username) < 1 || Buffer.byteLength(username) > 255) fail(`users[${i}].username must be 1-255 bytes`);
      if (Buffer.byteLength(password) < 1 || Buffer.byteLength(password) > 255) fail(`users[${i}].password must be 1-255 bytes`);
      users.push({ username, password, ...(typeof e.subscriber === 'string' ? { subscriber: e.subscriber } : {}) });
    }
  }
  const t = o.requestTimeoutMs;
  return socks5Front({
    users,
    ...(o.allowAnonymous === true ? { allowAnonymous: true } : {}),
    ...(typeof t === 'number' ? { requestTimeoutMs: t } : {}),
    ...rest,
    ...(verify === undefined ? {} : { verify }),
  });
}

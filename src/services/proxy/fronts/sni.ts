import type net from 'node:net';
import { logger } from '../../../core/logger.js';
import { unmapV4 } from '../../../core/net.js';
import { MAX_PREFIX, parseClientHello } from '../../../protocols/tls/index.js';
import { transparentFront } from './basic.js';
import type { FrontInfo, FrontProtocol, FrontRequest } from '../types.js';

/**
 * The transparent front with SNI rules (issue 15: "an application is matched … by TLS SNI where
 * the transparent front sees a ClientHello; matching by SNI must never delay or alter the
 * client's bytes"). docs/proxies.md "Matching by TLS SNI".
 *
 *   accept ──► needsSni(client's policy, port)? ──no──► { target }            (today's path)
 *                    │ yes
 *                    ▼
 *              peek (MSG_PEEK: the bytes stay in the kernel) until a whole ClientHello,
 *              not TLS, or the bound (waitMs) ──► { target, sni? } ──► selection
 *
 * Nothing is read: the relay later takes the socket with every byte still queued, so the
 * upstream receives exactly what the client sent. A client that speaks second (SMTP, FTP,
 * IMAP …) sends nothing: after waitMs the session is placed without SNI. Only the connection
 * set-up waits, never a byte in flight: the upstream connection is opened after the peek.
 */

const log = logger('duocell:proxy:sni');

/** The default bound on waiting for a ClientHello (ms): see docs/proxies.md for why 300. */
export const SNI_WAIT_MS = 300;

export interface SniPeekResult {
  bytes: Buffer;
  outcome: 'done' | 'timeout' | 'ended';
}

export interface SniFrontOptions {
  /** Whether a rule could place this session by SNI (the client's policy, the destination port). */
  needsSni(info: FrontInfo, port: number): boolean;
  /** Look at the client's first bytes without taking them (drivers/sockets peekUntil on its fd). */
  peek(client: net.Socket, o: { max: number; timeoutMs: number; want: (bytes: Buffer) => number }): Promise<SniPeekResult>;
  /** The bound on the wait (default SNI_WAIT_MS). */
  waitMs?: number;
}

/** What the SNI peek saw, per outcome (for /metrics and tests). */
export type SniOutcome = 'sni' | 'no-sni' | 'DC_TLS_NOT_CLIENT_HELLO' | 'DC_TLS_MALFORMED' | 'DC_TLS_TOO_LARGE' | 'DC_TLS_SERVER_NAME' | 'DC_TLS_SNI_TIMEOUT' | 'ended';

export interface SniFront extends FrontProtocol {
  readonly counts: Map<SniOutcome, number>;
}

/** want() of the peek: 0 once the prefix says anything final, else the octets still needed. */
function want(b: Buffer): number {
  const r = parseClientHello(b);
  return r.kind === 'need-more' ? r.need : 0;
}

export function transparentSniFront(o: SniFrontOptions): SniFront {
  const waitMs = o.waitMs ?? SNI_WAIT_MS;
  const counts = new Map<SniOutcome, number>();
  const count = (k: SniOutcome): void => void counts.set(k, (counts.get(k) ?? 0) + 1);
  return {
    name: 'transparent',
    counts,
    // The fast path (fast.ts) takes a connection no rule could place by SNI; the rest come here.
    fixed: transparentFront.fixed!,
    reads: (info) => o.needsSni(info, info.local.port),
    async accept(client, info): Promise<FrontRequest> {
      const target = { host: unmapV4(info.local.address), port: info.local.port };
      if (!o.needsSni(info, target.port)) return { target };
      const t0 = performance.now();
      const seen = await o.peek(client, { max: MAX_PREFIX, timeoutMs: waitMs, want });
      const r = parseClientHello(seen.bytes);
      const ms = Math.round((performance.now() - t0) * 100) / 100;
      if (r.kind === 'hello') {
        count(r.serverName === null ? 'no-sni' : 'sni');
        log.debug({ client: info.remote, target, sni: r.serverName, ech: r.ech, ms }, 'ClientHello peeked');
        return r.serverName === null ? { target } : { target, sni: r.serverName };
      }
      const why: SniOutcome = r.kind === 'need-more' ? (seen.outcome === 'timeout' ? 'DC_TLS_SNI_TIMEOUT' : 'ended') : r.code;
      count(why);
      log.debug({ code: why, client: info.remote, target, octets: seen.bytes.length, ms }, 'no server name: selection without SNI');
      return { target };
    },
    answer: transparentFront.answer,
  };
}

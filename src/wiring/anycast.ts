import net from 'node:net';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BoardProfile } from '../core/board.js';
import { DuocellError } from '../core/errors.js';
import { birdAnnouncer, type Announcer } from '../drivers/bird/index.js';
import { birdStatus } from '../drivers/bird/status.js';
import { birdProfile, type BirdProfile } from '../drivers/bird/config.js';
import { AnycastService, type AnycastOps, type AnycastView } from '../services/anycast/index.js';

/**
 * A concentrator in an anycast pool (issue 15): the box's BIRD announces the pool's shared
 * address with one protocol (board `anycast.protocol`, e.g. a static /32 exported to the edge
 * router over BGP with BFD). duocell enables it once its listeners are up and only while its
 * health checks pass (services/anycast), and on stop withdraws first, so the router sends new
 * sessions elsewhere while the engine drains.
 *
 *   start: listeners up, checks pass ──► enable PROTOCOL (announce)
 *   every intervalMs: a check fails ──► disable (withdraw); passes again ──► enable
 *   stop:  disable PROTOCOL (withdraw) ──► grace ──► engine drains (no new sessions arrive) ──► exit
 *
 * An announcement that fails at start is fatal (DC_BIRD_COMMAND): a pool member that cannot
 * announce would sit unused while looking healthy. BIRD's BGP and BFD sessions are read back
 * every interval and shown in /health.
 */
export interface AnycastProfile {
  birdSocket?: string;
  protocol: string;
  intervalMs?: number;
  graceMs?: number;
  /** A server the instance must reach to be worth announcing (TCP connect). */
  upstreamCheck?: { host: string; port: number; timeoutMs?: number };
  /** What `duocell anycast bird-config` writes for this instance's BIRD (drivers/bird/config.ts). */
  bird?: BirdProfile;
}

const bad = (m: string): never => {
  throw new DuocellError('DC_CONFIG_INVALID', `anycast.${m}`);
};

export function anycastProfile(board: BoardProfile): AnycastProfile | undefined {
  const a = board.anycast as Record<string, unknown> | undefined;
  if (a === undefined) return undefined;
  if (typeof a.protocol !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(a.protocol)) bad('protocol: expected a BIRD protocol name');
  if (a.birdSocket !== undefined && (typeof a.birdSocket !== 'string' || !a.birdSocket.startsWith('/'))) bad('birdSocket: expected an absolute path');
  for (const k of ['intervalMs', 'graceMs'] as const) if (a[k] !== undefined && (typeof a[k] !== 'number' || !Number.isInteger(a[k]) || (a[k] as number) < 0 || (a[k] as number) > 600_000)) bad(`${k}: expected whole milliseconds, 0–600000`);
  const u = a.upstreamCheck as Record<string, unknown> | undefined;
  if (u !== undefined && (typeof u !== 'object' || u === null || typeof u.host !== 'string' || net.isIP(u.host) === 0 || typeof u.port !== 'number' || !Number.isInteger(u.port) || u.port < 1 || u.port > 65535)) bad('upstreamCheck: expected {host: an IP address, port}');
  return {
    protocol: a.protocol as string,
    ...(typeof a.birdSocket === 'string' ? { birdSocket: a.birdSocket } : {}),
    ...(typeof a.intervalMs === 'number' ? { intervalMs: a.intervalMs } : {}),
    ...(typeof a.graceMs === 'number' ? { graceMs: a.graceMs } : {}),
    ...(a.bird === undefined ? {} : { bird: birdProfile(a.bird, 'anycast.bird') }),
    ...(u === undefined ? {} : { upstreamCheck: { host: u.host as string, port: u.port as number, ...(typeof u.timeoutMs === 'number' ? { timeoutMs: u.timeoutMs } : {}) } }),
  };
}

/** A TCP connect that succeeds within the timeout. */
export function tcpReachable(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

export interface RunningAnycast {
  /** Withdraw, wait the grace period (the engine drains after). */
  (): Promise<void>;
  view(): AnycastView;
  readonly service: AnycastService;
}

/** Announce now (when the checks pass); the returned stopper withdraws. */
export async function startAnycast(
  p: AnycastProfile,
  announcer?: Announcer,
  extra: { checks?: Record<string, () => Promise<boolean> | boolean>; status?: AnycastOps['status'] } = {},
): Promise<RunningAnycast> {
  const socket = p.birdSocket ?? '/run/bird/bird.ctl';
  const a = announcer ?? birdAnnouncer(socket, p.protocol);
  const status = extra.status ?? (announcer === undefined ? () => birdStatus(socket) : undefined);
  const checks = { ...(extra.checks ?? {}) };
  if (p.upstreamCheck !== undefined) {
    const u = p.upstreamCheck;
    checks.upstream = () => tcpReachable(u.host, u.port, u.timeoutMs ?? 1000);
  }
  const service = new AnycastService({
    protocol: p.protocol,
    ops: { announce: a.announce, withdraw: a.withdraw, ...(status === undefined ? {} : { status }) },
    checks,
    ...(p.intervalMs === undefined ? {} : { intervalMs: p.intervalMs }),
    graceMs: p.graceMs ?? (announcer === undefined ? 500 : 0),
  });
  const marker = withdrawMarker(socket, p.protocol); // before the first announcement
  await service.start();
  const stop = (async () => {
    await service.stop();
    marker?.remove();
  }) as RunningAnycast;
  return Object.assign(stop, { view: () => service.view(), service });
}

/**
 * Under systemd (RUNTIME_DIRECTORY set), `anycast-withdraw` holds the BIRD socket and protocol
 * while this instance may be announcing, so the unit's ExecStopPost withdraws the address even
 * when duocell was killed outright and could not (systemd/duocell.service). Removed on a clean
 * stop, which has withdrawn already.
 */
export function withdrawMarker(socket: string, protocol: string, env: NodeJS.ProcessEnv = process.env): { path: string; remove(): void } | undefined {
  const dir = env['RUNTIME_DIRECTORY']?.split(':')[0];
  if (dir === undefined || dir === '' || /[\n]/.test(socket)) return undefined;
  const path = join(dir, 'anycast-withdraw');
  writeFileSync(path, `${socket}\n${protocol}\n`, { mode: 0o600 });
  return { path, remove: () => rmSync(path, { force: true }) };
}

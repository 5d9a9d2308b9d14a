import type { BoardProfile } from '../core/board.js';
import { DuocellError } from '../core/errors.js';
import { logger } from '../core/logger.js';
import { birdAnnouncer, type Announcer } from '../drivers/bird/index.js';

/**
 * A concentrator in an anycast pool (issue 15): the box's BIRD announces the pool's shared
 * address with one protocol (board `anycast.protocol`, e.g. a static /32 exported to the edge
 * router over BGP with BFD). duocell announces only once its listeners are up, and on stop
 * withdraws first, so the router sends new sessions elsewhere while the engine drains.
 *
 *   start: listeners up ──► enable PROTOCOL (announce)
 *   stop:  disable PROTOCOL (withdraw) ──► engine drains (no new sessions arrive) ──► exit
 *
 * An announcement that fails is fatal at start (DC_BIRD_COMMAND): a pool member that cannot
 * announce would sit unused while looking healthy.
 */
const log = logger('duocell:anycast');

export interface AnycastProfile {
  birdSocket?: string;
  protocol: string;
}

export function anycastProfile(board: BoardProfile): AnycastProfile | undefined {
  const a = board.anycast as Record<string, unknown> | undefined;
  if (a === undefined) return undefined;
  if (typeof a.protocol !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(a.protocol)) throw new DuocellError('DC_CONFIG_INVALID', 'anycast.protocol: expected a BIRD protocol name');
  if (a.birdSocket !== undefined && (typeof a.birdSocket !== 'string' || !a.birdSocket.startsWith('/'))) throw new DuocellError('DC_CONFIG_INVALID', 'anycast.birdSocket: expected an absolute path');
  return { protocol: a.protocol, ...(typeof a.birdSocket === 'string' ? { birdSocket: a.birdSocket } : {}) };
}

/** Announce now; the returned stopper withdraws. */
export async function startAnycast(p: AnycastProfile, announcer: Announcer = birdAnnouncer(p.birdSocket ?? '/run/bird/bird.ctl', p.protocol)): Promise<() => Promise<void>> {
  await announcer.announce();
  log.info({ protocol: p.protocol }, 'anycast address announced');
  return async () => {
    try {
      await announcer.withdraw();
      log.info({ protocol: p.protocol }, 'anycast address withdrawn: draining');
    } catch (e) {
      log.error({ code: (e as DuocellError).code, err: (e as Error).message }, 'cannot withdraw the anycast address: draining anyway');
    }
  };
}

import { logger } from '../../core/logger.js';
import type { PmBackend, PmConnectionView } from './types.js';

const log = logger('duocell:pm');

/**
 * Userspace PM: announce the addresses the policy wants a connection the box accepted to join
 * (ADD_ADDR), at once: a Linux peer with the default limits takes one announcement only if it
 * comes right after the handshake, under the C flag (docs/relay.md "per-radio address ids").
 * Never throws; a refusal (the connection is gone, or not the userspace PM) is logged.
 */
export function announceOnAccept(
  pm: PmBackend,
  want: (s: PmConnectionView) => ReadonlyArray<{ address: string; id: number }>,
  view: PmConnectionView,
  announced: () => void,
): void {
  const announce = pm.announce;
  if (announce === undefined) return;
  let addrs: ReadonlyArray<{ address: string; id: number }>;
  try {
    addrs = want(view);
  } catch (e) {
    log.error({ err: e }, 'announceOnAccept threw');
    return;
  }
  for (const a of addrs) {
    announce.call(pm, view.token, a).then(
      () => {
        announced();
        log.debug({ token: view.token, address: a.address, id: a.id }, 'address announced (ADD_ADDR)');
      },
      (e: unknown) => log.warn({ err: e, token: view.token, address: a.address, id: a.id }, 'ADD_ADDR refused (the connection is gone, or not the userspace PM)'),
    );
  }
}

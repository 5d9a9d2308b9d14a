import type net from 'node:net';
import { DuocellError } from '../../../core/errors.js';
import { unmapV4 } from '../../../core/net.js';
import type { FrontProtocol, FrontResult, Target } from '../types.js';

/** A failed upstream connection is shown to a byte-stream client as a reset (like a RST from the server). */
function resetOnFailure(client: net.Socket, result: FrontResult): void {
  if (!result.ok && !client.destroyed) client.resetAndDestroy();
}

/**
 * Transparent (on-path, TPROXY): the client believes it talks to the server. The original
 * destination is the accepted socket's local address (IP_TRANSPARENT listener).
 */
export const transparentFront: FrontProtocol = {
  name: 'transparent',
  fixed: (info) => ({ host: unmapV4(info.local.address), port: info.local.port }),
  accept(_client, info) {
    return Promise.resolve({ target: { host: unmapV4(info.local.address), port: info.local.port } });
  },
  answer: (client, result) => resetOnFailure(client, result),
};

/** Explicit: every connection to this listener goes to one configured target. */
export function explicitFront(target: Target): FrontProtocol {
  if (target.port <= 0) throw new DuocellError('DC_CONFIG_INVALID', `explicit listener target needs a port: ${JSON.stringify(target)}`);
  return {
    name: 'explicit',
    fixed: () => target,
    accept() {
      return Promise.resolve({ target });
    },
    answer: (client, result) => resetOnFailure(client, result),
  };
}

import { createConnectSocket, createListenSocket, fdOf, fullInfo, isMptcp } from './index.js';
import { finHoldReady, spliceAbort, spliceAvailable, spliceFinHold, spliceStart, spliceStats } from './splice.js';

/**
 * The socket operations the proxy engine receives (services/proxy/types.ts ProxyIo), backed by
 * this driver: production wiring passes this object; tests may pass their own.
 */
export const socketIo = {
  createListenSocket,
  createConnectSocket,
  fdOf,
  isMptcp,
  fullInfo,
  spliceAvailable,
  spliceStart,
  spliceStats,
  spliceAbort,
  spliceFinHold,
  finHoldReady,
};

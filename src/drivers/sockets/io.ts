import net from 'node:net';
import { createConnectSocket, createListenSocket, fdOf, fullInfo, isMptcp } from './index.js';
import { acceptWatch, closeFd, closeReset, connectStart, fastAvailable, listenOn, sockName } from './fast.js';
import { finHoldReady, spliceAbort, spliceAvailable, spliceConnect, spliceFinHold, spliceStart, spliceStats } from './splice.js';

/**
 * The socket operations the proxy engine receives (services/proxy/types.ts ProxyIo), backed by
 * this driver: production wiring passes this object; tests may pass their own.
 */
export const socketIo = {
  socketOn: (fd: number): net.Socket => new net.Socket({ fd, allowHalfOpen: true, readable: true, writable: true }),
  // As net.Server hands a connection with pauseOnConnect (Node's own option for that,
  // `pauseOnCreate`): nothing read, so the client's bytes stay in the kernel for the relay.
  acceptedOn: (fd: number): net.Socket => {
    const s = new net.Socket({ fd, allowHalfOpen: true, readable: true, writable: true, pauseOnCreate: true } as net.SocketConstructorOpts);
    s.setNoDelay(true);
    return s;
  },
  server: (onClient: (c: net.Socket) => void): net.Server => net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, onClient),
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
  fastAvailable: () => fastAvailable() && spliceAvailable(),
  acceptWatch,
  listen: listenOn,
  connectStart,
  sockName,
  closeReset,
  close: closeFd,
  spliceConnect,
};

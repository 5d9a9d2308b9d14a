import type net from 'node:net';
import dns from 'node:dns/promises';
import { DuocellError } from '../../core/errors.js';
import { ipFamily } from '../../core/net.js';
import type { ConnectRequest, Connector } from './types.js';

/**
 * The direct connector: opens the upstream connection itself, plain TCP or MPTCP (originated from
 * a chosen local address; the path manager adds the other subflows), with a connect timeout, an
 * abort signal (the client went away) and optional TCP Fast Open for early bytes.
 */

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

async function resolveHost(host: string, signal: AbortSignal): Promise<string> {
  if (ipFamily(host) !== 0) return host;
  const r = await dns.lookup(host, { verbatim: true });
  if (signal.aborted) throw new DuocellError('DC_ABORTED', 'client went away during name resolution');
  return r.address;
}

export function pickLocal(addresses: readonly string[] | undefined, family: 4 | 6): string | undefined {
  return addresses?.find((a) => ipFamily(a) === family);
}

export async function openUpstream(req: ConnectRequest): Promise<{ socket: net.Socket; serverMptcp: boolean }> {
  const { options: o, signal } = req;
  let host: string;
  try {
    host = await resolveHost(req.target.host, signal);
  } catch (e) {
    if (e instanceof DuocellError) throw e;
    throw new DuocellError('DC_PROXY_CONNECT_FAILED', `cannot resolve ${req.target.host}: ${(e as Error).message}`, { cause: e, origin: 'peer', unreachable: true });
  }
  const family = ipFamily(host) as 4 | 6;
  const localAddress = pickLocal(o.localAddresses, family);
  const { io } = req;
  const fd = io.createConnectSocket({
    family,
    mptcp: o.mptcp,
    ...(localAddress === undefined ? {} : { localAddress }),
    ...(o.mark === undefined ? {} : { mark: o.mark }),
    ...(o.device === undefined ? {} : { device: o.device }),
    fastOpenConnect: o.fastOpen === true && req.early !== undefined && req.early.length > 0,
  });
  const socket = io.socketOn(fd);
  return new Promise((resolve, reject) => {
    const timeoutMs = o.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const fail = (e: DuocellError): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      socket.removeListener('error', onError);
      socket.destroy();
      reject(e);
    };
    const timer = setTimeout(
      () => fail(new DuocellError('DC_PROXY_CONNECT_TIMEOUT', `no answer from ${host}:${req.target.port} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onAbort = (): void => fail(new DuocellError('DC_ABORTED', 'client went away during connect'));
    const onError = (e: NodeJS.ErrnoException): void =>
      fail(
        new DuocellError('DC_PROXY_CONNECT_FAILED', `connect ${host}:${req.target.port}: ${e.message}`, {
          cause: e,
          origin: 'kernel',
          sysCode: e.code,
          errno: typeof e.errno === 'number' ? Math.abs(e.errno) : undefined,
        }),
      );
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('error', onError);
    socket.connect({ host, port: req.target.port }, () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      socket.removeListener('error', onError);
      const sfd = io.fdOf(socket);
      resolve({ socket, serverMptcp: sfd !== undefined && o.mptcp && io.isMptcp(sfd) });
    });
    if (req.early !== undefined && req.early.length > 0) socket.write(req.early);
  });
}

export const directConnector: Connector = {
  name: 'direct',
  connect: openUpstream,
};

// Two loopback TCP (or MPTCP) connections joined by a Relay, as the proxy joins a client and its
// upstream: the spliced relay's tests (test/kernel/splice-relay.test.ts, relay-bulk.test.ts).
import net from 'node:net';
import { createHash } from 'node:crypto';
import { Relay, type RelayMode } from '../../src/services/proxy/relay.js';
import { createConnectSocket, createListenSocket } from '../../src/drivers/sockets/index.js';
import { socketIo } from '../../src/drivers/sockets/io.js';

export const MiB = 1 << 20;

/** A listener that hands accepted sockets to whoever waits (paused, half-open allowed). */
export async function listener(mptcp: boolean): Promise<{ port: number; next(): Promise<net.Socket>; close(): void }> {
  const fd = createListenSocket({ host: '127.0.0.1', port: 0, mptcp });
  const queue: net.Socket[] = [];
  const waiters: Array<(s: net.Socket) => void> = [];
  const srv = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => {
    const w = waiters.shift();
    if (w !== undefined) w(s);
    else queue.push(s);
  });
  await new Promise<void>((r) => srv.listen({ fd }, r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    next: () => new Promise((r) => (queue.length > 0 ? r(queue.shift()!) : waiters.push(r))),
    // (stop listening; net.Server.close's callback would wait for the accepted sockets)
    close: () => void srv.close(),
  };
}

export function connect(port: number, mptcp: boolean): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = new net.Socket({ fd: createConnectSocket({ family: 4, mptcp }), allowHalfOpen: true, readable: true, writable: true });
    s.once('error', reject);
    s.connect(port, '127.0.0.1', () => {
      s.removeListener('error', reject);
      resolve(s);
    });
  });
}

/**
 * client ──► [ci  relay  so] ──► si (server). Returns the two outer ends and the relay.
 * `before` runs on (ci, so) before the relay takes them (early bytes, pending writes).
 */
export async function chain(
  mptcp: boolean,
  before?: (ci: net.Socket, so: net.Socket, client: net.Socket, server: net.Socket) => Promise<void> | void,
  mode: RelayMode = 'splice',
): Promise<{ client: net.Socket; server: net.Socket; relay: Relay; ci: net.Socket; so: net.Socket }> {
  const front = await listener(mptcp);
  const back = await listener(mptcp);
  const client = await connect(front.port, mptcp);
  const ci = await front.next();
  const so = await connect(back.port, mptcp);
  const server = await back.next();
  server.resume();
  server.pause();
  front.close();
  back.close();
  ci.on('error', () => undefined);
  so.on('error', () => undefined);
  if (before !== undefined) await before(ci, so, client, server);
  const relay = new Relay(ci, so, socketIo, mode);
  return { client, server, relay, ci, so };
}

/** Read everything until EOF (or error), hashing it. */
export function collect(s: net.Socket): Promise<{ bytes: number; hash: string; error?: string }> {
  return new Promise((resolve) => {
    const h = createHash('sha256');
    let bytes = 0;
    s.on('data', (d: Buffer) => {
      bytes += d.length;
      h.update(d);
    });
    s.once('end', () => resolve({ bytes, hash: h.digest('hex') }));
    s.once('error', (e: NodeJS.ErrnoException) => resolve({ bytes, hash: '', error: e.code ?? e.message }));
    s.resume();
  });
}

/** Write `n` pseudo-random bytes with backpressure, then FIN unless told not to; resolves with the hash. */
export function send(s: net.Socket, n: number, end = true): Promise<string> {
  const block = Buffer.alloc(256 * 1024);
  for (let i = 0; i < block.length; i++) block[i] = (i * 2654435761) >>> 24;
  const h = createHash('sha256');
  return new Promise((resolve) => {
    let left = n;
    let round = 0;
    const pump = (): void => {
      while (left > 0) {
        const c = block.subarray(0, Math.min(left, block.length));
        c[0] = round++ & 0xff; // vary blocks so reordering would show
        const copy = Buffer.from(c);
        h.update(copy);
        left -= copy.length;
        if (!s.write(copy)) {
          s.once('drain', pump);
          return;
        }
      }
      if (end) s.end();
      resolve(h.digest('hex'));
    };
    pump();
  });
}

export function closed(s: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    if (s.destroyed) return resolve('closed');
    let code = 'closed';
    s.once('error', (e: NodeJS.ErrnoException) => (code = e.code ?? 'error'));
    s.once('close', () => resolve(code));
    s.resume();
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

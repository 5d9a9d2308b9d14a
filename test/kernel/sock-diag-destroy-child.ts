/**
 * Runs INSIDE a test namespace (started by sock-diag-destroy.test.ts): opens TCP connections on
 * this namespace's loopback, aborts one end of each with the sock_diag driver (SOCK_DESTROY) and
 * prints what both ends saw, as one JSON line.
 */
import net from 'node:net';
import { SockDiag } from '../../src/drivers/netlink/sock-diag.js';

interface Outcome {
  name: string;
  aborted: number;
  again: number;
  /** What the end that was not destroyed saw: an error code, or 'end'/'close'. */
  peer: string;
  /** What the destroyed end's owner saw. */
  own: string;
}

function seen(s: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    setTimeout(() => resolve('nothing within 10 s'), 10_000).unref();
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    s.once('end', () => resolve('end'));
    s.once('close', () => resolve('close'));
  });
}

async function pair(listenHost: string, connectHost: string): Promise<{ client: net.Socket; accepted: net.Socket; server: net.Server }> {
  const server = net.createServer({ allowHalfOpen: true });
  const acceptedP = new Promise<net.Socket>((r) => server.once('connection', r));
  await new Promise<void>((r) => server.listen({ host: listenHost, port: 0, ipv6Only: false }, r));
  const port = (server.address() as net.AddressInfo).port;
  const client = net.connect({ host: connectHost, port });
  await new Promise<void>((r, j) => {
    client.once('connect', r);
    client.once('error', j);
  });
  const accepted = await acceptedP;
  return { client, accepted, server };
}

async function run(diag: SockDiag, name: string, listenHost: string, connectHost: string, destroy: 'client' | 'accepted'): Promise<Outcome> {
  const { client, accepted, server } = await pair(listenHost, connectHost);
  const victim = destroy === 'client' ? client : accepted;
  const other = destroy === 'client' ? accepted : client;
  const peerP = seen(other);
  const ownP = seen(victim);
  // one byte each way first: the connection is really up and carrying data
  other.write('x');
  await new Promise((r) => victim.once('data', r));
  const tuple = {
    local: { address: victim.localAddress!, port: victim.localPort! },
    remote: { address: victim.remoteAddress!, port: victim.remotePort! },
  };
  const aborted = await diag.destroy(tuple);
  const [peer, own] = await Promise.all([peerP, ownP]);
  const again = await diag.destroy(tuple);
  client.destroy();
  accepted.destroy();
  server.close();
  return { name, aborted, again, peer, own };
}

const diag = new SockDiag();
const out: Outcome[] = [];
try {
  out.push(await run(diag, 'ipv4 client end', '127.0.0.1', '127.0.0.1', 'client'));
  out.push(await run(diag, 'ipv6 client end', '::1', '::1', 'client'));
  out.push(await run(diag, 'v4-mapped accepted end', '::', '127.0.0.1', 'accepted'));
  const none = await diag.destroy({ local: { address: '127.0.0.1', port: 1 }, remote: { address: '127.0.0.1', port: 2 } });
  process.stdout.write(`${JSON.stringify({ out, none })}\n`);
} catch (e) {
  process.stdout.write(`${JSON.stringify({ error: { code: (e as { code?: string }).code, message: (e as Error).message } })}\n`);
} finally {
  diag.close();
}

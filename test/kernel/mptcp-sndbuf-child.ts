/**
 * Runs INSIDE a test namespace (started by mptcp-sndbuf.test.ts): an MPTCP listener and an MPTCP
 * client made by the socket driver, with the product's bounded send buffer set (or not), one
 * join over a second address, a few bytes each way; prints every subflow's and connection's send
 * buffer as `ss` shows it (skmem tb), as one JSON line.
 *   node mptcp-sndbuf-child.ts BYTES     (0: the kernel's autotuning)
 */
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { createConnectSocket, createListenSocket, setMptcpSendBuffer } from '../../src/drivers/sockets/index.js';

const bytes = Number(process.argv[2] ?? '0');
setMptcpSendBuffer(bytes);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const server = net.createServer({ allowHalfOpen: true }, (s) => {
  s.on('data', () => undefined);
  s.write(Buffer.alloc(64 * 1024));
});
await new Promise<void>((r) => server.listen({ fd: createListenSocket({ host: '10.98.0.1', port: 0, mptcp: true }) }, r));
// net.Server.listen({ fd }) on an unbound port: ask the kernel which one it got
const port = (server.address() as net.AddressInfo).port;
const client = new net.Socket({ fd: createConnectSocket({ family: 4, mptcp: true }), readable: true, writable: true });
await new Promise<void>((r, j) => {
  client.once('error', j);
  client.connect({ host: '10.98.0.1', port }, () => r());
});
client.on('data', () => undefined);
client.write(Buffer.alloc(64 * 1024));
// wait for the join (the in-kernel PM's endpoint 10.98.0.2 subflow): two subflows per end
let lines: string[] = [];
for (let i = 0; i < 100; i++) {
  const out = execFileSync('ss', ['-tmniOHM'], { encoding: 'utf8' });
  lines = out.split('\n').filter((l) => l.includes(`:${port}`));
  if (lines.filter((l) => l.startsWith('tcp')).length >= 4) break;
  await sleep(50);
}
const rows = lines.map((l) => ({ kind: l.split(/\s+/)[0], tb: Number(/tb(\d+)/.exec(l)?.[1] ?? NaN) }));
process.stdout.write(`${JSON.stringify({ port, rows })}\n`);
client.destroy();
server.close();
process.exit(0);

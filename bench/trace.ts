import net from 'node:net';
import { createConnectSocket, familyOf } from '../src/drivers/sockets/index.js';

/**
 * Download trace for the handover benchmark: connect (MPTCP or not), ask the peer server for
 * BYTES, and print every arrival as [epoch ms, cumulative bytes]. Runs inside a namespace.
 *   node trace.js HOST PORT BYTES [--mptcp]
 */
const [host, port, bytes] = process.argv.slice(2);
const mptcp = process.argv.includes('--mptcp');
const fd = createConnectSocket({ family: familyOf(host!), mptcp });
const s = new net.Socket({ fd, allowHalfOpen: true });
const samples: Array<[number, number]> = [];
let total = 0;
const now = (): number => performance.timeOrigin + performance.now();
s.connect({ host: host!, port: Number(port) }, () => {
  const h = Buffer.alloc(8);
  h.writeBigUInt64BE(BigInt(bytes!));
  // Keep our sending side open until the download is complete: a real download does not half-close.
  s.write(h);
});
s.on('data', (d: Buffer) => {
  total += d.length;
  samples.push([now(), total]);
});
s.on('end', () => {
  s.end();
  process.stdout.write(JSON.stringify({ total, samples }) + '\n');
  s.destroy();
});
// Never hang a benchmark: give up after 60 s and say so.
setTimeout(() => {
  process.stdout.write(JSON.stringify({ total, samples, error: 'timeout: transfer stalled' }) + '\n');
  process.exit(1);
}, 60_000).unref();
s.on('error', (e) => {
  process.stdout.write(JSON.stringify({ total, samples, error: e.message }) + '\n');
});

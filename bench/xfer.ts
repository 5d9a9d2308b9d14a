import net from 'node:net';
import { createHash } from 'node:crypto';
import { createConnectSocket, createListenSocket, familyOf } from '../src/drivers/sockets/index.js';
import { patternChunks } from './transfer.js';
import { describeFault, PositionChecker } from './position.js';

/**
 * The benchmarks' transfer tool; runs inside a namespace. Both ends hash what they receive and
 * stamp their last byte with the wall clock (namespaces share it), so an upload is timed to the
 * server's last byte and a download to the client's.
 *
 * Wire: the client sends 16 bytes (u64 BE bytes it wants back, u64 BE tag), then SEND bytes of
 * the pattern and FIN; the server sends the bytes asked for, then FIN, and prints one JSON line
 * per connection with the tag.
 *   node xfer.js server HOST PORT [--mptcp] [--trace]
 *   node xfer.js client HOST PORT SEND RECEIVE --tag N [--mptcp] [--from ADDR] [--trace] [--timeout MS]
 */
const now = (): number => performance.timeOrigin + performance.now();

/**
 * Write n bytes of the pattern; then FIN if there were bytes to send. A side with nothing to
 * send half-closes only after the peer's FIN: a FIN at once would stop the path manager from
 * opening more subflows (it adds them only to an established connection), so the transfer would
 * run on the initial subflow alone.
 */
function pump(sock: net.Socket, n: number): void {
  if (n === 0) {
    if (sock.readableEnded) sock.end();
    else sock.once('end', () => sock.end());
    return;
  }
  const it = patternChunks(n, 256 * 1024);
  const go = (): void => {
    for (let b = it.next(); b !== undefined; b = it.next()) {
      if (!sock.write(b)) {
        sock.once('drain', go);
        return;
      }
    }
    sock.end();
  };
  go();
}

/** One arrival sample per 2 ms at most: [epoch ms, cumulative bytes] (the handover figures' trace). */
function sample(samples: Array<[number, number]>, t: number, total: number): void {
  const last = samples.at(-1);
  if (last !== undefined && t - last[0] < 2) last[1] = total;
  else samples.push([t, total]);
}

function server(host: string, port: number, mptcp: boolean, trace: boolean): void {
  const fd = createListenSocket({ host, port, mptcp });
  const srv = net.createServer({ allowHalfOpen: true }, (sock) => {
    const acceptedAt = now();
    const rx = createHash('sha256');
    const pos = new PositionChecker();
    let head = Buffer.alloc(0);
    let tag = '';
    let received = 0;
    let lastByteAt: number | undefined;
    let reported = false;
    const samples: Array<[number, number]> = [];
    const report = (error?: string): void => {
      if (reported) return;
      reported = true;
      const fault = describeFault(pos.end());
      process.stdout.write(JSON.stringify({ tag, acceptedAt, received, receivedHash: rx.digest('hex'), ...(lastByteAt === undefined ? {} : { lastByteAt }), ...(trace ? { samples } : {}), ...(error === undefined ? {} : { error }), ...(fault === undefined ? {} : { fault }) }) + '\n');
    };
    sock.on('data', (d: Buffer) => {
      if (tag === '') {
        head = Buffer.concat([head, d]);
        if (head.length < 16) return;
        const want = Number(head.readBigUInt64BE(0));
        tag = head.readBigUInt64BE(8).toString();
        d = head.subarray(16);
        pump(sock, want);
      }
      if (d.length > 0) {
        received += d.length;
        rx.update(d);
        pos.update(d);
        lastByteAt = now();
        if (trace) sample(samples, lastByteAt, received);
      }
    });
    sock.on('end', () => {
      if (tag === '') sock.end();
      report();
    });
    sock.on('close', () => report('closed before the end'));
    sock.on('error', (e) => {
      report(e.message);
      sock.destroy();
    });
  });
  srv.on('error', (e) => process.stderr.write(`xfer server: ${e.message}\n`));
  srv.listen({ fd }, () => process.stdout.write(JSON.stringify({ listening: port }) + '\n'));
  process.on('SIGTERM', () => process.exit(0));
}

function client(host: string, port: number, send: number, receive: number, o: { tag: string; mptcp: boolean; from?: string; trace: boolean; timeoutMs: number }): void {
  const startAt = now();
  const fd = createConnectSocket({ family: familyOf(host), mptcp: o.mptcp, ...(o.from === undefined ? {} : { localAddress: o.from }) });
  const sock = new net.Socket({ fd, allowHalfOpen: true, readable: true, writable: true });
  const rx = createHash('sha256');
  const pos = new PositionChecker();
  let received = 0;
  let connectedAt: number | undefined;
  let firstByteAt: number | undefined;
  let lastByteAt: number | undefined;
  const samples: Array<[number, number]> = [];
  let done = false;
  const finish = (error?: string): void => {
    if (done) return;
    done = true;
    const fault = describeFault(pos.end());
    const r = {
      tag: o.tag, startAt, connectedAt, firstByteAt, lastByteAt, received, receivedHash: rx.digest('hex'), sent: send,
      ...(o.trace ? { samples } : {}),
      ...(error === undefined ? {} : { error }),
      ...(fault === undefined ? {} : { fault }),
    };
    process.stdout.write(JSON.stringify(r) + '\n', () => process.exit(error === undefined ? 0 : 1));
    sock.destroy();
  };
  setTimeout(() => finish(`timeout after ${o.timeoutMs} ms (${received} of ${receive} bytes)`), o.timeoutMs).unref();
  sock.on('data', (d: Buffer) => {
    const t = now();
    firstByteAt ??= t;
    lastByteAt = t;
    received += d.length;
    rx.update(d);
    pos.update(d);
    if (o.trace) sample(samples, t, received);
  });
  // Done when the server's FIN has come and our own bytes are all handed to the kernel (an
  // upload's server sends its FIN at once: ending then would cut the upload short).
  let gotEnd = false;
  let flushed = false;
  sock.on('end', () => {
    gotEnd = true;
    if (flushed) finish();
  });
  sock.on('finish', () => {
    flushed = true;
    if (gotEnd) finish();
  });
  sock.on('error', (e) => finish(e.message));
  sock.connect({ host, port }, () => {
    connectedAt = now();
    const h = Buffer.alloc(16);
    h.writeBigUInt64BE(BigInt(receive), 0);
    h.writeBigUInt64BE(BigInt(o.tag), 8);
    sock.write(h);
    pump(sock, send);
  });
}

const argv = process.argv.slice(2);
const flag = (n: string): string | undefined => {
  const i = argv.indexOf(n);
  return i >= 0 ? argv[i + 1] : undefined;
};
const valued = new Set(['--tag', '--from', '--timeout']);
const pos = argv.filter((a, i) => !a.startsWith('--') && !valued.has(argv[i - 1] ?? ''));
const [mode, host, port, send, receive] = pos;
if (mode === 'server' && host !== undefined && port !== undefined) {
  server(host, Number(port), argv.includes('--mptcp'), argv.includes('--trace'));
} else if (mode === 'client' && host !== undefined && port !== undefined && send !== undefined && receive !== undefined) {
  const from = flag('--from');
  client(host, Number(port), Number(send), Number(receive), {
    tag: flag('--tag') ?? '0',
    mptcp: argv.includes('--mptcp'),
    ...(from === undefined ? {} : { from }),
    trace: argv.includes('--trace'),
    timeoutMs: Number(flag('--timeout') ?? 60_000),
  });
} else {
  process.stderr.write('usage: xfer server HOST PORT [--mptcp] [--trace] | xfer client HOST PORT SEND RECEIVE --tag N [--mptcp] [--from ADDR] [--trace] [--timeout MS]\n');
  process.exitCode = 2;
}

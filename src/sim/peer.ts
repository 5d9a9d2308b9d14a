import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { createConnectSocket, createListenSocket, familyOf, fdOf, fullInfo, isMptcp } from '../drivers/sockets/index.js';

/**
 * A traffic peer for tests, benchmarks and the simulated board (N-/M-server and client).
 *
 * Wire protocol (both directions at once): the client sends an 8-byte big-endian count of bytes it
 * wants back, then its own payload until FIN. The server streams that many bytes back, then FIN.
 * Both sides hash what they send and what they receive (sha256) and print one JSON line, so a test
 * can compare the four hashes end to end. Payload: a 1 MiB + 13 pseudo-random block repeated, so
 * that misaligned loss or duplication changes the hash.
 */

const BLOCK = (() => {
  const b = Buffer.allocUnsafe((1 << 20) + 13);
  let x = 0x9e3779b9;
  for (let i = 0; i < b.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
})();

export interface PeerReport {
  role: 'server' | 'client';
  local: string;
  remote: string;
  mptcp: boolean;
  sent: number;
  received: number;
  sentHash: string;
  receivedHash: string;
  ms: number;
  /** Subflows (client side, MPTCP only) with bytes sent/received each. */
  subflows?: Array<{ local: string; remote: string; bytesSent: number; bytesReceived: number }>;
  error?: string;
}

/** Write `count` bytes of the pattern with backpressure (then FIN unless `end` is false); resolves when all is queued. */
function stream(sock: net.Socket, count: number, hash: ReturnType<typeof createHash>, end = true): Promise<void> {
  return new Promise((resolve, reject) => {
    let left = count;
    let off = 0;
    const pump = (): void => {
      while (left > 0) {
        const n = Math.min(left, 256 * 1024, BLOCK.length - off);
        const chunk = BLOCK.subarray(off, off + n);
        hash.update(chunk);
        off = (off + n) % BLOCK.length;
        left -= n;
        if (!sock.write(chunk)) {
          sock.once('drain', pump);
          return;
        }
      }
      if (end) sock.end();
      resolve();
    };
    sock.once('error', reject);
    pump();
  });
}

function subflowsOf(fd: number | undefined): PeerReport['subflows'] {
  if (fd === undefined) return undefined;
  const fi = fullInfo(fd);
  return fi?.subflows.map((s) => ({
    local: `${s.local?.address}:${s.local?.port}`,
    remote: `${s.remote?.address}:${s.remote?.port}`,
    bytesSent: Number(s.tcp.bytesSent),
    bytesReceived: Number(s.tcp.bytesReceived),
  }));
}

export function startPeerServer(
  o: { host: string; port: number; mptcp: boolean },
  onReport: (r: PeerReport) => void,
): Promise<net.Server> {
  const fd = createListenSocket({ host: o.host, port: o.port, mptcp: o.mptcp });
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: false }, (sock) => {
    const t0 = Date.now();
    const rx = createHash('sha256');
    const tx = createHash('sha256');
    let header = Buffer.alloc(0);
    let want = -1;
    let received = 0;
    let sendDone: Promise<void> | undefined;
    const sfd = fdOf(sock);
    const mptcp = sfd !== undefined && isMptcp(sfd);
    const local = `${sock.localAddress}:${sock.localPort}`;
    const remote = `${sock.remoteAddress}:${sock.remotePort}`;
    sock.on('data', (d: Buffer) => {
      if (want < 0) {
        header = Buffer.concat([header, d]);
        if (header.length < 8) return;
        want = Number(header.readBigUInt64BE(0));
        d = header.subarray(8);
        // A reset mid-transfer rejects: report what arrived, never crash the server.
        sendDone = stream(sock, want, tx).catch(() => undefined);
      }
      received += d.length;
      rx.update(d);
    });
    let subflows: PeerReport['subflows'];
    sock.on('end', () => {
      subflows = subflowsOf(fdOf(sock));
      void (sendDone ?? Promise.resolve()).then(() =>
        onReport({
          role: 'server',
          local,
          remote,
          mptcp,
          sent: want < 0 ? 0 : want,
          received,
          sentHash: tx.digest('hex'),
          receivedHash: rx.digest('hex'),
          ms: Date.now() - t0,
          ...(subflows === undefined ? {} : { subflows }),
        }),
      );
      if (want < 0) sock.end();
    });
    sock.on('error', () => sock.destroy());
  });
  server.on('error', () => undefined);
  return new Promise((resolve) => server.listen({ fd }, () => resolve(server)));
}

export interface PeerClientOptions {
  host: string;
  port: number;
  mptcp: boolean;
  /** Bytes to send / to ask back. */
  send: number;
  receive: number;
  localAddress?: string;
  timeoutMs?: number;
  /**
   * Send FIN only after the whole answer arrived. Linux MPTCP adds no subflow to a connection
   * that is no longer ESTABLISHED (half-closed), so a download whose client half-closes at once
   * stays on one subflow when the paths have an RTT.
   */
  lateFin?: boolean;
}

export function runPeerClient(o: PeerClientOptions): Promise<PeerReport> {
  const fam = familyOf(o.host);
  const fd = createConnectSocket({ family: fam, mptcp: o.mptcp, ...(o.localAddress === undefined ? {} : { localAddress: o.localAddress }) });
  const sock = new net.Socket({ fd, allowHalfOpen: true, readable: true, writable: true });
  const t0 = Date.now();
  const rx = createHash('sha256');
  const tx = createHash('sha256');
  let received = 0;
  let lastSubflows: PeerReport['subflows'];
  return new Promise((resolve) => {
    const timer = setTimeout(() => sock.destroy(new Error('timeout')), o.timeoutMs ?? 600_000);
    const sampler = setInterval(() => {
      lastSubflows = subflowsOf(fdOf(sock)) ?? lastSubflows;
    }, 100);
    let mptcp = false;
    let local = '';
    const finish = (error?: string): void => {
      clearTimeout(timer);
      clearInterval(sampler);
      lastSubflows = subflowsOf(fdOf(sock)) ?? lastSubflows;
      sock.destroy();
      resolve({
        role: 'client',
        local,
        remote: `${o.host}:${o.port}`,
        mptcp,
        sent: o.send,
        received,
        sentHash: tx.digest('hex'),
        receivedHash: rx.digest('hex'),
        ms: Date.now() - t0,
        ...(lastSubflows === undefined ? {} : { subflows: lastSubflows }),
        ...(error === undefined ? {} : { error }),
      });
    };
    sock.on('data', (d: Buffer) => {
      received += d.length;
      rx.update(d);
    });
    let sentAll = false;
    let gotEnd = false;
    sock.on('end', () => {
      gotEnd = true;
      if (o.lateFin === true) sock.end();
      if (sentAll) finish();
    });
    sock.on('error', (e) => finish(e.message));
    sock.connect({ host: o.host, port: o.port }, () => {
      mptcp = isMptcp(fd);
      local = `${sock.localAddress}:${sock.localPort}`;
      const h = Buffer.alloc(8);
      h.writeBigUInt64BE(BigInt(o.receive));
      sock.write(h);
      void stream(sock, o.send, tx, o.lateFin !== true).then(
        () => {
          sentAll = true;
          if (gotEnd) finish();
        },
        (e: Error) => finish(e.message),
      );
    });
  });
}

/** CLI: `node peer.js server HOST PORT [--mptcp]` | `client HOST PORT SEND RECEIVE [--mptcp] [--from ADDR] [--late-fin]` | `hold HOST PORT [--mptcp] [--from ADDR]`. */
async function cli(argv: string[]): Promise<void> {
  const mptcp = argv.includes('--mptcp');
  const fromIdx = argv.indexOf('--from');
  const from = fromIdx >= 0 ? argv[fromIdx + 1] : undefined;
  const toIdx = argv.indexOf('--timeout');
  const timeoutMs = toIdx >= 0 ? Number(argv[toIdx + 1]) : undefined;
  const pos = argv.filter((a, i) => !a.startsWith('--') && (fromIdx < 0 || i !== fromIdx + 1) && (toIdx < 0 || i !== toIdx + 1));
  const [mode, host, port, send, receive] = pos;
  if (mode === 'server' && host !== undefined && port !== undefined) {
    const s = await startPeerServer({ host, port: Number(port), mptcp }, (r) => process.stdout.write(JSON.stringify(r) + '\n'));
    process.stdout.write(JSON.stringify({ listening: s.address() }) + '\n');
    process.on('SIGTERM', () => s.close(() => process.exit(0)));
  } else if (mode === 'client' && host !== undefined && port !== undefined) {
    const r = await runPeerClient({
      host,
      port: Number(port),
      mptcp,
      send: Number(send ?? 0),
      receive: Number(receive ?? 0),
      ...(from === undefined ? {} : { localAddress: from }),
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
      lateFin: argv.includes('--late-fin'),
    });
    process.stdout.write(JSON.stringify(r) + '\n');
    process.exitCode = r.error === undefined ? 0 : 1;
  } else if (mode === 'hold' && host !== undefined && port !== undefined) {
    // An idle connection held open until the peer closes it (exit 0) or this process is killed:
    // what a test needs to occupy a session slot (replaces `mptcpize run socat`, which
    // Debian 12's mptcpd does not ship).
    const fd = createConnectSocket({ family: familyOf(host), mptcp, ...(from === undefined ? {} : { localAddress: from }) });
    const sock = new net.Socket({ fd });
    sock.on('error', (e) => {
      process.stdout.write(JSON.stringify({ error: e.message }) + '\n');
      process.exit(1);
    });
    sock.on('close', () => process.exit(0));
    sock.connect({ host, port: Number(port) }, () => {
      // Half of the peer server's 8-byte header: the server keeps waiting for the rest, and an
      // MPTCP connection becomes fully established (the data ACK comes back), which is when the
      // client's path manager opens its joins. An idle connection would stay on one subflow.
      sock.write(Buffer.alloc(4));
      process.stdout.write(JSON.stringify({ connected: `${sock.localAddress}:${sock.localPort}`, mptcp: isMptcp(fd) }) + '\n');
    });
  } else {
    process.stderr.write('usage: peer server HOST PORT [--mptcp] | peer client HOST PORT SEND RECEIVE [--mptcp] [--from ADDR] [--timeout MS] [--late-fin] | peer hold HOST PORT [--mptcp] [--from ADDR]\n');
    process.exitCode = 2;
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  void cli(process.argv.slice(2));
}

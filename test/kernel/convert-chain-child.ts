/**
 * One role of the end-to-end Convert/SOCKS5 test (convert-chain.test.ts), run inside that
 * role's namespace of the simulated board with `ip netns exec`:
 *   srv   N-server (peer protocol, plain TCP) on 10.31.0.2:8000
 *   srv   also on :8002
 *   conc  concentrator: Convert front on :5124 (accepts data in the SYN), SOCKS5 fronts on
 *         :1080 (auth) and :1081 (anonymous)
 *   cell  transparent listeners fed by TPROXY (LAN TCP to port 8000 → :15001, 8002 → :15002)
 *         → Convert client over MPTCP; :15002 sends the Convert message in the SYN (TFO)
 *   nue   plain TCP peer client to the server's address, port arg (captured by the cell)
 *   mue   MPTCP SOCKS5 client to the concentrator (args: port user pass), then the peer protocol
 * Prints JSON lines: {"ready":true}, then reports.
 */
import net from 'node:net';
import { createHash } from 'node:crypto';
import { ProxyEngine } from '../../src/services/proxy/engine.js';
import { directConnector } from '../../src/services/proxy/connector.js';
import { transparentFront } from '../../src/services/proxy/fronts/basic.js';
import { convertFront } from '../../src/services/proxy/fronts/convert.js';
import { socks5Front } from '../../src/services/proxy/fronts/socks5.js';
import { convertConnector } from '../../src/services/proxy/convert-client.js';
import { startPeerServer, runPeerClient } from '../../src/sim/peer.js';
import { createConnectSocket, fullInfo, isMptcp } from '../../src/drivers/sockets/index.js';
import { encodeGreeting, encodeRequest, encodeUserPassRequest } from '../../src/protocols/socks5/index.js';
import { socketIo } from '../../src/drivers/sockets/io.js';

const COOKIE = 'cell-chain-1';
const out = (o: Record<string, unknown>): void => void process.stdout.write(JSON.stringify(o) + '\n');
const [role, ...args] = process.argv.slice(2);
const size = Number(process.env.CONVERT_CHAIN_BYTES ?? 64 << 20);

async function socksClient(port: number, user: string | undefined, pass: string | undefined): Promise<Record<string, unknown>> {
  const fd = createConnectSocket({ family: 4, mptcp: true });
  const s = new net.Socket({ fd, allowHalfOpen: true, readable: true, writable: true });
  const rx = createHash('sha256');
  const tx = createHash('sha256');
  const t0 = Date.now();
  let phase = 0;
  let head = Buffer.alloc(0);
  let received = 0;
  let maxSubflows = 0;
  const perSubflow = new Map<string, number>();
  // the upload: the server may finish its download first, and the socket must not be destroyed
  // (dropping what Node still holds) before the upload has been handed to the kernel
  let uploaded: Promise<void> = Promise.resolve();
  const sampler = setInterval(() => {
    const fi = fullInfo(fd);
    if (fi === undefined) return;
    maxSubflows = Math.max(maxSubflows, fi.subflows.length);
    for (const sf of fi.subflows) perSubflow.set(`${sf.local?.address}`, Number(sf.tcp.bytesReceived));
  }, 100);
  return new Promise((resolve) => {
    const done = (r: Record<string, unknown>): void => {
      clearInterval(sampler);
      s.destroy();
      resolve({ ...r, ms: Date.now() - t0, maxSubflows, perSubflow: Object.fromEntries(perSubflow) });
    };
    s.on('error', (e) => done({ error: e.message, handshake: head.toString('hex') }));
    s.on('end', () => {
      if (phase < 3) done({ refused: true, handshake: head.toString('hex') });
      else {
        // (MPTCP_INFO answers only while the connection is open: ask now, before our own FIN)
        const mptcp = isMptcp(fd);
        void uploaded.then(() => done({ received, rxHash: rx.digest('hex'), txHash: tx.digest('hex'), mptcp }));
      }
    });
    s.connect({ host: '10.31.0.1', port }, () => s.write(encodeGreeting(user === undefined ? [0] : [2])));
    s.on('data', (d: Buffer) => {
      if (phase === 3) {
        received += d.length;
        rx.update(d);
        return;
      }
      head = Buffer.concat([head, d]);
      if (phase === 0 && head.length >= 2) {
        phase = user === undefined ? 2 : 1;
        if (user !== undefined) s.write(encodeUserPassRequest(user, pass ?? ''));
        else s.write(encodeRequest(1, '10.31.0.2', 8000));
      }
      if (phase === 1 && head.length >= 4) {
        if (head[3] !== 0) return; // refused: the server closes
        phase = 2;
        s.write(encodeRequest(1, '10.31.0.2', 8000));
      }
      const replyAt = user === undefined ? 2 : 4;
      if (phase === 2 && head.length >= replyAt + 10) {
        if (head[replyAt + 1] !== 0) return;
        phase = 3;
        const rest = head.subarray(replyAt + 10);
        received += rest.length;
        rx.update(rest);
        const h = Buffer.alloc(8);
        h.writeBigUInt64BE(BigInt(size));
        s.write(h);
        uploaded = pump(s, size, tx);
      }
    });
  });
}

async function pump(s: net.Socket, n: number, h: ReturnType<typeof createHash>): Promise<void> {
  const b = Buffer.allocUnsafe(65536 + 11);
  let x = 12345;
  for (let i = 0; i < b.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  let left = n;
  while (left > 0) {
    const c = b.subarray(0, Math.min(left, b.length));
    h.update(c);
    left -= c.length;
    if (!s.write(c)) await new Promise((r) => s.once('drain', r));
  }
  await new Promise<void>((r) => s.end(r));
}

async function main(): Promise<void> {
  switch (role) {
    case 'srv': {
      await startPeerServer({ host: '10.31.0.2', port: 8000, mptcp: false }, (r) => out({ server: r }));
      await startPeerServer({ host: '10.31.0.2', port: 8002, mptcp: false }, (r) => out({ server: r }));
      out({ ready: true });
      return;
    }
    case 'conc': {
      const e = new ProxyEngine({ io: socketIo });
      await e.listen({
        name: 'convert', host: '0.0.0.0', port: 5124, mptcp: true, fastOpen: 64,
        front: convertFront({ cookies: [{ cookie: COOKIE, subscriber: 'cell-1' }] }),
        connector: directConnector, upstream: { mptcp: false },
      });
      await e.listen({
        name: 'socks', host: '0.0.0.0', port: 1080, mptcp: true,
        front: socks5Front({ users: [{ username: 'kt', password: 'phone-1' }] }),
        connector: directConnector, upstream: { mptcp: false },
      });
      await e.listen({
        name: 'socks-anon', host: '0.0.0.0', port: 1081, mptcp: true,
        front: socks5Front({ allowAnonymous: true }),
        connector: directConnector, upstream: { mptcp: false },
      });
      e.on('closed', (v) => out({ concSession: { front: v.front, combination: v.combination, client: v.client, subscriber: v.subscriber, bytes: v.bytes } }));
      out({ ready: true });
      return;
    }
    case 'cell': {
      const e = new ProxyEngine({ io: socketIo });
      // :15001 sends the Convert message after the handshake (the default), :15002 in the SYN.
      for (const [port, fastOpen] of [[15001, false], [15002, true]] as const) {
        await e.listen({
          name: `lan-${port}`, host: '0.0.0.0', port, mptcp: false, transparent: true,
          front: transparentFront,
          connector: convertConnector({ concentrator: { address: '10.21.0.1', port: 5124 }, cookie: COOKIE, fastOpen }),
          upstream: { mptcp: true, localAddresses: ['10.21.0.2'] },
        });
      }
      // Per-subflow bytes of the upstream (cell → concentrator) leg while sessions run.
      const seen = new Map<string, number>();
      setInterval(() => {
        for (const s of e.registry.values()) {
          s.sample();
          for (const sf of s.lastServerInfo?.subflows ?? []) seen.set(`${sf.local?.address}`, Number(sf.tcp.bytesSent));
        }
      }, 100).unref();
      e.on('closed', (v) => out({ cellSession: { front: v.front, combination: v.combination, server: v.server, subflowsSent: Object.fromEntries(seen) } }));
      out({ ready: true });
      return;
    }
    case 'nue': {
      const r = await runPeerClient({ host: '10.31.0.2', port: Number(args[0] ?? 8000), mptcp: false, send: size, receive: size, timeoutMs: 300_000 });
      out({ client: r });
      process.exit(0);
      return;
    }
    case 'mue': {
      const r = await socksClient(Number(args[0]), args[1] === '-' ? undefined : args[1], args[2]);
      out({ socks: r });
      process.exit(0);
      return;
    }
    default:
      throw new Error(`unknown role ${role}`);
  }
}

main().catch((e: unknown) => {
  out({ fatal: String((e as Error)?.stack ?? e) });
  process.exit(1);
});

/**
 * Runs INSIDE the test namespace made by convert-wire.test.ts (started with `ip netns exec`):
 * servers, a concentrator (Convert + SOCKS5 fronts), a cell (Convert client), and raw clients
 * that record the exact bytes they receive. Prints one JSON line per scenario; the parent test
 * asserts on them. Addresses (set up by the parent on lo):
 *   10.77.9.1, fd77::1  servers        10.77.9.2  concentrator       10.77.9.3  cell
 *   route "unreachable 198.51.100.0/24" (EHOSTUNREACH); no default route (ENETUNREACH)
 */
import net from 'node:net';
import { createHash } from 'node:crypto';
import { ProxyEngine } from '../../src/services/proxy/engine.js';
import { directConnector } from '../../src/services/proxy/connector.js';
import { explicitFront } from '../../src/services/proxy/fronts/basic.js';
import { convertFront } from '../../src/services/proxy/fronts/convert.js';
import { socks5Front } from '../../src/services/proxy/fronts/socks5.js';
import { convertConnector } from '../../src/services/proxy/convert-client.js';
import { createConnectSocket } from '../../src/drivers/sockets/index.js';
import { encodeConvertMessage, type ConvertTlv } from '../../src/protocols/convert/index.js';
import { encodeGreeting, encodeRequest, encodeUserPassRequest } from '../../src/protocols/socks5/index.js';
import { socketIo } from '../../src/drivers/sockets/io.js';

const SRV = '10.77.9.1';
const SRV6 = 'fd77::1';
const CONC = '10.77.9.2';
const CELL = '10.77.9.3';
const COOKIE = 'cell-7f3a9c';

const out = (o: Record<string, unknown>): void => {
  process.stdout.write(JSON.stringify(o) + '\n');
};

/** A server that echoes everything and counts its connections. */
async function echoServer(host: string): Promise<{ port: number; accepted: () => number }> {
  let n = 0;
  const s = net.createServer({ allowHalfOpen: true }, (c) => {
    n++;
    c.on('error', () => undefined);
    c.pipe(c);
  });
  await new Promise<void>((r) => s.listen(0, host, r));
  return { port: (s.address() as net.AddressInfo).port, accepted: () => n };
}

/** A server that streams `n` pseudo-random bytes back after reading the client's 8-byte count, hashing both ways. */
async function hashServer(host: string): Promise<{ port: number; reports: Array<{ rx: string; tx: string; received: number }> }> {
  const reports: Array<{ rx: string; tx: string; received: number }> = [];
  const s = net.createServer({ allowHalfOpen: true }, (c) => {
    c.on('error', () => undefined);
    const rx = createHash('sha256');
    const tx = createHash('sha256');
    let head = Buffer.alloc(0);
    let want = -1;
    let received = 0;
    let sent: Promise<void> = Promise.resolve();
    c.on('data', (d: Buffer) => {
      if (want < 0) {
        head = Buffer.concat([head, d]);
        if (head.length < 8) return;
        want = Number(head.readBigUInt64BE(0));
        d = head.subarray(8);
        sent = pump(c, want, tx);
      }
      received += d.length;
      rx.update(d);
    });
    c.on('end', () => void sent.then(() => reports.push({ rx: rx.digest('hex'), tx: tx.digest('hex'), received })));
  });
  await new Promise<void>((r) => s.listen(0, host, r));
  return { port: (s.address() as net.AddressInfo).port, reports };
}

function block(seed: number): Buffer {
  const b = Buffer.allocUnsafe(65536 + 7);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < b.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

async function pump(s: net.Socket, n: number, h: ReturnType<typeof createHash>, seed = 99): Promise<void> {
  const b = block(seed);
  let left = n;
  while (left > 0) {
    const c = b.subarray(0, Math.min(left, b.length));
    h.update(c);
    left -= c.length;
    if (!s.write(c)) await new Promise((r) => s.once('drain', r));
  }
  s.end();
}

interface Raw {
  sent?: string;
  bytes: string;
  end: 'fin' | 'rst' | 'timeout';
}

/** An MPTCP client with TCP_FASTOPEN_CONNECT: `send` rides in the SYN. Records every byte back. */
function raw(host: string, port: number, send: Buffer, o: { end?: boolean; waitMs?: number; then?: Buffer; tcp?: boolean } = {}): Promise<Raw> {
  return new Promise((resolve) => {
    const fd = createConnectSocket({ family: net.isIP(host) as 4 | 6, mptcp: o.tcp !== true, fastOpenConnect: o.tcp !== true });
    const s = new net.Socket({ fd, allowHalfOpen: true, readable: true, writable: true });
    const got: Buffer[] = [];
    let done = false;
    const finish = (end: Raw['end']): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ sent: send.toString('hex'), bytes: Buffer.concat(got).toString('hex'), end });
    };
    const timer = setTimeout(() => finish('timeout'), o.waitMs ?? 3000);
    s.on('data', (d: Buffer) => {
      got.push(d);
      if (o.then !== undefined && got.length === 1) {
        s.write(o.then);
        s.end();
      }
    });
    s.on('end', () => finish('fin'));
    s.on('error', (e: NodeJS.ErrnoException) => finish(e.code === 'ECONNRESET' ? 'rst' : 'fin'));
    s.connect({ host, port });
    if (send.length > 0) s.write(send);
    if (o.end === true) s.end();
  });
}

/** SOCKS5 dialogue step by step: greeting, [auth], request, then `payload`; returns all bytes back. */
function socks(port: number, steps: Buffer[], payload?: Buffer, waitMs = 3000): Promise<Raw> {
  return new Promise((resolve) => {
    const s = net.connect(port, CONC);
    const got: Buffer[] = [];
    let done = false;
    let i = 0;
    const finish = (end: Raw['end']): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ bytes: Buffer.concat(got).toString('hex'), end });
    };
    const timer = setTimeout(() => finish('timeout'), waitMs);
    s.on('connect', () => s.write(steps[i++]!));
    s.on('data', (d: Buffer) => {
      got.push(d);
      if (i < steps.length) s.write(steps[i++]!);
      else if (payload !== undefined && i === steps.length) {
        i++;
        s.write(payload);
        s.end();
      }
    });
    s.on('end', () => finish('fin'));
    s.on('error', (e: NodeJS.ErrnoException) => finish(e.code === 'ECONNRESET' ? 'rst' : 'fin'));
  });
}

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

async function main(): Promise<void> {
  const echo = await echoServer(SRV);
  const echo6 = await echoServer(SRV6);
  const hs = await hashServer(SRV);
  const closed = await new Promise<number>((r) => {
    const s = net.createServer();
    s.listen(0, SRV, () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => r(p));
    });
  });

  const conc = new ProxyEngine({ io: socketIo, handshakeTimeoutMs: 4000 });
  const cAddr = await conc.listen({
    name: 'convert',
    host: CONC,
    port: 0,
    mptcp: true,
    fastOpen: 64,
    front: convertFront({ cookies: [{ cookie: COOKIE, subscriber: 'cell-7' }], requestTimeoutMs: 1500 }),
    connector: directConnector,
    upstream: { mptcp: false, connectTimeoutMs: 3000 },
  });
  const sAddr = await conc.listen({
    name: 'socks',
    host: CONC,
    port: 0,
    mptcp: true,
    front: socks5Front({ users: [{ username: 'alice', password: 's3cret' }] }),
    connector: directConnector,
    upstream: { mptcp: false },
  });
  const aAddr = await conc.listen({
    name: 'socks-anon',
    host: CONC,
    port: 0,
    mptcp: true,
    front: socks5Front({ allowAnonymous: true, resolve: async (h) => (h === 'srv.test' ? SRV : h === 'lo.test' ? '127.0.0.1' : Promise.reject(new Error('NXDOMAIN'))) }),
    connector: directConnector,
    upstream: { mptcp: false },
  });
  const P = cAddr.port;

  const connect = (host: string, port: number, cookie: string | null = COOKIE, extra: ConvertTlv[] = []): Buffer =>
    encodeConvertMessage([
      { type: 'connect', address: host, port, tcpOptions: [] },
      ...(cookie === null ? [] : [{ type: 'cookie' as const, cookie: Buffer.from(cookie) }]),
      ...extra,
    ]);

  // ── Convert wire scenarios ──
  const before = echo.accepted();
  const scen: Array<[string, Promise<Raw>]> = [
    ['ok', raw(CONC, P, Buffer.concat([connect(SRV, echo.port), Buffer.from('hello')]), { end: true })],
    ['ok-plain-tcp', raw(CONC, P, Buffer.concat([connect(SRV, echo.port), Buffer.from('tcp!')]), { end: true, tcp: true })],
    ['ok-ipv6-target', raw(CONC, P, Buffer.concat([connect(SRV6, echo6.port), Buffer.from('six')]), { end: true })],
    ['net-unreachable', raw(CONC, P, connect('203.0.113.1', 80))],
    ['host-unreachable', raw(CONC, P, connect('198.51.100.7', 80))],
    ['refused-port', raw(CONC, P, connect(SRV, closed))],
    ['timeout-target', raw(CONC, P, connect('192.0.2.1', 80), { waitMs: 6000 })],
  ];
  // the rest must never reach a server
  const guarded: Array<[string, Promise<Raw>]> = [
    ['missing-cookie', raw(CONC, P, Buffer.concat([connect(SRV, echo.port, null), Buffer.from('data')]))],
    ['wrong-cookie', raw(CONC, P, Buffer.concat([connect(SRV, echo.port, 'cell-guess'), Buffer.from('data')]))],
    ['unsupported-version', raw(CONC, P, hex('02 06 2263 0a 05 0050 00000000 00000000 0000ffff 0a4d0901'))],
    ['malformed-option-length', raw(CONC, P, hex('01 07 2263 0a 06 0050 00000000 00000000 0000ffff 0a4d0901 22010000'))],
    ['loopback-target', raw(CONC, P, connect('127.0.0.1', echo.port))],
    ['unknown-tlv', raw(CONC, P, hex('01 02 2263 07 01 0000'))],
    ['truncated-header', raw(CONC, P, hex('01 06'), { end: true })],
    ['length-lies-long', raw(CONC, P, hex('01 0a 2263 0a 05 0050 00000000 00000000 0000ffff 0a4d0901'), { end: true })],
    ['length-lies-long-silent', raw(CONC, P, hex('01 0a 2263 0a 05 0050 00000000 00000000 0000ffff 0a4d0901'))],
    ['length-lies-short', raw(CONC, P, hex('01 03 2263 0a 05 0050 00000000 00000000 0000ffff 0a4d0901'))],
    ['unsupported-tcp-option', raw(CONC, P, encodeConvertMessage([
      { type: 'connect', address: SRV, port: echo.port, tcpOptions: [{ kind: 29, data: Buffer.from([1, 2]) }] },
      { type: 'cookie', cookie: Buffer.from(COOKIE) },
    ]))],
    ['info', raw(CONC, P, encodeConvertMessage([{ type: 'info' }, { type: 'cookie', cookie: Buffer.from(COOKIE) }]))],
  ];
  for (const [name, p] of [...scen, ...guarded]) out({ scenario: name, ...(await p) });
  out({ scenario: 'guarded-servers', echoAccepted: echo.accepted() - before });

  // ── SOCKS5 ──
  const U = (u: string, p: string): Buffer => encodeUserPassRequest(u, p);
  const socksScen: Array<[string, Promise<Raw>]> = [
    ['socks-no-auth-offered', socks(sAddr.port, [encodeGreeting([0])])],
    ['socks-wrong-password', socks(sAddr.port, [encodeGreeting([0, 2]), U('alice', 'guess')])],
    ['socks-unknown-user', socks(sAddr.port, [encodeGreeting([2]), U('mallory', 's3cret')])],
    ['socks-auth-ok', socks(sAddr.port, [encodeGreeting([0, 2]), U('alice', 's3cret'), encodeRequest(1, SRV, echo.port)], Buffer.from('ping'))],
    ['socks-ipv6', socks(sAddr.port, [encodeGreeting([2]), U('alice', 's3cret'), encodeRequest(1, SRV6, echo6.port)], Buffer.from('v6'))],
    ['socks-anon-domain', socks(aAddr.port, [encodeGreeting([0]), encodeRequest(1, 'srv.test', echo.port)], Buffer.from('dn'))],
    ['socks-anon-loopback-domain', socks(aAddr.port, [encodeGreeting([0]), encodeRequest(1, 'lo.test', echo.port)])],
    ['socks-anon-nxdomain', socks(aAddr.port, [encodeGreeting([0]), encodeRequest(1, 'nx.test', 80)])],
    ['socks-bind', socks(aAddr.port, [encodeGreeting([0]), encodeRequest(2, SRV, 80)])],
    ['socks-refused', socks(aAddr.port, [encodeGreeting([0]), encodeRequest(1, SRV, closed)])],
    ['socks-net-unreachable', socks(aAddr.port, [encodeGreeting([0]), encodeRequest(1, '203.0.113.1', 80)])],
  ];
  for (const [name, p] of socksScen) out({ scenario: name, ...(await p) });
  out({ scenario: 'socks-reply-local', port: sAddr.port });

  // ── Cell → concentrator through the Convert client, bytes hashed both ways ──
  const cell = new ProxyEngine({ io: socketIo });
  const mk = (cookie: string, name: string): Promise<net.AddressInfo> =>
    cell.listen({
      name,
      host: CELL,
      port: 0,
      mptcp: false,
      front: explicitFront({ host: SRV, port: hs.port }),
      connector: convertConnector({ concentrator: { address: CONC, port: P }, cookie }),
      upstream: { mptcp: true, localAddresses: [CELL] },
    });
  const good = await mk(COOKIE, 'cell-good');
  const bad = await mk('stolen', 'cell-bad');
  const size = Number(process.env.CONVERT_TEST_BYTES ?? 8 << 20);
  const chain = await new Promise<Record<string, unknown>>((resolve) => {
    const c = net.connect(good.port, CELL);
    const rx = createHash('sha256');
    const tx = createHash('sha256');
    let received = 0;
    c.on('connect', () => {
      const head = Buffer.alloc(8);
      head.writeBigUInt64BE(BigInt(size));
      c.write(head);
      void pump(c, size, tx, 7);
    });
    c.on('data', (d: Buffer) => {
      received += d.length;
      rx.update(d);
    });
    c.on('end', () => resolve({ received, rxHash: rx.digest('hex'), txHash: tx.digest('hex') }));
    c.on('error', (e) => resolve({ error: e.message }));
  });
  await new Promise((r) => setTimeout(r, 200));
  const sessionsBefore = conc.registry.totals.byCombination;
  out({ scenario: 'chain', ...chain, server: hs.reports[0] ?? null, size, concCombos: sessionsBefore });
  const refused = await new Promise<string>((resolve) => {
    const c = net.connect(bad.port, CELL, () => c.write('GET / HTTP/1.0\r\n\r\n'));
    c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    c.on('end', () => resolve('fin'));
  });
  out({ scenario: 'chain-bad-cookie', result: refused, cellRefusals: Object.fromEntries(cell.refusals) });

  await cell.close(100);
  await conc.close(100);
  out({ done: true, concRefusals: Object.fromEntries(conc.refusals) });
  process.exit(0);
}

main().catch((e: unknown) => {
  out({ fatal: String((e as Error)?.stack ?? e) });
  process.exit(1);
});

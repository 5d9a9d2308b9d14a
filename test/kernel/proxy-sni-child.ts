/**
 * One role of proxy-sni.test.ts, run inside its namespace with `ip netns exec`:
 *   srv          servers on 10.66.0.1: :443 and :8443 answer "k" to the first bytes, and on FIN
 *                the sha256 of everything received; :25 speaks first ("220 …"), answers QUIT
 *   conc NAME    concentrator: Convert front on :5124 (MPTCP), plain TCP to servers
 *   cell DIR     the cell, composed by the product's wiring (startSelection: store, selector,
 *                SNI front, selecting connector) with a store in DIR: subscriber `alice`
 *                (10.65.0.2) has policy `video-plan`; candidate siteA (c1) serves app `video`
 *                {ports 443 and 25, sni video.example, *.cdn.example} for that policy, candidate
 *                default (c2) everything. Listeners on 10.66.0.1 :443, :25 (ports an SNI rule
 *                names) and :8443 (none). Reports every session: {session: {port, proxy, sni}}.
 *   ue           runs the client cases (below) and prints {results}.
 * Prints JSON lines: {"ready":true}, then reports.
 */
import net from 'node:net';
import tls from 'node:tls';
import { createHash, randomBytes } from 'node:crypto';
import { ProxyEngine } from '../../src/services/proxy/engine.js';
import { directConnector } from '../../src/services/proxy/connector.js';
import { convertFront } from '../../src/services/proxy/fronts/convert.js';
import { listenerSpecs } from '../../src/services/proxy/index.js';
import { startSelection } from '../../src/wiring/proxies.js';
import { Store } from '../../src/store/index.js';
import { socketIo } from '../../src/drivers/sockets/io.js';
import type { BoardProfile } from '../../src/core/board.js';
import { parseClientHello } from '../../src/protocols/tls/index.js';

const COOKIE = 'sni-cell-1';
const SRV = '10.66.0.1';
const out = (o: Record<string, unknown>): void => void process.stdout.write(JSON.stringify(o) + '\n');
const [role, ...args] = process.argv.slice(2);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function servers(): Promise<void> {
  for (const port of [443, 8443]) {
    const s = net.createServer({ allowHalfOpen: true }, (c) => {
      const h = createHash('sha256');
      let first = true;
      c.on('error', () => undefined);
      c.on('data', (d: Buffer) => {
        h.update(d);
        if (first) c.write('k');
        first = false;
      });
      c.on('end', () => c.end(h.digest('hex')));
    });
    await new Promise<void>((r) => s.listen(port, '0.0.0.0', r));
  }
  const smtp = net.createServer((c) => {
    c.on('error', () => undefined);
    c.write('220 srv ready\r\n');
    c.on('data', (d: Buffer) => {
      if (d.toString().startsWith('QUIT')) c.end('221 bye\r\n');
    });
  });
  await new Promise<void>((r) => smtp.listen(25, '0.0.0.0', r));
}

async function cell(dir: string): Promise<void> {
  const store = await Store.open({ dir });
  store.setPolicy({ name: 'video-plan' }, 'cli');
  store.addSubscriber({ name: 'alice', policy: 'video-plan', addresses: ['10.65.0.2/32'] }, 'cli');
  store.replaceProxies(
    [
      { name: 'siteA', address: '10.61.1.2', port: 5124, protocol: 'convert', location: 'cdn-a', priority: 10, policies: ['video-plan'], apps: [{ name: 'video', ports: [443, 25], sni: ['Video.Example', '*.cdn.example'] }] },
      { name: 'default', address: '10.61.2.2', port: 5124, protocol: 'convert', location: 'near', priority: 5 },
    ],
    'cli',
  );
  const listeners = [443, 25, 8443].map((port) => ({ kind: 'transparent', host: SRV, port, mptcp: false, options: { cookie: COOKIE } }));
  const board = { name: 'sni-test', preset: 'cell', uplinks: [], accessNetworks: [], listeners, proxySelection: { sniWaitMs: Number(args[1] ?? 300) } } as unknown as BoardProfile;
  const selection = startSelection(board, store);
  const engine = new ProxyEngine({ io: socketIo });
  const specs = listenerSpecs(board, { fronts: { transparent: selection.front }, connector: (l) => selection.connector(l) });
  // Not TPROXY'd here (the cell owns 10.66.0.1 on lo, so the listeners' local address is the
  // original destination, as under TPROXY); the front reads it the same way.
  for (const s of specs) await engine.listen({ ...s, transparent: false });
  engine.on('session', (v) => out({ session: { port: v.client.port, proxy: v.proxy ?? null, sni: v.sni ?? null } }));
  engine.on('refused', (r) => out({ refused: r }));
  // both candidates probed once before the clients start
  while (selection.selector.list().some((x) => x.health.rttMs === undefined)) await new Promise((r) => setTimeout(r, 20));
  out({ ready: true });
}

/** A real ClientHello for `servername`, made by Node's TLS stack against a silent local capture server. */
async function helloFor(servername: string): Promise<Buffer> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const got = new Promise<Buffer>((resolve) => {
    srv.once('connection', (s) => {
      let b = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        b = Buffer.concat([b, d]);
        if (parseClientHello(b).kind !== 'need-more') {
          s.destroy();
          resolve(b);
        }
      });
    });
  });
  const c = tls.connect({ host: '127.0.0.1', port: (srv.address() as net.AddressInfo).port, servername, rejectUnauthorized: false });
  c.on('error', () => undefined);
  const b = await got;
  c.destroy();
  srv.close();
  return b;
}

interface Outcome {
  label: string;
  port: number;
  ok: boolean;
  sentHash: string;
  gotHash: string;
  firstByteMs: number;
  err?: string;
}

/** Send `parts` (a pause of gapMs between them), then 64 KiB more and FIN; read "k" + the server's sha256. */
function session(label: string, dport: number, parts: Buffer[], gapMs = 0): Promise<Outcome> {
  const tail = randomBytes(64 * 1024);
  const all = Buffer.concat([...parts, tail]);
  return new Promise((resolve) => {
    const t0 = performance.now();
    let firstByteMs = -1;
    let port = 0;
    let got = Buffer.alloc(0);
    const c = net.connect({ host: SRV, port: dport, noDelay: true });
    const timer = setTimeout(() => c.destroy(new Error('no answer in 10 s')), 10_000);
    const done = (err?: string): void => {
      clearTimeout(timer);
      c.destroy();
      const text = got.toString();
      const gotHash = text.startsWith('k') ? text.slice(1) : '';
      resolve({ label, port, ok: err === undefined && gotHash === sha(all), sentHash: sha(all), gotHash, firstByteMs, ...(err === undefined ? {} : { err }) });
    };
    c.on('connect', async () => {
      port = c.localPort ?? 0;
      for (let i = 0; i < parts.length; i++) {
        c.write(parts[i]!);
        if (gapMs > 0 && i + 1 < parts.length) await new Promise((r) => setTimeout(r, gapMs));
      }
      c.write(tail);
      c.end();
    });
    c.on('data', (d: Buffer) => {
      if (firstByteMs < 0) firstByteMs = performance.now() - t0;
      got = Buffer.concat([got, d]);
    });
    c.on('error', (e) => done(e.message));
    c.on('end', () => done());
  });
}

/** Server speaks first on :25: the banner must arrive although the client sends nothing. */
function serverFirst(): Promise<{ label: string; port: number; ok: boolean; bannerMs: number; err?: string }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let port = 0;
    let text = '';
    let bannerMs = -1;
    const c = net.connect({ host: SRV, port: 25 });
    const timer = setTimeout(() => c.destroy(new Error('no banner in 10 s')), 10_000);
    c.on('connect', () => (port = c.localPort ?? 0));
    c.on('data', (d: Buffer) => {
      text += d.toString();
      if (bannerMs < 0 && text.includes('\r\n')) {
        bannerMs = performance.now() - t0;
        c.write('QUIT\r\n');
      }
    });
    const done = (err?: string): void => {
      clearTimeout(timer);
      resolve({ label: 'server-first :25', port, ok: err === undefined && text.startsWith('220') && text.includes('221 bye'), bannerMs, ...(err === undefined ? {} : { err }) });
    };
    c.on('error', (e) => done(e.message));
    c.on('close', () => done());
  });
}

async function ue(): Promise<void> {
  const video = await helloFor('video.example');
  const cdn = await helloFor('edge7.CDN.example');
  const other = await helloFor('news.example');
  const results: unknown[] = [];
  results.push(await session('video.example :443', 443, [video]));
  results.push(await session('video.example :443 in two segments 40 ms apart', 443, [video.subarray(0, 100), video.subarray(100)], 40));
  results.push(await session('edge7.cdn.example :443', 443, [cdn]));
  results.push(await session('news.example :443', 443, [other]));
  results.push(await session('not TLS :443', 443, [Buffer.from('GET / HTTP/1.1\r\nHost: video.example\r\n\r\n')]));
  results.push(await session('video.example :8443 (no rule names the port)', 8443, [video]));
  results.push(await serverFirst());
  // Set-up latency, interleaved: time to the server's first byte after sending a ClientHello at
  // connect, on a port an SNI rule names (peek, then connect upstream) and on one none names.
  const withRule: number[] = [];
  const without: number[] = [];
  for (let i = 0; i < Number(args[0] ?? 21); i++) {
    withRule.push((await session('latency', 443, [other])).firstByteMs);
    without.push((await session('latency', 8443, [other])).firstByteMs);
  }
  out({ results, latency: { withRule, without } });
}

async function main(): Promise<void> {
  switch (role) {
    case 'srv':
      await servers();
      out({ ready: true });
      return;
    case 'conc': {
      const e = new ProxyEngine({ io: socketIo });
      await e.listen({ name: 'convert', host: '0.0.0.0', port: 5124, mptcp: true, front: convertFront({ cookies: [{ cookie: COOKIE, subscriber: 'cell-1' }] }), connector: directConnector, upstream: { mptcp: false } });
      out({ ready: true, pid: process.pid });
      return;
    }
    case 'cell':
      await cell(args[0]!);
      return;
    case 'ue':
      await ue();
      process.exit(0);
      return;
    default:
      throw new Error(`unknown role ${role}`);
  }
}

main().catch((e: unknown) => {
  out({ fatal: String((e as Error)?.stack ?? e) });
  process.exit(1);
});

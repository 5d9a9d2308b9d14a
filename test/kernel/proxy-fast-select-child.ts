/**
 * One role of proxy-fast-select.test.ts, run inside its namespace with `ip netns exec`:
 *   srv      servers on 10.72.0.2 :9001 :9002 :9003 that answer, on the client's FIN, the sha256
 *            of everything received; a concentrator (Convert front, MPTCP) on 10.72.0.2:5124
 *   cell DIR the cell composed by the product's wiring (startSelection: store, selector, SNI front,
 *            selecting connector; listenerSpecs) with one transparent listener on :15001 fed by
 *            TPROXY. Candidates: `onpath` (on-path, app `direct` ports 9001 and 9003, priority 10)
 *            and `conc` (off-path Convert to the concentrator, every application, priority 5).
 *            Reports every session {session: {port, proxy, fast}} (fast: relayed by the fast
 *            path's FastRelay), and on `report` on stdin {report: {fast, handedOver, health}}.
 *   ue N     N sessions to each of 10.72.0.2 :9001 :9002 :9003 (256 KiB + FIN, the sha256 back)
 * Prints JSON lines: {"ready":true}, then reports.
 */
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { ProxyEngine } from '../../src/services/proxy/engine.js';
import { directConnector } from '../../src/services/proxy/connector.js';
import { convertFront } from '../../src/services/proxy/fronts/convert.js';
import { listenerSpecs } from '../../src/services/proxy/index.js';
import { FastRelay } from '../../src/services/proxy/fast.js';
import { startSelection } from '../../src/wiring/proxies.js';
import { Store } from '../../src/store/index.js';
import { socketIo } from '../../src/drivers/sockets/io.js';
import type { BoardProfile } from '../../src/core/board.js';

const COOKIE = 'fastsel-cell-1';
const SRV = '10.72.0.2';
const out = (o: Record<string, unknown>): void => void process.stdout.write(JSON.stringify(o) + '\n');
const [role, ...args] = process.argv.slice(2);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function srv(): Promise<void> {
  for (const port of [9001, 9002, 9003]) {
    const s = net.createServer({ allowHalfOpen: true }, (c) => {
      const h = createHash('sha256');
      c.on('error', () => undefined);
      c.on('data', (d: Buffer) => h.update(d));
      c.on('end', () => c.end(h.digest('hex')));
    });
    await new Promise<void>((r) => s.listen(port, SRV, r));
  }
  const conc = new ProxyEngine({ io: socketIo });
  await conc.listen({ name: 'convert', host: SRV, port: 5124, mptcp: true, front: convertFront({ cookies: [{ cookie: COOKIE, subscriber: 'cell-1' }] }), connector: directConnector, upstream: { mptcp: false } });
}

async function cell(dir: string): Promise<void> {
  const store = await Store.open({ dir });
  store.replaceProxies(
    [
      { name: 'onpath', address: '10.72.0.1', port: 1, protocol: 'convert', type: 'on-path', priority: 10, apps: [{ name: 'direct', ports: [9001, 9003] }] },
      { name: 'conc', address: SRV, port: 5124, protocol: 'convert', location: 'near', priority: 5 },
    ],
    'cli',
  );
  const listeners = [{ kind: 'transparent', host: '0.0.0.0', port: 15001, mptcp: true, upstream: 'mptcp', options: { cookie: COOKIE } }];
  const board = { name: 'fastsel-test', preset: 'cell', uplinks: [], accessNetworks: [], listeners } as unknown as BoardProfile;
  const selection = startSelection(board, store);
  const engine = new ProxyEngine({ io: socketIo });
  const specs = listenerSpecs(board, { fronts: { transparent: selection.front }, connector: (l) => selection.connector(l) });
  for (const s of specs) await engine.listen(s);
  engine.on('session', (v) => {
    const s = engine.registry.get(v.id);
    out({ session: { port: v.client.port, target: v.server.port, proxy: v.proxy ?? null, fast: s?.relay instanceof FastRelay } });
  });
  engine.on('refused', (r) => out({ refused: r }));
  process.stdin.on('data', () => {
    const health = Object.fromEntries(selection.selector.list().map((x) => [x.candidate.name, { sessions: x.health.sessions, sessionFailures: x.health.sessionFailures }]));
    out({ report: { ...engine.fastCounts, health, live: engine.registry.size } });
  });
  while (selection.selector.list().some((x) => x.candidate.type === 'off-path' && x.health.rttMs === undefined)) await new Promise((r) => setTimeout(r, 20));
  out({ ready: true });
}

function session(dport: number): Promise<{ dport: number; port: number; ok: boolean; err?: string }> {
  const body = randomBytes(256 * 1024);
  return new Promise((resolve) => {
    let port = 0;
    let got = '';
    const c = net.connect({ host: SRV, port: dport, allowHalfOpen: true });
    const timer = setTimeout(() => c.destroy(new Error('no answer in 20 s')), 20_000);
    const done = (err?: string): void => {
      clearTimeout(timer);
      c.destroy();
      resolve({ dport, port, ok: err === undefined && got === sha(body), ...(err === undefined ? {} : { err }) });
    };
    c.on('connect', () => {
      port = c.localPort ?? 0;
      c.end(body);
    });
    c.on('data', (d: Buffer) => (got += d.toString()));
    c.on('error', (e) => done(e.message));
    c.on('end', () => done());
  });
}

async function ue(n: number): Promise<void> {
  const results = [];
  for (let i = 0; i < n; i++) for (const p of [9001, 9002, 9003]) results.push(await session(p));
  out({ results });
}

async function main(): Promise<void> {
  switch (role) {
    case 'srv':
      await srv();
      out({ ready: true });
      return;
    case 'cell':
      await cell(args[0]!);
      return;
    case 'ue':
      await ue(Number(args[0] ?? 3));
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

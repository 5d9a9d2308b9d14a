// The fast path on a cell's transparent listener with proxy selection (issue 17 item 2, issue
// 15), in namespaces (fs<pid>-*; needs root, MPTCP and nftables TPROXY; runs in CI as root). The
// cell is composed by the product's wiring (store, selector, SNI front, selecting connector):
//
//   ue 10.71.0.2 ──10.71.0.0/24── cell (TPROXY :9001-9003 → :15001) ──10.72.0.0/24── srv 10.72.0.2
//                                                                       servers :9001-9003,
//                                                                       concentrator :5124
//
// Candidates: `onpath` (on-path) serves ports 9001 and 9003, `conc` (Convert) everything else.
// - :9001 → on-path: the fast path relays it (FastRelay), the session's proxy is `onpath`;
// - :9002 → off-path: handed to the JS path (Convert client), proxy `conc`;
// - :9003 → on-path, but the cell's direct connect is refused (an nft reject on the cell's
//   output): the relay thread hands the client back and the JS path goes on with `conc`.
// Every byte arrives (sha256 of 256 KiB + FIN); the selector's counts come back to 0.
import t from 'tap';
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { netnsUnavailable, Topology, type Host } from '../helpers/hosts.js';
import { SLOW_FILE_MS, START_MS, startRole, type Role } from '../helpers/roles.js';
import { socketIo } from '../../src/drivers/sockets/io.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const reason = (await netnsUnavailable()) || (socketIo.fastAvailable() ? false : 'the socket addon has no fast path (npm run setup)');

const start = (h: Host, role: string, args: string[] = []): Role => startRole(h, path.join(here, 'proxy-fast-select-child.ts'), role, args, 'pipe');

const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([p, new Promise<T>((_r, rej) => setTimeout(() => rej(new Error(`timed out: ${what}`)), ms).unref())]);

interface Result {
  dport: number;
  port: number;
  ok: boolean;
  err?: string;
}
interface Seen {
  port: number;
  target: number;
  proxy: string | null;
  fast: boolean;
}

t.setTimeout(SLOW_FILE_MS); // start-up waits of up to START_MS each (helpers/roles.ts)
t.test('kernel, root, netns, TPROXY: a select-connector cell session takes the fast path when on-path, the JS path when off-path', { skip: reason, timeout: SLOW_FILE_MS - 60_000 }, async (t) => {
  const topo = new Topology(`fs${process.pid}`);
  t.teardown(() => topo.destroy());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'duocell-fastsel-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const ue = await topo.host('ue');
  const cell = await topo.host('cell', { forward: true });
  const srv = await topo.host('srv');
  await topo.link(ue, 'eth0', cell, 'eth0', { a: ['10.71.0.2/24'], b: ['10.71.0.1/24'] });
  await topo.link(cell, 'eth1', srv, 'eth0', { a: ['10.72.0.1/24'], b: ['10.72.0.2/24'] });
  await ue.route('10.72.0.0/24', '10.71.0.1');
  await srv.route('10.71.0.0/24', '10.72.0.1');
  const nft = (...a: string[]): Promise<string> => cell.exec('nft', a);
  await nft('add', 'table', 'inet', 'fastsel');
  await nft('add', 'chain', 'inet', 'fastsel', 'pre', '{', 'type', 'filter', 'hook', 'prerouting', 'priority', 'mangle', ';', 'policy', 'accept', ';', '}');
  await nft('add', 'rule', 'inet', 'fastsel', 'pre', 'meta', 'l4proto', 'tcp', 'socket', 'transparent', '1', 'meta', 'mark', 'set', '1', 'accept');
  await nft('add', 'rule', 'inet', 'fastsel', 'pre', 'iifname', 'eth0', 'tcp', 'dport', '9001-9003', 'tproxy', 'ip', 'to', ':15001', 'meta', 'mark', 'set', '1', 'accept');
  // The cell's own direct connects to :9003 are refused (the concentrator still reaches it).
  await nft('add', 'chain', 'inet', 'fastsel', 'out', '{', 'type', 'filter', 'hook', 'output', 'priority', '0', ';', 'policy', 'accept', ';', '}');
  await nft('add', 'rule', 'inet', 'fastsel', 'out', 'ip', 'daddr', '10.72.0.2', 'tcp', 'dport', '9003', 'reject', 'with', 'tcp', 'reset');
  await cell.ip('rule', 'add', 'fwmark', '1', 'lookup', '100');
  await cell.ip('route', 'add', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', '100');

  const srvR = start(srv, 'srv');
  await withTimeout(srvR.line('ready'), START_MS, 'servers ready');
  const cellR = start(cell, 'cell', [dir]);
  t.teardown(() => {
    for (const r of [srvR, cellR]) r.child.kill('SIGKILL');
  });
  await withTimeout(cellR.line('ready'), START_MS, 'cell ready (the concentrator probed)');
  const n = 3;
  const ueR = start(ue, 'ue', [String(n)]);
  t.teardown(() => ueR.child.kill('SIGKILL'));
  const results = (await withTimeout(ueR.line('results'), 120_000, 'client results')).results as Result[];
  const seen = new Map(cellR.lines.filter((l) => l.session !== undefined).map((l) => [(l.session as Seen).port, l.session as Seen] as const));
  const want: Record<number, { proxy: string; fast: boolean; why: string }> = {
    9001: { proxy: 'onpath', fast: true, why: 'on-path: the fast path' },
    9002: { proxy: 'conc', fast: false, why: 'off-path: the JS path (Convert)' },
    9003: { proxy: 'conc', fast: false, why: 'on-path refused: handed back, the next candidate on the JS path' },
  };
  t.equal(results.length, 3 * n, 'every client session ran');
  for (const r of results) {
    const w = want[r.dport]!;
    const s = seen.get(r.port);
    t.ok(r.ok, `:${r.dport} port ${r.port}: all bytes and FIN arrived, the sha256 came back (${r.err ?? 'ok'})`);
    t.equal(s?.proxy, w.proxy, `:${r.dport}: session proxy ${w.proxy}`);
    t.equal(s?.fast, w.fast, `:${r.dport}: ${w.why}`);
  }
  // The counts once every session has ended (the client saw its answer before the cell's record went).
  let rep: { fast: number; handedOver: number; health: Record<string, { sessions: number; sessionFailures: number }>; live: number } | undefined;
  const end = Date.now() + 20_000;
  while (Date.now() < end) {
    cellR.child.stdin!.write('report\n');
    const l = await withTimeout(cellR.next('report'), 10_000, 'cell report');
    rep = l.report as typeof rep;
    if (rep!.live === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(rep?.live, 0, 'no session left on the cell');
  t.equal(rep?.fast, n, `the fast path relayed the ${n} on-path sessions itself`);
  t.equal(rep?.handedOver, 2 * n, `${2 * n} handed to the JS path (off-path, and on-path refused)`);
  t.equal(rep?.health.onpath?.sessions, 0, 'onpath: its session count back to 0 (ended() on the fast path)');
  t.equal(rep?.health.conc?.sessions, 0, 'conc: its session count back to 0');
  t.equal(rep?.health.onpath?.sessionFailures, 1, 'onpath: the refused direct attempt counted on it, as the JS connector counts one (the next :9001 cleared the ones before)');
});

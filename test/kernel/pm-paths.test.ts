// Needs root, network namespaces and the kernel's MPTCP (runs in CI as root).
// The whole netlink stack with the paths and pm services in a cell namespace with two uplinks
// (wwan0: cellular, wlan0: WLAN; no cfg80211 needed): endpoints, tables and rules follow the
// paths; a link going down loses its endpoint at once and gets everything back when it returns;
// subflows are labelled with their access type.
import t from 'tap';
import { Topology, netnsUnavailable } from '../helpers/hosts.js';
import { Agent } from './netlink-agent.js';

const why = await netnsUnavailable();

async function until(f: () => Promise<boolean>, ms = 8000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await f()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

t.test('paths + pm services over real netlink in namespaces (needs root + MPTCP kernel)', { skip: why === false ? false : why, timeout: 120_000 }, async (t) => {
  const topo = new Topology(`tpmp${process.pid % 100000}`);
  t.teardown(() => topo.destroy());
  const c = await topo.host('cell');
  const n = await topo.host('net');
  await topo.link(c, 'wwan0', n, 'r0', { a: ['10.73.1.1/24'], b: ['10.73.1.2/24'] });
  await topo.link(c, 'wlan0', n, 'r1', { a: ['10.73.2.1/24'], b: ['10.73.2.2/24'] });
  await n.mptcpLimits(4, 4);
  const N = new Agent(n);
  const C = new Agent(c);
  t.teardown(() => {
    C.close();
    N.close();
  });
  const port = await N.call<number>('sock.listen', '0.0.0.0', 0);
  const views = await C.call<Array<Record<string, unknown>>>('stack.start', [
    { name: 'cell', access: 'cellular', interface: 'wwan0', gateway4: '10.73.1.2', table: 201 },
    { name: 'wifi', access: 'wlan', interface: 'wlan0', gateway4: '10.73.2.2', table: 202 },
  ]);
  t.match(views, [{ name: 'cell', state: 'up', routing: 'installed', addresses: ['10.73.1.1'] }, { name: 'wifi', state: 'up', routing: 'installed', signal: { quality: 'unknown' } }]);
  const eps = await c.ip('mptcp', 'endpoint', 'show');
  t.match(eps, /10\.73\.1\.1 id \d+ subflow dev wwan0/);
  t.match(eps, /10\.73\.2\.1 id \d+ subflow dev wlan0/);
  t.match(await c.ip('mptcp', 'limits', 'show'), /subflows 4/);
  t.match(await c.ip('rule', 'show'), /from 10\.73\.2\.1 lookup 202/);
  t.match(await c.ip('route', 'show', 'table', '202'), /default via 10\.73\.2\.2 dev wlan0/);

  // an MPTCP connection over the cellular path gets a second subflow over WLAN
  await C.call('sock.connect', '10.73.1.2', port, '10.73.1.1');
  const wl = await C.waitEvent((e) => e.event === 'subflow' && e.data.type === 'opened' && e.data.access === 'wlan');
  t.match(wl.data, { saddr: '10.73.2.1', path: 'wifi' });
  t.ok(C.events.some((e) => e.event === 'subflow' && e.data.access === 'cellular' && e.data.saddr === '10.73.1.1'), 'initial subflow labelled cellular');

  // per-subflow counters from sock_diag: both access types carried bytes
  await C.call('sock.send', 1, 4 << 20);
  t.ok((await C.call<number>('pmsvc.refreshCounters')) >= 2, 'counters merged for both subflows');
  const totals = await C.call<Record<string, { subflows: number; bytesSent: number; rttMs?: number }>>('pmsvc.accessTotals');
  t.comment(`split of 4 MiB echoed: ${JSON.stringify(totals)}`);
  t.ok(totals.cellular!.bytesSent > 0 && totals.wlan!.bytesSent > 0, 'bytes on both paths');
  t.ok(totals.cellular!.bytesSent + totals.wlan!.bytesSent >= 4 << 20, 'all bytes accounted for');

  // WLAN goes down: path-down, endpoint deleted at once, subflow closed
  C.events.length = 0;
  await c.linkSet('wlan0', 'down');
  const down = await C.waitEvent((e) => e.event === 'path' && e.data.name === 'wifi' && e.data.type === 'path-down');
  const synced = await C.waitEvent((e) => e.event === 'synced' && (e.data.deleted as number) >= 1);
  const linkEv = C.events.find((e) => e.event === 'rtlink' && e.data.name === 'wlan0' && e.data.up === false)!;
  const reaction = (synced.data.at as number) - (linkEv.data.at as number);
  t.comment(`pm-reaction: kernel link-down event → endpoint deleted in ${reaction} ms (path event after ${(down.data.at as number) - (linkEv.data.at as number)} ms)`);
  t.ok(reaction < 1000, 'endpoint deleted within a second of the link event');
  t.notMatch(await c.ip('mptcp', 'endpoint', 'show'), /10\.73\.2\.1/);
  await C.waitEvent((e) => e.event === 'subflow' && e.data.type === 'closed' && e.data.access === 'wlan');
  t.pass('the WLAN subflow closed');

  // back up: routes restored by the keeper, endpoint re-added, the kernel re-opens the subflow
  C.events.length = 0;
  await c.linkSet('wlan0', 'up');
  await C.waitEvent((e) => e.event === 'path' && e.data.name === 'wifi' && e.data.type === 'path-up');
  t.ok(await until(async () => /default via 10\.73\.2\.2 dev wlan0/.test(await c.ip('route', 'show', 'table', '202'))), 'table 202 restored');
  t.ok(await until(async () => /10\.73\.2\.1 id/.test(await c.ip('mptcp', 'endpoint', 'show'))), 'endpoint restored');
  const again = await C.waitEvent((e) => e.event === 'subflow' && e.data.type === 'opened' && e.data.access === 'wlan', 15_000);
  t.match(again.data, { saddr: '10.73.2.1' }, 'a new WLAN subflow on the existing connection');
  const sessions = await C.call<Array<{ subflows: Array<{ access: string; state: string }> }>>('pmsvc.sessions');
  t.equal(sessions.length, 1);
  t.ok(sessions[0]!.subflows.some((s) => s.access === 'wlan' && s.state === 'established'));
});

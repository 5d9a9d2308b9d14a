// Needs root, network namespaces and the kernel's MPTCP (runs in CI as root).
// M-UE with two shaped access paths (cellular 20 Mbit/s, WLAN 30 Mbit/s) → cell (duocell) → N-server.
import t from 'tap';
import { Topology, netnsUnavailable } from '../helpers/hosts.js';
import path from 'node:path';
import { adminSession, BIN, nsFetch, PEER, peerClient, startCell, startPeerServerIn, waitFor } from '../helpers/appliance.js';
import type { SessionView } from '../../src/services/proxy/types.js';

const why = await netnsUnavailable();
const MiB = 1 << 20;

t.test('proxy engine in namespaces: M-UE over two paths → cell → N-server', { skip: why === false ? false : why, timeout: 420_000 }, async (t) => {
  const topo = new Topology(`tpx${process.pid % 100000}`);
  t.teardown(() => topo.destroy());
  const mue = await topo.host('mue');
  const cell = await topo.host('cell', { forward: true });
  const srv = await topo.host('srv');
  await topo.link(mue, 'ran0', cell, 'ran0', { a: ['10.61.1.2/24', 'fd00:61:1::2/64'], b: ['10.61.1.1/24', 'fd00:61:1::1/64'], rateMbit: 20 });
  await topo.link(mue, 'wap0', cell, 'wap0', { a: ['10.61.2.2/24', 'fd00:61:2::2/64'], b: ['10.61.2.1/24', 'fd00:61:2::1/64'], rateMbit: 30 });
  await topo.link(cell, 'up0', srv, 'up0', { a: ['10.61.3.1/24', 'fd00:61:3::1/64'], b: ['10.61.3.2/24', 'fd00:61:3::2/64'] });
  const mueRoutes = async (): Promise<void> => {
    await mue.ip('-4', 'route', 'replace', 'default', 'via', '10.61.1.1', 'dev', 'ran0');
    await mue.ip('-6', 'route', 'replace', 'default', 'via', 'fd00:61:1::1', 'dev', 'ran0');
    await mue.ip('-4', 'route', 'replace', 'default', 'via', '10.61.2.1', 'dev', 'wap0', 'table', '12');
    await mue.ip('-6', 'route', 'replace', 'default', 'via', 'fd00:61:2::1', 'dev', 'wap0', 'table', '12');
    await mue.ip('-4', 'route', 'replace', 'default', 'via', '10.61.1.1', 'dev', 'ran0', 'table', '11');
    await mue.ip('-6', 'route', 'replace', 'default', 'via', 'fd00:61:1::1', 'dev', 'ran0', 'table', '11');
  };
  for (const [a, tb] of [['10.61.1.2', 11], ['10.61.2.2', 12], ['fd00:61:1::2', 11], ['fd00:61:2::2', 12]] as const) {
    await mue.ip(a.includes(':') ? '-6' : '-4', 'rule', 'add', 'from', a, 'table', String(tb));
  }
  await mueRoutes();
  await mue.mptcpEndpoint('10.61.2.2', 'wap0', ['subflow']);
  await mue.mptcpEndpoint('fd00:61:2::2', 'wap0', ['subflow']);
  await mue.mptcpLimits(4, 4);
  await cell.mptcpLimits(4, 4);
  await srv.ip('-4', 'route', 'replace', 'default', 'via', '10.61.3.1');
  await srv.ip('-6', 'route', 'replace', 'default', 'via', 'fd00:61:3::1');

  const server = startPeerServerIn(srv, '::', 8000, false);
  await server.ready;
  const board = {
    name: 'test-cell',
    preset: 'cell',
    uplinks: [{ name: 'up', access: 'wlan', interface: 'up0' }],
    lan: { interfaces: ['ran0', 'wap0'] },
    web: { listen: [{ host: '127.0.0.1', port: 18080 }] },
    listeners: [
      { kind: 'explicit', host: '::', port: 9000, mptcp: true, target: '10.61.3.2:8000', upstream: 'tcp' },
      { kind: 'explicit', host: '::', port: 9006, mptcp: true, target: '[fd00:61:3::2]:8000', upstream: 'tcp' },
    ],
    accessNetworks: [
      { prefix: '10.61.1.0/24', access: 'cellular' },
      { prefix: 'fd00:61:1::/64', access: 'cellular' },
      { prefix: '10.61.2.0/24', access: 'wlan' },
      { prefix: 'fd00:61:2::/64', access: 'wlan' },
    ],
  };
  const app = await startCell(cell, board, 18080);
  const base = 'http://127.0.0.1:18080';
  const auth = await adminSession(cell, base);
  const sessions = async (): Promise<SessionView[]> => JSON.parse((await nsFetch(cell, `${base}/api/v1/sessions`, { headers: auth })).body) as SessionView[];

  t.test('64 MiB each way intact, two subflows carry data, session listed with access types', async (t) => {
    const transfer = peerClient(mue, '10.61.1.1', 9000, 64 * MiB, 64 * MiB, { mptcp: true });
    const seen = await waitFor(async () => {
      const s = (await sessions()).find((x) => x.subflows.filter((f) => f.side === 'client').length >= 2);
      return s;
    }, 30_000, 500);
    t.ok(seen, 'the session appears in /api/v1/sessions with two client subflows');
    if (seen !== undefined) {
      t.equal(seen.client.mptcp, true, 'client side is MPTCP');
      t.equal(seen.server.mptcp, false, 'server side is plain TCP');
      t.equal(seen.combination, 'M-N');
      const access = seen.subflows.filter((f) => f.side === 'client').map((f) => f.access).sort();
      // (a join the kernel is re-making can show for a moment next to its predecessor: compare the set)
      t.same([...new Set(access)], ['cellular', 'wlan'], `subflows labelled with their access types (${access.join(', ')})`);
    }
    const r = await transfer;
    t.equal(r.error, undefined, 'transfer finished');
    t.equal(r.received, 64 * MiB);
    const s = await waitFor(() => server.reports.shift());
    t.ok(s, 'server reported');
    t.equal(s?.mptcp, false, 'the N-server saw plain TCP');
    t.equal(s?.receivedHash, r.sentHash, '64 MiB upstream intact');
    t.equal(r.receivedHash, s?.sentHash, '64 MiB downstream intact');
    const used = (r.subflows ?? []).filter((f) => f.bytesSent > MiB && f.bytesReceived > MiB);
    t.equal(used.length, 2, `both subflows carried data both ways: ${JSON.stringify(r.subflows)}`);
  });

  t.test('the same over IPv6', async (t) => {
    const r = await peerClient(mue, 'fd00:61:1::1', 9006, 16 * MiB, 16 * MiB, { mptcp: true });
    t.equal(r.error, undefined);
    t.equal(r.mptcp, true, 'client is MPTCP over IPv6');
    const s = await waitFor(() => server.reports.shift());
    t.equal(s?.receivedHash, r.sentHash, 'upstream intact');
    t.equal(r.receivedHash, s?.sentHash, 'downstream intact');
    t.ok(s?.remote.startsWith('fd00:61:3::1') || s?.remote.startsWith('[fd00:61:3::1'), `server saw the cell's IPv6 address (${s?.remote})`);
    t.equal((r.subflows ?? []).filter((f) => f.bytesSent > MiB).length, 2, 'two IPv6 subflows carried data');
  });

  t.test('duocell status | sessions | paths read the running cell over its control socket', async (t) => {
    const stateDir = path.join(app.dir, 'state');
    const cli = async (...args: string[]): Promise<unknown> => JSON.parse(await cell.exec(process.execPath, [BIN, ...args, '--json', '--state-dir', stateDir]));
    // An idle M-session held open for as long as the CLI needs (a transfer may end before a
    // loaded machine has started the CLI's node process).
    const held = mue.spawn(process.execPath, [PEER, 'hold', '10.61.1.1', '9000', '--mptcp'], { stdio: ['ignore', 'ignore', 'pipe'] });
    t.teardown(() => {
      held.kill('SIGKILL');
    });
    const listed = await waitFor(async () => {
      const s = (await cli('sessions')) as SessionView[];
      return s.find((x) => x.combination === 'M-N');
    }, 20_000, 300);
    t.ok(listed, '`duocell sessions --json` lists the live M-N session');
    const st = (await cli('status')) as { health: { status: string; preset: string }; paths: Array<{ interface: string }> };
    t.equal(st.health.status, 'ok');
    t.equal(st.health.preset, 'cell');
    const paths = (await cli('paths')) as Array<{ interface: string; state: string }>;
    t.same(paths.map((p) => p.interface), ['up0'], '`duocell paths` shows the uplink');
    const exited = new Promise((r) => held.once('exit', r));
    if (held.exitCode === null && held.signalCode === null) {
      held.kill('SIGKILL');
      await exited;
    }
    // The server may report the held connection's end: drain it so later subtests read their own.
    await waitFor(() => server.reports.shift(), 3_000);
    server.reports.length = 0;
    const down = await cell.exec(process.execPath, [BIN, 'status', '--state-dir', '/nonexistent-duocell'], { allowFail: true });
    t.match(down, /^$/, 'nothing on stdout when no duocell runs there');
  });

  t.test('an N-UE (plain TCP) is served too (fallback)', async (t) => {
    const r = await peerClient(mue, '10.61.1.1', 9000, 4 * MiB, 4 * MiB, { mptcp: false });
    t.equal(r.error, undefined);
    t.equal(r.mptcp, false);
    const s = await waitFor(() => server.reports.shift());
    t.equal(s?.receivedHash, r.sentHash);
    t.equal(r.receivedHash, s?.sentHash);
  });

  t.test('one path goes down mid-transfer: the transfer completes intact', async (t) => {
    const transfer = peerClient(mue, '10.61.1.1', 9000, 32 * MiB, 32 * MiB, { mptcp: true });
    await new Promise((r) => setTimeout(r, 2500));
    const live = await sessions();
    t.ok(live.some((x) => x.client.mptcp && x.bytes.up > 0), 'session live before the cut');
    await mue.linkSet('ran0', 'down'); // the initial subflow's path
    await cell.linkSet('ran0', 'down');
    const r = await transfer;
    t.equal(r.error, undefined, 'no error');
    const s = await waitFor(() => server.reports.shift(), 60_000);
    t.equal(s?.receivedHash, r.sentHash, 'upstream intact');
    t.equal(r.receivedHash, s?.sentHash, 'downstream intact');
    await mue.linkSet('ran0', 'up');
    await cell.linkSet('ran0', 'up');
    await mueRoutes();
  });

  t.test('the cell stops cleanly', async (t) => {
    app.child.kill('SIGTERM');
    const code = await new Promise((r) => app.child.once('exit', r));
    t.equal(code, 0, 'exit code 0 after SIGTERM');
  });
});

// Needs root, network namespaces, nftables with TPROXY and the kernel's MPTCP (runs in CI as root).
// Fail-open when hung (issue 16, item 7): a SIGSTOP'd cell still owns its listening sockets, so
// only the liveness set (renewed by the running event loop) keeps TPROXY from handing it SYNs.
import t from 'tap';
import { Topology, netnsUnavailable, sh } from '../helpers/hosts.js';
import { nsFetch, peerClient, startCell, startPeerServerIn, waitFor } from '../helpers/appliance.js';

const why = (await netnsUnavailable()) || ((await sh('nft', ['--version'], { allowFail: true })) === '' ? 'nft is not installed' : false);

t.test('steering in namespaces: a stopped (SIGSTOP) cell fails open, and intercepts again after SIGCONT', { skip: why === false ? false : why, timeout: 240_000 }, async (t) => {
  const topo = new Topology(`hbhung${process.pid % 100000}`);
  t.teardown(() => topo.destroy());
  const mue = await topo.host('mue');
  const cell = await topo.host('cell', { forward: true });
  const srv = await topo.host('srv');
  await topo.link(mue, 'ran0', cell, 'ran0', { a: ['10.64.1.2/24'], b: ['10.64.1.1/24'] });
  await topo.link(cell, 'up0', srv, 'up0', { a: ['10.64.3.1/24'], b: ['10.64.3.2/24'] });
  await mue.ip('route', 'replace', 'default', 'via', '10.64.1.1', 'dev', 'ran0');
  await srv.ip('route', 'replace', 'default', 'via', '10.64.3.1');
  for (const h of [mue, cell, srv]) await h.mptcpLimits(4, 4);
  const nserver = startPeerServerIn(srv, '0.0.0.0', 8000, false);
  await nserver.ready;

  const board = {
    name: 'test-steer-hung',
    preset: 'cell',
    uplinks: [{ name: 'up', access: 'wlan', interface: 'up0' }],
    lan: { interfaces: ['ran0'] },
    web: { listen: [{ host: '127.0.0.1', port: 18093 }] },
    listeners: [{ kind: 'transparent', host: '::', port: 8000, mptcp: true, upstream: 'mptcp' }],
    accessNetworks: [{ prefix: '10.64.1.0/24', access: 'cellular' }],
  };
  const app = await startCell(cell, board, 18093);
  let stopped = false;
  t.teardown(() => {
    if (stopped) app.child.kill('SIGCONT');
    app.child.kill('SIGTERM');
  });

  const through = (remote: string | undefined): 'proxy' | 'direct' | 'none' => (remote === undefined ? 'none' : /^(::ffff:)?10\.64\.3\.1:/.test(remote) ? 'proxy' : /^(::ffff:)?10\.64\.1\.2:/.test(remote) ? 'direct' : 'none');
  const oneConnection = async (timeoutMs: number): Promise<{ ok: boolean; via: 'proxy' | 'direct' | 'none'; error?: string }> => {
    nserver.reports.length = 0;
    const r = await peerClient(mue, '10.64.3.2', 8000, 1024, 1024, { mptcp: true, timeoutMs });
    if (r.error !== undefined || r.received !== 1024) return { ok: false, via: 'none', error: r.error ?? `received ${r.received}` };
    const s = await waitFor(() => nserver.reports.find((x) => x.sent === 1024), 3000, 50);
    return { ok: true, via: through(s?.remote) };
  };

  const before = await oneConnection(5000);
  t.same(before, { ok: true, via: 'proxy' }, 'while running, a new M-UE connection is intercepted (the server sees the cell)');
  const alive = await cell.exec('nft', ['list', 'set', 'inet', 'duocell', 'alive']);
  t.match(alive, /8000 timeout/, `the liveness set holds the intercepted port (${alive.replace(/\s+/g, ' ').trim()})`);

  process.kill(app.child.pid!, 'SIGSTOP');
  stopped = true;
  const stoppedAt = Date.now();
  const attempts: string[] = [];
  const okAt = await waitFor(async () => {
    const started = Date.now() - stoppedAt;
    const r = await oneConnection(1000);
    const done = Date.now() - stoppedAt;
    attempts.push(`${started}–${done} ms: ${r.ok ? r.via : r.error}`);
    return r.ok && r.via === 'direct' ? { started, done } : undefined;
  }, 10_000, 50);
  t.ok(okAt !== undefined, `a new M-UE connection reaches the server end to end while the cell is stopped (${attempts.join('; ')})`);
  // the element lapses 1.5 s after the last renewal; an attempt costs a client process start plus
  // its 1 s timeout, so under load the first direct attempt can start late: bound its start, generously
  t.ok((okAt?.started ?? 99_999) < 4500, `an attempt started within 4.5 s of the SIGSTOP went end to end (started ${okAt?.started} ms, done ${okAt?.done} ms)`);
  t.equal((await cell.exec('nft', ['list', 'set', 'inet', 'duocell', 'alive'])).match(/8000/), null, 'the liveness element has expired');

  process.kill(app.child.pid!, 'SIGCONT');
  stopped = false;
  const resumed = await waitFor(async () => {
    const r = await oneConnection(3000);
    return r.ok && r.via === 'proxy' ? r : undefined;
  }, 10_000, 200);
  t.ok(resumed !== undefined, 'after SIGCONT new connections are intercepted again');
  const health = await nsFetch(cell, 'http://127.0.0.1:18093/api/v1/health');
  t.equal(health.status, 200, 'the cell answers again');
});

// Needs root, network namespaces, nftables with TPROXY and the kernel's MPTCP (runs in CI as root).
// On-path protocol transition: the cell intercepts MPTCP SYNs (TPROXY), leaves the rest intact, fails open.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { Topology, netnsUnavailable, sh } from '../helpers/hosts.js';
import { adminSession, BIN, nsFetch, PEER, peerClient, ROOT, startCell, startPeerServerIn, waitFor } from '../helpers/appliance.js';
import type { SessionView } from '../../src/services/proxy/types.js';
import { parseSysctlConf, SHIPPED_SYSCTL } from '../../bench/sysctl.js';

const why = (await netnsUnavailable()) || ((await sh('nft', ['--version'], { allowFail: true })) === '' ? 'nft is not installed' : false);
const MiB = 1 << 20;
const MD5PEER = path.join(ROOT, 'test/helpers/md5peer.py');

t.test('steering in namespaces: intercept M-UEs, bypass M-servers, leave the rest intact', { skip: why === false ? false : why, timeout: 420_000 }, async (t) => {
  const topo = new Topology(`tst${process.pid % 100000}`);
  t.teardown(() => topo.destroy());
  const mue = await topo.host('mue');
  const nue = await topo.host('nue');
  const cell = await topo.host('cell', { forward: true });
  const srv = await topo.host('srv');
  // The box's own mark settings from the shipped sysctl file (systemd/60-duocell.conf): with
  // tcp_fwmark_accept = 1 no intercepted connection ever got its replies back to the LAN.
  for (const s of parseSysctlConf(fs.readFileSync(SHIPPED_SYSCTL, 'utf8'), '60-duocell.conf').filter((x) => x.key.includes('fwmark'))) await cell.sysctl(s.key, s.value);
  await topo.link(mue, 'ran0', cell, 'ran0', { a: ['10.62.1.2/24'], b: ['10.62.1.1/24'], rateMbit: 20 });
  await topo.link(mue, 'wap0', cell, 'wap0', { a: ['10.62.2.2/24'], b: ['10.62.2.1/24'], rateMbit: 30 });
  await topo.link(nue, 'lan0', cell, 'lan0', { a: ['10.62.4.2/24'], b: ['10.62.4.1/24'] });
  await topo.link(cell, 'up0', srv, 'up0', { a: ['10.62.3.1/24'], b: ['10.62.3.2/24'] });
  await mue.ip('route', 'replace', 'default', 'via', '10.62.1.1', 'dev', 'ran0');
  await mue.sourceRoute('10.62.1.2', 'ran0', '10.62.1.1', 11);
  await mue.sourceRoute('10.62.2.2', 'wap0', '10.62.2.1', 12);
  await mue.mptcpEndpoint('10.62.2.2', 'wap0', ['subflow']);
  for (const h of [mue, cell, srv]) await h.mptcpLimits(4, 4);
  await nue.ip('route', 'replace', 'default', 'via', '10.62.4.1');
  await srv.ip('route', 'replace', 'default', 'via', '10.62.3.1');

  const nserver = startPeerServerIn(srv, '0.0.0.0', 8000, false);
  const mserver = startPeerServerIn(srv, '0.0.0.0', 8001, true);
  const plain = startPeerServerIn(srv, '0.0.0.0', 7000, false);
  await Promise.all([nserver.ready, mserver.ready, plain.ready]);
  srv.spawn('python3', [MD5PEER, 'server', '0.0.0.0', '8002', '10.62.4.2', 'sekrit']);

  const board = {
    name: 'test-steer',
    preset: 'cell',
    uplinks: [{ name: 'up', access: 'wlan', interface: 'up0' }],
    lan: { interfaces: ['ran0', 'wap0', 'lan0'] },
    web: { listen: [{ host: '127.0.0.1', port: 18082 }] },
    listeners: [
      { kind: 'transparent', host: '::', port: 8000, mptcp: true, upstream: 'mptcp' },
      { kind: 'transparent', host: '::', port: 8001, mptcp: true, upstream: 'mptcp' },
      { kind: 'transparent', host: '::', port: 8002, mptcp: true, upstream: 'tcp', claim: 'all' },
    ],
    accessNetworks: [
      { prefix: '10.62.1.0/24', access: 'cellular' },
      { prefix: '10.62.2.0/24', access: 'wlan' },
      { prefix: '10.62.4.0/24', access: 'lan' },
    ],
    steering: { mserverTtlS: 10 },
  };
  let app = await startCell(cell, board, 18082);
  const base = 'http://127.0.0.1:18082';
  let auth = await adminSession(cell, base);

  t.test('M-UE → N-server: intercepted, both subflows used, server sees plain TCP from the cell', async (t) => {
    // An idle M-session held open while the API is polled (a transfer may end before a loaded
    // machine has answered the first poll), then a transfer for the bytes.
    const held = mue.spawn(process.execPath, [PEER, 'hold', '10.62.3.2', '8000', '--mptcp'], { stdio: ['ignore', 'ignore', 'pipe'] });
    t.teardown(() => {
      held.kill('SIGKILL');
    });
    const seen = await waitFor(async () => (JSON.parse((await nsFetch(cell, `${base}/api/v1/sessions`, { headers: auth })).body) as SessionView[]).find((s) => s.server.port === 8000), 20_000, 300);
    t.equal(seen?.front, 'transparent', 'the session is a transparent one');
    t.equal(seen?.combination, 'M-N');
    held.kill('SIGKILL');
    const r = await peerClient(mue, '10.62.3.2', 8000, 16 * MiB, 16 * MiB, { mptcp: true });
    const s = await waitFor(() => nserver.reports.find((x) => x.received === 16 * MiB));
    nserver.reports.length = 0;
    t.equal(r.error, undefined);
    t.equal(s?.receivedHash, r.sentHash, 'upstream intact');
    t.equal(r.receivedHash, s?.sentHash, 'downstream intact');
    t.equal(s?.mptcp, false, 'N-server saw plain TCP');
    t.match(s?.remote ?? '', /^(::ffff:)?10\.62\.3\.1:/, 'N-server saw the cell, not the UE');
    t.equal((r.subflows ?? []).filter((f) => f.bytesSent > MiB).length, 2, 'both subflows carried data');
  });

  t.test('M-UE → M-server: first proxied, later end to end, probed again after the TTL', async (t) => {
    const first = await peerClient(mue, '10.62.3.2', 8001, MiB, MiB, { mptcp: true });
    const s1 = await waitFor(() => mserver.reports.shift());
    t.equal(first.error, undefined);
    t.match(s1?.remote ?? '', /^(::ffff:)?10\.62\.3\.1:/, 'first connection went through the proxy');
    t.equal(s1?.mptcp, true, 'the proxy spoke MPTCP to the M-server');
    const viaApi = JSON.parse((await nsFetch(cell, `${base}/api/v1/mservers`, { headers: auth })).body) as Array<{ address: string; port: number }>;
    t.ok(viaApi.some((m) => m.address.endsWith('10.62.3.2') && m.port === 8001), 'the cache is visible in /api/v1/mservers');
    const listed = JSON.parse(await cell.exec(process.execPath, [BIN, 'mservers', 'list', '--json', '--state-dir', path.join(app.dir, 'state')])) as { kernel: Array<{ address: string; port: number }> };
    t.ok(listed.kernel.some((m) => m.address === '10.62.3.2' && m.port === 8001), '`duocell mservers list` shows the nft set entry');
    await new Promise((r) => setTimeout(r, 300));
    // On a loaded machine the checks above can outlast the cache's 10 s TTL; the connection
    // after an expiry is proxied and learns the server again, so the one after it must be end
    // to end.
    let second = await peerClient(mue, '10.62.3.2', 8001, 8 * MiB, 8 * MiB, { mptcp: true });
    let s2 = await waitFor(() => mserver.reports.shift());
    if (!/^(::ffff:)?10\.62\.1\.2:/.test(s2?.remote ?? '')) {
      t.comment(`the cache entry expired before the second connection (${s2?.remote}): learned again`);
      second = await peerClient(mue, '10.62.3.2', 8001, 8 * MiB, 8 * MiB, { mptcp: true });
      s2 = await waitFor(() => mserver.reports.shift());
    }
    t.equal(second.receivedHash, s2?.sentHash, 'intact');
    t.match(s2?.remote ?? '', /^(::ffff:)?10\.62\.1\.2:/, 'second connection is end to end: the server sees the UE');
    const remotes = new Set((s2?.subflows ?? []).map((f) => f.remote.split(':').slice(0, -1).join(':').replace('::ffff:', '')));
    t.ok(remotes.has('10.62.1.2') && remotes.has('10.62.2.2'), `the server sees the UE's own subflows (${[...remotes].join(', ')})`);
    await cell.exec(process.execPath, [BIN, 'mservers', 'flush', '--state-dir', path.join(app.dir, 'state')]);
    await peerClient(mue, '10.62.3.2', 8001, MiB, MiB, { mptcp: true });
    const sf = await waitFor(() => mserver.reports.shift());
    t.match(sf?.remote ?? '', /^(::ffff:)?10\.62\.3\.1:/, 'after `duocell mservers flush` the server is probed through the proxy again');
    await new Promise((r) => setTimeout(r, 10_500));
    await peerClient(mue, '10.62.3.2', 8001, MiB, MiB, { mptcp: true });
    const s3 = await waitFor(() => mserver.reports.shift());
    t.match(s3?.remote ?? '', /^(::ffff:)?10\.62\.3\.1:/, 'after the TTL the server is probed through the proxy again');
  });

  t.test('N-UE → N-server on an unclaimed port: untouched, same source, same TCP options', async (t) => {
    const capture = (h: typeof nue, dev: string): Promise<string> =>
      h.exec('timeout', ['8', 'tcpdump', '-i', dev, '-n', '-v', '-c', '1', 'tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn and dst port 7000'], { allowFail: true });
    const atClient = capture(nue, 'lan0');
    const atServer = capture(srv, 'up0');
    await new Promise((r) => setTimeout(r, 1000));
    const r = await peerClient(nue, '10.62.3.2', 7000, 64 * 1024, 64 * 1024, { mptcp: false });
    const s = await waitFor(() => plain.reports.shift());
    t.equal(r.receivedHash, s?.sentHash);
    t.match(s?.remote ?? '', /^(::ffff:)?10\.62\.4\.2:/, 'server sees the N-UE itself');
    const opts = (x: string): string | undefined => /options \[([^\]]*)\]/.exec(x)?.[1];
    const [c, v] = [opts(await atClient), opts(await atServer)];
    t.ok(c !== undefined && c.length > 0, `client SYN captured (${c})`);
    t.equal(v, c, 'the server got the very same TCP options');
  });

  t.test('a TCP-MD5 SYN to a claimed port passes untouched', async (t) => {
    const out = await nue.exec('python3', [MD5PEER, 'client', '10.62.3.2', '8002', 'sekrit'], { allowFail: true });
    t.match(out, /md5-echo:hello from 10\.62\.4\.2/, 'MD5-signed connection reached the server end to end');
    const plainTo8002 = await nue.exec('python3', ['-c', 'import socket;s=socket.create_connection(("10.62.3.2",8002),timeout=3);s.sendall(b"x");print(repr(s.recv(200)))'], { allowFail: true });
    t.match(plainTo8002, /from 10\.62\.3\.1/, `while an unsigned SYN to the same port is intercepted (the server sees the cell): ${plainTo8002}`);
  });

  t.test('kill -9: new connections work end to end within 1 s; a restart takes over again', async (t) => {
    const running = peerClient(mue, '10.62.3.2', 8000, 64 * MiB, 64 * MiB, { mptcp: true });
    await new Promise((r) => setTimeout(r, 1500));
    app.child.kill('SIGKILL');
    await new Promise((r) => app.child.once('exit', r));
    const killedAt = Date.now();
    // Each attempt gets 1 s; the first one that starts after the kill should already succeed.
    const attempts: string[] = [];
    const ok = await waitFor(async () => {
      const started = Date.now() - killedAt;
      const r = await peerClient(mue, '10.62.3.2', 8000, 1024, 1024, { mptcp: true, timeoutMs: 1000 });
      attempts.push(`${started}ms: ${r.error ?? 'ok'}`);
      return r.error === undefined && r.received === 1024 ? started : undefined;
    }, 8000, 50);
    t.ok(ok !== undefined, `a new M-UE connection succeeds without duocell (${attempts.join('; ')})`);
    t.ok((ok ?? 99_999) < 1000, `one started within 1 s of the kill succeeded (${ok} ms)`);
    const s = await waitFor(() => nserver.reports.find((x) => x.sent === 1024));
    t.match(s?.remote ?? '', /^(::ffff:)?10\.62\.1\.2:/, 'it went end to end (server sees the UE)');
    const r2 = await peerClient(nue, '10.62.3.2', 7000, 1024, 1024, { mptcp: false });
    t.equal(r2.received, 1024, 'N-UE traffic unaffected');
    await running; // the one that was cut may fail: it was proxied by the process we killed
    nserver.reports.length = 0;
    app = await startCell(cell, board, 18082);
    auth = await adminSession(cell, base).catch(() => auth);
    // A size no earlier connection used: a late report of one cut by the kill is not taken for it.
    const r3 = await peerClient(mue, '10.62.3.2', 8000, 3001, 3001, { mptcp: true });
    t.equal(r3.received, 3001, 'a new connection after the restart completes');
    const s2 = await waitFor(() => nserver.reports.find((x) => x.received === 3001));
    t.match(s2?.remote ?? '', /^(::ffff:)?10\.62\.3\.1:/, 'after restart the cell intercepts again');
  });

  t.test('clean exit removes the ruleset', async (t) => {
    app.child.kill('SIGTERM');
    await new Promise((r) => app.child.once('exit', r));
    const tables = await cell.exec('nft', ['list', 'tables']);
    t.notMatch(tables, /duocell/, 'no duocell table left');
  });
});

// The proxy's fast path (services/proxy/fast.ts) through its ProxyIo seam: a fake I/O object plays
// the addon (batch accept, non-blocking connect, the relay thread's connect and completion
// reports), so admission, refusals, events, counters and timeouts are checked without a kernel.
import t from 'tap';
import type { Accepted, SpliceDone } from '../../src/drivers/sockets/index.js';
import { DuocellError } from '../../src/core/errors.js';
import { ProxyEngine } from '../../src/services/proxy/engine.js';
import { directConnector } from '../../src/services/proxy/connector.js';
import { explicitFront, transparentFront } from '../../src/services/proxy/fronts/basic.js';
import type { Connector, ListenerSpec, Placement, ProxyIo, SessionView } from '../../src/services/proxy/types.js';

interface Live {
  cfd: number;
  sfd: number;
  connected?: (m: boolean) => void;
  done: (r: SpliceDone) => void;
  isConnected: boolean;
}

function fakeIo() {
  const calls: string[] = [];
  const live = new Map<number, Live>();
  let onBatch: ((a: Accepted[], errno: number) => void) | undefined;
  let nextFd = 20;
  let nextId = 1;
  let resumed = 0;
  const state = { stale: false };
  const io: ProxyIo = {
    socketOn: () => {
      throw new Error('fake: no Node socket on the fast path');
    },
    acceptedOn: (fd) => {
      calls.push(`acceptedOn ${fd}`);
      throw new Error('fake: handed to the JS path');
    },
    server: () => {
      calls.push('server');
      throw new Error('fake: the JS path was taken');
    },
    createListenSocket: (o) => {
      calls.push(`listenSocket ${o.host}:${o.port}`);
      return 10;
    },
    createConnectSocket: (o) => {
      calls.push(`connectSocket mptcp=${o.mptcp}${o.mark === undefined ? '' : ` mark=${o.mark}`}`);
      return nextFd++;
    },
    fdOf: () => undefined,
    isMptcp: (fd) => fd === 11,
    fullInfo: () => undefined,
    spliceAvailable: () => true,
    spliceStart: () => {
      throw new Error('fake: spliceStart is the JS path');
    },
    spliceStats: (id) => {
      const l = live.get(id);
      return l === undefined ? undefined : { up: 5, down: 6, lastActivity: state.stale ? 0 : Date.now(), clientFd: l.cfd, serverFd: l.sfd };
    },
    spliceAbort: (id) => {
      calls.push(`abort ${id}`);
      const l = live.get(id);
      if (l === undefined) return false;
      queueMicrotask(() => finish(id, { up: 0, down: 0, reset: true, errno: 103, ...(l.isConnected ? {} : { before: 'abort' as const }) }));
      return true;
    },
    spliceFinHold: () => undefined,
    finHoldReady: () => true,
    fastAvailable: () => true,
    acceptWatch: (fd, cb) => {
      calls.push(`acceptWatch ${fd}`);
      onBatch = cb;
      return { resume: () => resumed++, stop: () => calls.push('acceptStop') };
    },
    listen: (fd, backlog) => calls.push(`listen ${fd} ${backlog}`),
    connectStart: (fd, host, port) => {
      calls.push(`connect ${fd} ${host}:${port}`);
      if (port === 1) throw new DuocellError('DC_SOCKET_SYSCALL', 'connect: ENETUNREACH', { errno: 101 });
    },
    sockName: () => ({ address: '127.0.0.1', port: 7000 }),
    closeReset: (fd) => calls.push(`closeReset ${fd}`),
    close: (fd) => calls.push(`close ${fd}`),
    spliceConnect: (cfd, sfd, connected, done, keep) => {
      const id = nextId++;
      calls.push(`spliceConnect ${cfd} ${sfd} → ${id}${keep === true ? ' keep' : ''}`);
      live.set(id, { cfd, sfd, connected, done, isConnected: false });
      return id;
    },
  };
  function finish(id: number, r: SpliceDone): void {
    const l = live.get(id);
    if (l === undefined) return;
    live.delete(id);
    l.done(r);
  }
  return {
    io,
    calls,
    live,
    set stale(v: boolean) {
      state.stale = v;
    },
    get resumed() {
      return resumed;
    },
    accept(list: Array<[fd: number, remote: string, local?: string, lport?: number]>, errno = 0): void {
      onBatch!(
        list.map(([fd, remote, local, lport]) => ({ fd, remote: { address: remote, port: 40000 + fd }, local: { address: local ?? '127.0.0.1', port: lport ?? 7000 } })),
        errno,
      );
    },
    connected(id: number, mptcp: boolean): void {
      const l = live.get(id)!;
      l.isConnected = true;
      l.connected!(mptcp);
    },
    finish,
  };
}

/** Event-driven wait (generous: CI is loaded); fails the test by timing out. */
async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const spec = (over: Partial<ListenerSpec> = {}): ListenerSpec => ({
  name: 'x',
  host: '127.0.0.1',
  port: 7000,
  mptcp: true,
  front: explicitFront({ host: '192.0.2.9', port: 80 }),
  connector: directConnector,
  upstream: { mptcp: true },
  ...over,
});

t.test('explicit listener: batch accept, admission, connect, events, release', async (t) => {
  const f = fakeIo();
  let released = 0;
  const admitted: string[] = [];
  const engine = new ProxyEngine({
    io: f.io,
    admit: (info, req) => {
      admitted.push(`${info.remote.address} mptcp=${info.clientMptcp} → ${req.target.host}:${req.target.port}`);
      return { grant: { maxSessions: 3 } as never, release: () => released++ };
    },
  });
  const opened: SessionView[] = [];
  const closed: SessionView[] = [];
  engine.on('session', (v) => opened.push(v));
  engine.on('closed', (v) => closed.push(v));
  const addr = await engine.listen(spec());
  t.same(addr, { address: '127.0.0.1', port: 7000, family: 'IPv4' }, 'the bound address, from getsockname');
  t.ok(f.calls.includes('listen 10 4096') && f.calls.includes('acceptWatch 10'), 'listened and watched natively');
  t.notOk(f.calls.includes('server'), 'no Node server');
  f.accept([
    [11, '::ffff:10.0.0.5'],
    [12, '10.0.0.6'],
  ]);
  t.same(admitted, ['10.0.0.5 mptcp=true → 192.0.2.9:80', '10.0.0.6 mptcp=false → 192.0.2.9:80'], 'admitted one by one, v4-mapped unmapped');
  t.ok(f.calls.includes('connect 20 192.0.2.9:80') && f.calls.includes('spliceConnect 11 20 → 1'), 'connect started, handed to the relay');
  t.equal(engine.registry.size, 2, 'both sessions registered while connecting');
  t.equal(engine.sessions()[0]!.state, 'connecting');
  t.equal(opened.length, 0, 'no session event before the connect completes');
  f.connected(1, true);
  t.equal(opened.length, 1);
  t.equal(opened[0]!.combination, 'M-M');
  t.equal(opened[0]!.state, 'relaying');
  t.same(opened[0]!.bytes, { up: 5, down: 6 }, 'live counters from the relay');
  t.equal(engine.registry.totals.byCombination['M-M'], 1);
  f.finish(1, { up: 100, down: 200, reset: false, errno: 0 });
  t.equal(closed.length, 1);
  t.same(closed[0]!.bytes, { up: 100, down: 200 }, 'final counts');
  t.equal(released, 1, 'released once');
  t.equal(engine.registry.totals.completed, 1);
  t.equal(engine.registry.totals.bytesUp, 100);
  // the second one: reset by a side after connecting
  f.connected(2, false);
  f.finish(2, { up: 1, down: 0, reset: true, errno: 104, errnoName: 'ECONNRESET' });
  t.equal(engine.registry.totals.reset, 1, 'reset counted');
  t.equal(released, 2);
  t.equal(engine.registry.size, 0);
  await engine.close(10);
  t.ok(f.calls.includes('acceptStop') && f.calls.includes('close 10'), 'listener stopped and closed');
});

t.test('refusals: admission limit, connect timeout, connect refused, client gone first', async (t) => {
  const f = fakeIo();
  let released = 0;
  const engine = new ProxyEngine({
    io: f.io,
    admit: (info) => {
      if (info.remote.address === '10.0.0.9') throw new DuocellError('DC_POLICY_LIMIT', 'too many');
      return { release: () => released++ };
    },
  });
  const refused: string[] = [];
  engine.on('refused', (r) => refused.push(r.code));
  let opened = 0;
  engine.on('session', () => opened++);
  await engine.listen(spec());
  await engine.listen(spec({ name: 'slow', upstream: { mptcp: false, connectTimeoutMs: 30 } }));
  f.accept([[30, '10.0.0.9']]);
  t.same(refused, ['DC_POLICY_LIMIT'], 'the limit refuses');
  t.ok(f.calls.includes('closeReset 30'), 'the refused client is reset');
  t.notOk(f.calls.some((c) => c.startsWith('connect ')), 'no upstream for a refused client');
  t.equal(released, 0, 'nothing to release');
  f.accept([[31, '10.0.0.1']]);
  t.ok(f.calls.includes('spliceConnect 31 20 → 1'));
  await waitFor(() => f.calls.includes('abort 1'));
  await waitFor(() => refused.length === 2);
  t.ok(f.calls.includes('abort 1'), 'the connect timeout aborts');
  t.same(refused, ['DC_POLICY_LIMIT', 'DC_PROXY_CONNECT_TIMEOUT'], 'refused as a connect timeout');
  t.equal(released, 1, 'admission released');
  f.accept([[32, '10.0.0.2']]);
  f.finish(2, { up: 0, down: 0, reset: true, errno: 111, errnoName: 'ECONNREFUSED', before: 'server' });
  f.accept([[33, '10.0.0.3']]);
  f.finish(3, { up: 0, down: 0, reset: true, errno: 104, errnoName: 'ECONNRESET', before: 'client' });
  t.same(refused.slice(2), ['DC_PROXY_CONNECT_FAILED', 'DC_ABORTED'], 'server refused; client went first');
  t.equal(released, 3);
  t.equal(opened, 0, 'no session event for any of them');
  t.equal(engine.registry.size, 0);
  t.equal(engine.registry.totals.failed, 4);
  t.equal(engine.refusals.get('DC_PROXY_CONNECT_FAILED'), 1);
  await engine.close(10);
});

t.test('target filter and a connect that fails at once', async (t) => {
  for (const [port, code, fd] of [
    [22, 'DC_TARGET_FORBIDDEN', 40],
    [1, 'DC_PROXY_CONNECT_FAILED', 41],
  ] as const) {
    const f = fakeIo();
    const engine = new ProxyEngine({ io: f.io, targetFilter: (target) => (target.port === 22 ? { reason: 'own-address', judged: target.host } : undefined) });
    const refused: string[] = [];
    engine.on('refused', (r) => refused.push(r.code));
    await engine.listen(spec({ front: explicitFront({ host: '192.0.2.9', port }) }));
    f.accept([[fd, '10.0.0.1']]);
    t.same(refused, [code]);
    t.ok(f.calls.includes(`closeReset ${fd}`), 'client reset');
    if (port === 1) t.ok(f.calls.includes('close 20'), 'the upstream socket closed');
    t.equal(engine.registry.size, 0);
    await engine.close(10);
  }
});

t.test('transparent: the target is the local address; an M-server is remembered', async (t) => {
  const f = fakeIo();
  const remembered: string[] = [];
  const engine = new ProxyEngine({ io: f.io, onMptcpServer: (s) => remembered.push(`${s.address}:${s.port}`) });
  await engine.listen(spec({ transparent: true, front: transparentFront, upstream: { mptcp: true, mark: 7 } }));
  f.accept([[50, '10.0.0.1', '198.51.100.4', 443]]);
  t.ok(f.calls.includes('connectSocket mptcp=true mark=7'), 'the listener’s upstream options (mark)');
  t.ok(f.calls.includes('connect 20 198.51.100.4:443'), 'to the original destination');
  f.connected(1, true);
  t.same(remembered, ['198.51.100.4:443']);
  t.match(engine.sessions()[0]!.action, /remembered/);
  await engine.close(10);
  t.equal(engine.registry.size, 0, 'close aborted the live session');
});

t.test('idle sessions are aborted; EMFILE pauses and resumes; DUOCELL_FAST_PATH=0 takes the JS path', async (t) => {
  const f = fakeIo();
  const engine = new ProxyEngine({ io: f.io, idleTimeoutMs: 40 });
  await engine.listen(spec());
  f.accept([[60, '10.0.0.1']]);
  f.connected(1, false);
  f.stale = true;
  await waitFor(() => f.calls.includes('abort 1'));
  t.ok(f.calls.includes('abort 1'), 'the idle sweep aborted it');
  t.equal(engine.registry.totals.idleClosed, 1);
  f.accept([], 24);
  t.equal(engine.refusals.get('DC_PROXY_EMFILE'), 1, 'counted');
  await waitFor(() => f.resumed > 0);
  t.equal(f.resumed, 1, 'accepting resumed after the pause');
  await engine.close(10);
  process.env['DUOCELL_FAST_PATH'] = '0';
  t.teardown(() => delete process.env['DUOCELL_FAST_PATH']);
  const g = fakeIo();
  const e2 = new ProxyEngine({ io: g.io });
  await t.rejects(e2.listen(spec()), /JS path was taken/);
  t.ok(g.calls.includes('server'));
});

t.test('a connector that places sessions (proxy selection): direct ones here, the rest to the JS path', async (t) => {
  const f = fakeIo();
  const log: string[] = [];
  let released = 0;
  // port 80: on-path with another candidate behind; 81: on-path, the last; 82: off-path
  const placing: Connector = {
    name: 'select',
    connect: () => Promise.reject(new Error('not on the fast path')),
    place: (req): Placement =>
      req.target.port === 82
        ? { direct: false, resume: 'conc' }
        : {
            direct: true,
            via: 'self',
            options: { ...req.options, connectTimeoutMs: 3000 },
            more: req.target.port === 80,
            connected: () => log.push(`connected ${req.target.port}`),
            ended: () => log.push(`ended ${req.target.port}`),
            failed: (err) => (log.push(`failed ${req.target.port} ${err.code}`), req.target.port === 80 ? { resume: 'next' } : undefined),
          },
  };
  const engine = new ProxyEngine({ io: f.io, admit: () => ({ release: () => released++ }) });
  const opened: SessionView[] = [];
  engine.on('session', (v) => opened.push(v));
  await engine.listen(spec({ front: transparentFront, connector: placing, transparent: true }));
  f.accept([[11, '10.0.0.5', '192.0.2.9', 80], [12, '10.0.0.6', '192.0.2.9', 81], [13, '10.0.0.7', '192.0.2.9', 82]]);
  t.ok(f.calls.includes('spliceConnect 11 20 → 1 keep'), 'on-path with a next candidate: the relay thread keeps the client if the connect fails');
  t.ok(f.calls.includes('spliceConnect 12 21 → 2'), 'the last candidate: no keep');
  t.ok(f.calls.includes('acceptedOn 13'), 'off-path: handed to the JS path with its fd');
  t.equal(engine.fastCounts.handedOver, 0, 'the fake could not wrap it: not counted as handed over');
  t.equal(released, 1, 'the refused hand-over released its admission at once');
  f.connected(2, false);
  t.same(log, ['connected 81'], 'the candidate told of the connect');
  t.equal(opened[0]?.proxy, 'self', 'the session shows its proxy');
  t.equal(engine.fastCounts.fast, 1);
  f.finish(2, { up: 1, down: 1, reset: false, errno: 0 });
  t.same(log, ['connected 81', 'ended 81'], 'and of its end');
  // the kept client comes back: the JS path takes it on with the next candidate
  f.finish(1, { up: 0, down: 0, reset: true, errno: 111, errnoName: 'ECONNREFUSED', before: 'server', clientFd: 11 });
  t.same(log.slice(2), ['failed 80 DC_PROXY_CONNECT_FAILED'], 'the failure told to the connector');
  t.ok(f.calls.includes('acceptedOn 11'), 'the handed-back client fd goes to the JS path');
  await waitFor(() => engine.registry.size === 0);
  t.ok(f.calls.includes('closeReset 11') && f.calls.includes('closeReset 13'), 'not wrapped (the fake): reset, never leaked');
  t.equal(released, 3, 'released once each');
  await engine.close(10);
});

// The proxy engine and relay receive their socket operations (services/proxy/types.ts ProxyIo):
// driven here with a fake I/O object that claims MPTCP, reports made-up subflows and plays the
// addon's spliced relay, on plain loopback sockets and without the addon's kernel calls.
import net from 'node:net';
import t from 'tap';
import type { FullInfo, SpliceDone } from '../../src/drivers/sockets/index.js';
import { socketIo } from '../../src/drivers/sockets/io.js';
import { ProxyEngine } from '../../src/services/proxy/engine.js';
import { directConnector } from '../../src/services/proxy/connector.js';
import { explicitFront } from '../../src/services/proxy/fronts/basic.js';
import { Relay } from '../../src/services/proxy/relay.js';
import type { ProxyIo, SessionView } from '../../src/services/proxy/types.js';

process.env['DUOCELL_RELAY'] = 'js'; // the engine's relays move bytes in JS: no splice call

const nodeFd = (s: net.Socket | net.Server): number | undefined => (s as unknown as { _handle?: { fd?: number } | null })._handle?.fd;

/** A fake: sockets come from Node itself (no MPTCP, no addon); the kernel's answers are made up. */
function fakeIo(): ProxyIo & { calls: string[]; done?: (r: SpliceDone) => void } {
  const calls: string[] = [];
  const fake: ProxyIo & { calls: string[]; done?: (r: SpliceDone) => void } = {
    calls,
    createListenSocket(o) {
      calls.push(`listen mptcp=${o.mptcp}`);
      return socketIo.createListenSocket({ ...o, mptcp: false });
    },
    createConnectSocket(o) {
      calls.push(`connect mptcp=${o.mptcp}`);
      return socketIo.createConnectSocket({ ...o, mptcp: false });
    },
    socketOn: socketIo.socketOn,
    acceptedOn: socketIo.acceptedOn,
    server(onClient) {
      calls.push('server');
      return socketIo.server(onClient);
    },
    fdOf: nodeFd,
    isMptcp(fd) {
      calls.push(`isMptcp ${typeof fd}`);
      return true;
    },
    fullInfo(fd) {
      calls.push(`fullInfo ${typeof fd}`);
      return {
        info: { token: 0xbeef },
        subflows: [{ id: 1, local: { family: 4, address: '127.0.0.1', port: 1 }, remote: { family: 4, address: '192.0.2.7', port: 2 }, tcp: { bytesSent: 10n, bytesReceived: 20n, rttUs: 5000 } }],
      } as unknown as FullInfo;
    },
    spliceAvailable: () => true,
    spliceStart(cfd, sfd, onDone, up, down) {
      calls.push(`spliceStart ${typeof cfd} ${typeof sfd} up=${up?.toString() ?? ''} down=${down?.toString() ?? ''}`);
      fake.done = onDone;
      return 7;
    },
    spliceStats(id) {
      return { up: 100 + id, down: 200 + id, lastActivity: 1, clientFd: 3, serverFd: 4 };
    },
    spliceAbort(id) {
      calls.push(`spliceAbort ${id}`);
      fake.done?.({ up: 1, down: 2, reset: true, errno: 103, errnoName: 'ECONNABORTED' });
      return true;
    },
    spliceFinHold(joins, capMs) {
      calls.push(`spliceFinHold ${joins} ${capMs}`);
    },
    finHoldReady() {
      return true;
    },
    // The fast path (services/proxy/fast.ts) is off here: these tests drive the JS path's seam.
    fastAvailable: () => false,
    acceptWatch() {
      throw new Error('fake: no fast path');
    },
    listen: () => undefined,
    connectStart: () => undefined,
    sockName: () => ({ address: '127.0.0.1', port: 0 }),
    closeReset: () => undefined,
    close: () => undefined,
    spliceConnect() {
      throw new Error('fake: no fast path');
    },
  };
  return fake;
}

t.test('the engine takes its sockets and MPTCP state from the I/O it was given', async (t) => {
  const echo = net.createServer({ allowHalfOpen: true }, (c) => c.pipe(c));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  t.teardown(() => echo.close());
  const io = fakeIo();
  const engine = new ProxyEngine({ io, label: () => 'wlan' });
  t.teardown(() => engine.close(100));
  const sessions: SessionView[] = [];
  engine.on('session', (v) => sessions.push(v));
  const addr = await engine.listen({
    name: 'seam', host: '127.0.0.1', port: 0, mptcp: true,
    front: explicitFront({ host: '127.0.0.1', port: (echo.address() as net.AddressInfo).port }), connector: directConnector,
  });
  const c = net.connect(addr.port, '127.0.0.1');
  c.write('hello');
  const got = await new Promise<string>((r) => c.once('data', (d) => r(d.toString())));
  t.equal(got, 'hello', 'bytes relayed both ways');
  t.equal(sessions.length, 1);
  const v = sessions[0]!;
  t.equal(v.client.mptcp, true, 'the fake said the client speaks MPTCP');
  t.equal(v.combination, 'M-N');
  t.same(v.tokens, { client: 0xbeef }, 'token from the fake MPTCP_FULL_INFO');
  t.match(v.subflows, [{ side: 'client', id: 1, remote: { address: '192.0.2.7', port: 2 }, access: 'wlan', bytesSent: 10, bytesReceived: 20, rttUs: 5000 }]);
  t.ok(io.calls.includes('listen mptcp=true'), 'the listener came from the I/O');
  t.ok(io.calls.includes('connect mptcp=false'), 'the upstream too');
  t.ok(io.calls.includes('isMptcp number') && io.calls.includes('fullInfo number'));
  c.destroy();
});

t.test('the relay hands both fds to the injected splice and follows it to the end', async (t) => {
  const server = net.createServer();
  const accepted: net.Socket[] = [];
  server.on('connection', (s) => accepted.push(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  const a = net.connect(port, '127.0.0.1');
  const b = net.connect(port, '127.0.0.1');
  await Promise.all([a, b].map((s) => new Promise((r) => s.once('connect', r))));
  a.on('error', () => undefined);
  b.on('error', () => undefined);
  const io = fakeIo();
  const relay = new Relay(a, b, io, 'splice');
  t.equal(relay.mode, 'splice');
  t.same(io.calls, ['spliceStart number number up= down='], 'both fds handed over');
  t.ok(a.destroyed && b.destroyed, "Node's handles closed after the hand-over");
  t.same(relay.stats, { up: 107, down: 207, lastActivity: 1 }, 'live counts from the splice session');
  t.equal(relay.fd('client'), 3, "the session's own fds for getsockopt");
  relay.abort();
  const r = await relay.done;
  t.same(io.calls.slice(1), ['spliceAbort 7']);
  t.same(r, { reset: true }, 'an abort is a reset without an error');
  t.same(relay.stats, { up: 1, down: 2, lastActivity: relay.stats.lastActivity }, 'final counts');
  for (const s of accepted) s.destroy();
});

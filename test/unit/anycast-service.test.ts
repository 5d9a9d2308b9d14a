import t from 'tap';
import { AnycastService, type RoutingStatus } from '../../src/services/anycast/index.js';
import { parseBfdSessions, parseBirdProtocols, birdStatus } from '../../src/drivers/bird/status.js';
import { SAMPLES, fuzz } from '../../bench/fuzz/bird.js';
import { anycastProfile, startAnycast, tcpReachable } from '../../src/wiring/anycast.js';
import type { BoardProfile } from '../../src/core/board.js';
import net from 'node:net';

t.test("BIRD's replies: protocols and BFD sessions", async (t) => {
  t.same(parseBirdProtocols(SAMPLES[0]!).map((p) => [p.name, p.proto, p.state, p.info]), [
    ['device1', 'Device', 'up', ''],
    ['bfd1', 'BFD', 'up', ''],
    ['anycast', 'Static', 'up', ''],
    ['edge', 'BGP', 'up', 'Established'],
  ]);
  t.same(parseBirdProtocols(SAMPLES[1]!), [{ name: 'edge', proto: 'BGP', state: 'start', info: 'Active Socket: Connection refused' }], 'a date in the Since column');
  t.same(parseBfdSessions(SAMPLES[2]!), [
    { peer: '10.71.1.1', interface: 'eth0', state: 'Up' },
    { peer: 'fd00::1', interface: 'eth1', state: 'Down' },
  ]);
  t.same(parseBirdProtocols(SAMPLES[2]!), [], 'a BFD reply has no protocol rows');
  const calls: string[][] = [];
  const st = await birdStatus('/x.ctl', async (_s, a) => {
    calls.push([...a]);
    if (a[1] === 'bfd') throw new Error('No protocols match');
    return SAMPLES[0]!;
  });
  t.equal(st.protocols.length, 4);
  t.same(st.bfd, [], 'no BFD protocol: no sessions, not an error');
  t.same(calls, [['show', 'protocols'], ['show', 'bfd', 'sessions']]);
});

t.test('fuzz: BIRD reply parsers never throw and never return empty fields', async (t) => {
  const res = fuzz(Number(process.env.DUOCELL_FUZZ_BIRD ?? 20_000), 3);
  t.ok(res.rows > 1000, `rows parsed from ${res.inputs} inputs: ${res.rows}`);
});

const up: RoutingStatus = {
  protocols: [
    { name: 'anycast', proto: 'Static', state: 'up', info: '' },
    { name: 'edge', proto: 'BGP', state: 'up', info: 'Established' },
  ],
  bfd: [{ peer: '10.0.0.1', interface: 'eth0', state: 'Up' }],
};

t.test('anycast service: announce only while healthy, withdraw first on stop, BGP/BFD problems reported', async (t) => {
  const calls: string[] = [];
  let listeners = true;
  let status: RoutingStatus = up;
  const s = new AnycastService({
    protocol: 'anycast',
    ops: { announce: async () => void calls.push('announce'), withdraw: async () => void calls.push('withdraw'), status: async () => status },
    checks: { listeners: () => listeners },
    intervalMs: 60_000,
    graceMs: 0,
  });
  await s.start();
  t.same(calls, ['announce']);
  t.equal(s.view().healthy, true, `healthy: ${JSON.stringify(s.view().problems)}`);
  listeners = false;
  await s.tick();
  t.same(calls, ['announce', 'withdraw'], 'a failing check withdraws');
  t.equal(s.state, 'withdrawn');
  t.match(s.view().problems, ['check listeners fails', 'not announced (withdrawn)']);
  await s.tick();
  t.same(calls, ['announce', 'withdraw'], 'withdrawn once, not again');
  listeners = true;
  await s.tick();
  t.same(calls, ['announce', 'withdraw', 'announce'], 'passing again: announced again');
  status = { protocols: [{ name: 'anycast', proto: 'Static', state: 'up', info: '' }, { name: 'edge', proto: 'BGP', state: 'start', info: 'Active Socket: Connection refused' }], bfd: [{ peer: '10.0.0.1', interface: 'eth0', state: 'Down' }] };
  await s.tick();
  const v = s.view();
  t.equal(v.healthy, false, 'a BGP session that is not established is a problem, not silence');
  t.match(v.problems, ['BGP edge: start Active Socket: Connection refused', 'BFD 10.0.0.1: Down']);
  status = { protocols: [{ name: 'edge', proto: 'BGP', state: 'up', info: 'Established' }], bfd: [] };
  await s.tick();
  t.match(s.view().problems, ['protocol anycast unknown to the routing daemon'], 'a protocol BIRD does not have');
  status = { protocols: [{ name: 'anycast', proto: 'Static', state: 'up', info: '' }], bfd: [] };
  await s.tick();
  t.match(s.view().problems, ['no BGP session configured']);
  await s.stop();
  t.same(calls.at(-1), 'withdraw', 'stop withdraws');
  t.equal(s.state, 'draining');
  await s.tick();
  t.equal(calls.filter((c) => c === 'announce').length, 2, 'no announcement once draining');
});

t.test('anycast service: a check failing at start does not announce; errors are reported', async (t) => {
  const calls: string[] = [];
  const s = new AnycastService({
    protocol: 'p',
    ops: { announce: async () => void calls.push('announce'), withdraw: async () => void calls.push('withdraw'), status: async () => Promise.reject(new Error('birdc: connection refused')) },
    checks: { upstream: async () => Promise.reject(new Error('boom')) },
    intervalMs: 60_000,
    graceMs: 0,
  });
  await s.start();
  t.same(calls, []);
  t.match(s.view().problems, ['routing daemon: birdc: connection refused', 'check upstream fails', 'not announced (withdrawn)']);
  await s.stop();
  t.same(calls, [], 'never announced: nothing to withdraw');
});

t.test('anycast profile: intervals and the upstream check', async (t) => {
  const b = (anycast: unknown): BoardProfile => ({ name: 'x', preset: 'concentrator', anycast }) as unknown as BoardProfile;
  t.same(anycastProfile(b({ protocol: 'a', intervalMs: 500, graceMs: 0, upstreamCheck: { host: '192.0.2.1', port: 80 } })), { protocol: 'a', intervalMs: 500, graceMs: 0, upstreamCheck: { host: '192.0.2.1', port: 80 } });
  t.throws(() => anycastProfile(b({ protocol: 'a', intervalMs: -1 })), { code: 'DC_CONFIG_INVALID' });
  t.throws(() => anycastProfile(b({ protocol: 'a', upstreamCheck: { host: 'example.org', port: 80 } })), { code: 'DC_CONFIG_INVALID' });
  const srv = net.createServer((c) => c.destroy());
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  t.equal(await tcpReachable('127.0.0.1', port), true);
  await new Promise((r) => srv.close(r));
  t.equal(await tcpReachable('127.0.0.1', port), false, 'nothing listening: unreachable');
  const calls: string[] = [];
  const stop = await startAnycast({ protocol: 'p', upstreamCheck: { host: '127.0.0.1', port } }, { announce: async () => void calls.push('a'), withdraw: async () => void calls.push('w') });
  t.same(calls, [], 'upstream unreachable at start: not announced');
  t.equal(stop.view().checks.upstream, false);
  await stop();
});

t.test('a signal endpoint whose port a crashed run still holds is retried (EADDRINUSE), other errors are not', async (t) => {
  const { addEndpointRetrying } = await import('../../src/wiring/explicit.js');
  const { DuocellError } = await import('../../src/core/errors.js');
  let tries = 0;
  const busy = (): Promise<string> => (++tries < 3 ? Promise.reject(new DuocellError('DC_NETLINK_ERROR' as never, 'kernel said errno 98', { errno: 98 })) : Promise.resolve('ok'));
  t.equal(await addEndpointRetrying(busy, 5000, 5), 'ok');
  t.equal(tries, 3, 'retried until the port was free');
  let other = 0;
  await t.rejects(addEndpointRetrying(() => (other++, Promise.reject(new DuocellError('DC_NETLINK_ERROR' as never, 'kernel said errno 22', { errno: 22 }))), 5000, 5), /errno 22/);
  t.equal(other, 1, 'another errno: no retry');
  await t.rejects(addEndpointRetrying(() => Promise.reject(new DuocellError('DC_NETLINK_ERROR' as never, 'busy', { errno: 98 })), 30, 5), /busy/, 'gives up after forMs');
});

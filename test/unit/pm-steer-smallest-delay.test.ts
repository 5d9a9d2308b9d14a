import t from 'tap';
import type { PathView } from '../../src/services/paths/index.js';
import { SteeringController, baseRttMs, pickFastest, policyProblem, STEER_MODES, type SteerCounters } from '../../src/services/pm/index.js';
import { CELL, FakeBackend, FakePaths, FakeSessions, WLAN, session, sf } from '../helpers/steer-fakes.js';

// smallest-delay for MPTCP (issue 18 item 4) with fake RTTs: the lowest-RTT access carries an
// application-limited group alone; a standing queue on it (a bulk, cwnd-limited flow) adds the
// other access; the group's rate falling releases it.

t.test('every mode is a module with the hooks the controller needs', async (t) => {
  t.same(Object.keys(STEER_MODES).sort(), ['active-standby', 'priority', 'ratio', 'smallest-delay']);
  for (const [name, m] of Object.entries(STEER_MODES)) {
    t.equal(m.name, name);
    t.equal(typeof m.carry, 'function', `${name} has carry`);
  }
  t.equal(STEER_MODES['active-standby'].tick, undefined, 'active-standby measures nothing');
  t.equal(policyProblem({ mode: 'smallest-delay', ratio: { cellular: 0, wlan: 0 } }), undefined);
});

t.test('pickFastest: lowest base RTT, with a margin against flapping', async (t) => {
  t.equal(pickFastest(undefined, {}, 'wlan'), 'wlan', 'nothing measured: the fallback');
  t.equal(pickFastest('cellular', {}, 'wlan'), 'cellular', 'nothing measured: keep the current one');
  t.equal(pickFastest(undefined, { cellular: 8, wlan: 40 }, 'wlan'), 'cellular');
  t.equal(pickFastest(undefined, { wlan: 40 }, 'cellular'), 'wlan', 'only one measured');
  t.equal(pickFastest('wlan', { cellular: 9.5, wlan: 10 }, 'wlan'), 'wlan', 'within the margin: no switch');
  t.equal(pickFastest('wlan', { cellular: 8, wlan: 10 }, 'wlan'), 'cellular', 'beyond the margin: switch');
  t.equal(baseRttMs({ rtt: { cellular: { meanMs: 30, minMs: 9 } }, pathRttMs: { cellular: 8.5 } }, 'cellular'), 8.5, 'the lower of the probe and TCP min_rtt');
  t.equal(baseRttMs({ rtt: {}, pathRttMs: { wlan: 0 } }, 'wlan'), undefined, 'zero is no measurement');
});

class RttPaths extends FakePaths {
  rtt: { cellular?: number; wlan?: number } = {};
  override list(): PathView[] {
    return (['cellular', 'wlan'] as const).map((a) => ({ name: a, access: a, state: 'up', addresses: [a === 'cellular' ? CELL : WLAN], ...(this.rtt[a] === undefined ? {} : { rttMs: this.rtt[a] }) }) as unknown as PathView);
  }
}

function rig() {
  const ss = new FakeSessions();
  const be = new FakeBackend();
  const paths = new RttPaths();
  let now = 0;
  // per access: bytes so far, smoothed RTT, minimum RTT
  const link = { cellular: { bytes: 0, rtt: 40, min: 40 }, wlan: { bytes: 0, rtt: 8, min: 8 } };
  ss.list = [session(1, [sf(1, CELL, 1001), sf(1, WLAN, 2001)])];
  const counters = async (): Promise<SteerCounters[]> => ss.list.flatMap((s) => s.subflows.map((f) => {
    const l = f.saddr === CELL ? link.cellular : link.wlan;
    return { token: s.token, saddr: f.saddr, sport: f.sport, daddr: f.daddr, dport: f.dport, bytesSent: 0, bytesReceived: l.bytes, rttMs: l.rtt, minRttMs: l.min };
  }));
  const c = new SteeringController({ sessions: ss, backend: be, paths, counters, now: () => now, policy: () => ({ mode: 'smallest-delay', ratio: { cellular: 50, wlan: 50 }, preferred: 'cellular' }) });
  const run = async (ms: number, perTick: { cellular: number; wlan: number }): Promise<void> => {
    for (let x = 0; x < ms; x += 250) {
      now += 250;
      link.cellular.bytes += perTick.cellular;
      link.wlan.bytes += perTick.wlan;
      await c.tick();
    }
  };
  return { ss, be, paths, link, c, run };
}

t.test('an application-limited group stays on the 8 ms access', async (t) => {
  const { be, link, c, run } = rig();
  await run(250, { cellular: 0, wlan: 0 });
  t.same(be.calls, [`flags 1 ${CELL}:1001 backup`], 'the 40 ms cellular subflow is made backup although cellular is the preferred access');
  await run(5000, { cellular: 0, wlan: 20_000 });
  t.same(be.calls, [`flags 1 ${CELL}:1001 backup`], 'no queue on WLAN: nothing else changes');
  t.same(c.groups()[0], { group: 'default', mode: 'smallest-delay', overflow: false, fastest: 'wlan', share: 0, windowBytes: 240_000, connections: 1, placements: { both: 0, cellular: 0, wlan: 0, fixed: 0 } });
  // the paths swap delays: the probe says cellular is now 8 ms
  link.cellular.min = 8;
  link.cellular.rtt = 8;
  link.wlan.min = 40;
  link.wlan.rtt = 40;
  be.calls = [];
  await run(250, { cellular: 0, wlan: 5000 });
  t.same(be.calls.sort(), [`flags 1 ${CELL}:1001 -`, `flags 1 ${WLAN}:2001 backup`], 'moved to the new fastest access');
});

t.test('a bulk flow gets both accesses while the fastest one has a standing queue, and gives one back after', async (t) => {
  const { be, link, c, run } = rig();
  await run(500, { cellular: 0, wlan: 50_000 });
  be.calls = [];
  link.wlan.rtt = 35; // 27 ms of queue above an 8 ms minimum: saturated
  await run(750, { cellular: 0, wlan: 200_000 });
  t.same(be.calls, [], 'not before the hold time');
  await run(1000, { cellular: 0, wlan: 200_000 });
  t.same(be.calls, [`flags 1 ${CELL}:1001 -`], 'saturated for a second: the 40 ms access is added');
  t.equal(c.groups()[0]!.overflow, true);
  t.equal(c.groups()[0]!.fastest, 'wlan', 'the queue does not make WLAN look slower than cellular');
  // the transfer ends: the rate falls well below what WLAN alone carried
  be.calls = [];
  link.wlan.rtt = 8;
  await run(6000, { cellular: 0, wlan: 1000 });
  t.same(be.calls, [`flags 1 ${CELL}:1001 backup`], 'released: back on the fastest access only');
  t.equal(c.groups()[0]!.overflow, false);
});

t.test('the paths service RTTs are used before any subflow reports one', async (t) => {
  const { be, paths, link, run } = rig();
  link.cellular.rtt = 0;
  link.wlan.rtt = 0; // counters without RTT
  paths.rtt = { cellular: 8, wlan: 40 };
  await run(250, { cellular: 0, wlan: 0 });
  t.same(be.calls, [`flags 1 ${WLAN}:2001 backup`], 'cellular (8 ms by probe) carries, WLAN is backup');
});

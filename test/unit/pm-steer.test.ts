import t from 'tap';
import type { MptcpPm } from '../../src/drivers/netlink/mptcp-pm.js';
import type { SockDiag } from '../../src/drivers/netlink/sock-diag.js';
import type { PathsService, PathView } from '../../src/services/paths/index.js';
import {
  SteeringController, backupFlags, initialRatioState, placementsAt, policyProblem, priorityStep, ratioStep,
  type PmService, type PmConnectionView, type SteerBackend, type SteerCounters, type SteeringOptions, type SteerPaths, type SteerPolicy, type SteerSessions,
} from '../../src/services/pm/index.js';
import { CELL, FakeBackend, FakePaths, FakeSessions, WLAN, session, sf } from '../helpers/steer-fakes.js';

// the real service, driver and paths service satisfy the controller's contracts (compile-time check)
export const contracts = (pm: PmService, nl: MptcpPm, diag: SockDiag, paths: PathsService): [SteerSessions, SteerBackend, SteeringOptions['counters'], SteerPaths] => [pm, nl, () => diag.subflows(), paths];

t.test('policyProblem refuses bad policies', async (t) => {
  t.equal(policyProblem({ mode: 'ratio', ratio: { cellular: 30, wlan: 70 } }), undefined);
  t.equal(policyProblem({ mode: 'active-standby', ratio: { cellular: 0, wlan: 0 }, preferred: 'cellular' }), undefined, 'ratio not checked outside ratio mode');
  t.match(policyProblem(null), /not an object/);
  t.match(policyProblem({ mode: 'round-robin' }), /unknown steering mode/);
  t.match(policyProblem({ mode: 'ratio', ratio: { cellular: 30, wlan: 60 } }), /does not add up/);
  t.match(policyProblem({ mode: 'ratio', ratio: { cellular: -10, wlan: 110 } }), /≥ 0/);
  t.match(policyProblem({ mode: 'ratio', ratio: { cellular: Number.NaN, wlan: 100 } }), /numbers/);
  t.match(policyProblem({ mode: 'ratio' }), /ratio missing/);
  t.match(policyProblem({ mode: 'priority', ratio: { cellular: 50, wlan: 50 }, preferred: 'ethernet' }), /unknown access/);
  t.match(policyProblem({ mode: 'priority', ratio: { cellular: 50, wlan: 50 }, group: 7 }), /group/);
});

t.test('the ladder of placements', async (t) => {
  t.same(placementsAt(0, 3), ['wlan', 'wlan', 'wlan']);
  t.same(placementsAt(2, 3), ['both', 'both', 'wlan']);
  t.same(placementsAt(3, 3), ['both', 'both', 'both']);
  t.same(placementsAt(5, 3), ['cellular', 'cellular', 'both']);
  t.same(placementsAt(6, 3), ['cellular', 'cellular', 'cellular']);
  t.same(placementsAt(99, 2), ['cellular', 'cellular'], 'clamped');
  t.same(placementsAt(-4, 2), ['wlan', 'wlan'], 'clamped');
  t.same(placementsAt(1, 0), []);
});

t.test('ratioStep: deadband, settle, direction, doubling, bounds', async (t) => {
  const base = { target: 0.3, n: 20, deadband: 0.01, settleMs: 250, lookaheadMs: 0 };
  let s = initialRatioState(20);
  t.equal(s.level, 20, 'starts with every connection on both accesses');
  // no measurement yet: hold
  t.equal(ratioStep(s, { ...base, share: undefined, now: 0 }).level, 20);
  // within the deadband: hold
  t.equal(ratioStep(s, { ...base, share: 0.305, now: 0 }).level, 20);
  // 10 points too much cellular: down by ceil(0.1 × 20) = 2
  s = ratioStep(s, { ...base, share: 0.4, fast: 0.4, now: 1000 });
  t.equal(s.level, 18);
  t.equal(s.hi, 20, 'level 20 was seen to give too much');
  // inside the settle time: hold
  t.equal(ratioStep(s, { ...base, share: 0.4, fast: 0.4, now: 1100 }).level, 18);
  // a second move the same way waits for the first one's effect
  t.equal(ratioStep(s, { ...base, share: 0.4, now: 1300 }).level, 18);
  // the error does not shrink (greedy flows): the step doubles until the bottom
  s = ratioStep(s, { ...base, share: 0.4, fast: 0.4, now: 1300 });
  t.equal(s.level, 14);
  s = ratioStep(s, { ...base, share: 0.4, fast: 0.4, now: 1600 });
  t.equal(s.level, 6);
  s = ratioStep(s, { ...base, share: 0.4, fast: 0.4, now: 1900 });
  t.equal(s.level, 0);
  t.equal(s.hi, 6);
  // too little now: up one; level 1 is seen to give too much → it never climbs to 1+ again…
  s = ratioStep(s, { ...base, share: 0.25, fast: 0.0, now: 2200 });
  t.equal(s.level, 1);
  s = ratioStep(s, { ...base, share: 0.35, fast: 0.4, now: 2500 });
  t.equal(s.level, 0);
  t.equal(s.hi, 1);
  s = ratioStep(s, { ...base, share: 0.2, fast: 0.0, now: 2800 });
  t.equal(s.level, 1, '…so it alternates between 0 and 1');
  s = ratioStep(s, { ...base, share: 0.2, fast: 0.1, now: 3100 });
  t.equal(s.level, 1, 'capped below the level seen to give too much');
  // going up never doubles; a move long after the last one does not double either
  const u = ratioStep({ ...initialRatioState(20), level: 0, dir: 1, step: 2, lastError: 0.1, lastMoveAt: 0 }, { ...base, share: 0.2, fast: 0.0, now: 300 });
  t.equal(u.level, 2, 'up by ceil(0.1 × 20), not doubled');
  const d = ratioStep({ ...initialRatioState(20), level: 10, dir: -1, step: 4, lastError: 0.1, lastMoveAt: 0 }, { ...base, share: 0.4, fast: 0.4, now: 60_000 });
  t.equal(d.level, 8, 'down by ceil(0.1 × 20) again after a pause');
  // targets at the ends need no loop
  t.equal(ratioStep(initialRatioState(4), { ...base, n: 4, target: 0, share: 0.5, now: 0 }).level, 0);
  t.equal(ratioStep(initialRatioState(4), { ...base, n: 4, target: 1, share: 0.5, now: 0 }).level, 8);
  t.equal(ratioStep(initialRatioState(0), { ...base, n: 0, share: 0.5, now: 0 }).level, 0);
  // bounds are forgotten after boundsMs
  const old = { ...initialRatioState(4), level: 2, hi: 3, boundsAt: 0 };
  t.equal(ratioStep(old, { ...base, n: 4, share: 0.1, fast: 0.1, now: 10_000, boundsMs: 5000 }).hi, 9);
  // level 0 is never a bound (what it shows right after a move is queues draining)
  const zero = ratioStep({ ...initialRatioState(4), level: 0, boundsAt: 0 }, { ...base, n: 4, share: 0.5, fast: 0.5, now: 1000 });
  t.equal(zero.hi, 9);
});

t.test('backupFlags never strands a connection', async (t) => {
  const sfs = [
    { key: 'c', access: 'cellular' as const, alive: true },
    { key: 'w', access: 'wlan' as const, alive: true },
    { key: 'u', access: undefined, alive: true },
  ];
  t.same([...backupFlags(sfs, new Set(['wlan']))], [['c', true], ['w', false]], 'cellular backup, unknown untouched');
  t.same([...backupFlags(sfs, new Set(['cellular', 'wlan']))], [['c', false], ['w', false]]);
  const wlanDead = [{ ...sfs[0]! }, { ...sfs[1]!, alive: false }];
  t.same([...backupFlags(wlanDead, new Set(['wlan']))], [['c', false], ['w', true]], 'the carrier is gone: the live one carries');
});

t.test('priorityStep: overflow on a standing queue, release with hysteresis', async (t) => {
  let s = { overflow: false, since: 0, capacity: 0 };
  const at = (now: number, rttMs: number, preferredRate: number, totalRate: number) => (s = priorityStep(s, { now, rttMs, minRttMs: 2, preferredRate, totalRate, holdMs: 1000 }));
  at(0, 3, 1, 1);
  t.notOk(s.overflow, 'no queue');
  at(100, 50, 3, 3);
  t.notOk(s.overflow, 'queue, but not for long enough');
  at(1200, 50, 3.5, 3.5);
  t.ok(s.overflow, 'queue for over holdMs: secondary added');
  t.equal(s.capacity, 3.5);
  at(1500, 5, 2, 2.5);
  t.ok(s.overflow, 'load still above 80 % of capacity');
  at(1600, 5, 1, 2);
  t.ok(s.overflow, 'low, but not for long enough');
  at(2700, 5, 1, 2);
  t.notOk(s.overflow, 'released');
  t.notOk(priorityStep(s, { now: 9999, rttMs: undefined, minRttMs: undefined, preferredRate: 0, totalRate: 0, holdMs: 0 }).overflow, 'no RTT: no overflow');
});

// --- the controller with fakes ------------------------------------------------------------------

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

t.test('active-standby: standby backup at once, failover on path down, back when the active returns', async (t) => {
  const ss = new FakeSessions();
  const be = new FakeBackend();
  const paths = new FakePaths();
  let now = 0;
  const c = new SteeringController({ sessions: ss, backend: be, paths, policy: () => ({ mode: 'active-standby', ratio: { cellular: 50, wlan: 50 }, preferred: 'wlan' }), now: () => now });
  t.teardown(() => c.stop());
  c.start();
  ss.list = [session(1, [sf(1, CELL, 1000)])];
  ss.emit('subflow', { type: 'opened', subflow: ss.list[0]!.subflows[0]! });
  await flush();
  t.same(be.calls, [], 'the only subflow is never made backup, even on the standby access');
  ss.list = [session(1, [sf(1, CELL, 1000), sf(1, WLAN, 2000)])];
  ss.emit('subflow', { type: 'opened', subflow: ss.list[0]!.subflows[1]! });
  await flush();
  t.same(be.calls, [`flags 1 ${CELL}:1000 backup`], 'standby flagged the moment the active subflow joins');
  be.calls = [];
  // the WLAN path goes down
  now = 100;
  paths.emit('event', { type: 'path-down', path: { name: 'wifi', access: 'wlan', addresses: [WLAN] } as unknown as PathView });
  await flush();
  await flush();
  t.same(be.calls.sort(), [`destroy 1 ${WLAN}:2000`, `flags 1 ${CELL}:1000 -`], 'standby cleared, the dead subflow destroyed');
  t.equal(c.stats().failovers, 1);
  t.equal(c.stats().subflowsDestroyed, 1);
  t.equal(typeof c.stats().lastFailoverMs, 'number');
  // it comes back and a new WLAN subflow joins
  be.calls = [];
  ss.list = [session(1, [sf(1, CELL, 1000), sf(1, WLAN, 2000, 'closed')])];
  paths.emit('event', { type: 'path-up', path: { name: 'wifi', access: 'wlan', addresses: [WLAN] } as unknown as PathView });
  await flush();
  t.same(be.calls, [], 'path up alone changes nothing');
  ss.list = [session(1, [sf(1, CELL, 1000), sf(1, WLAN, 2000, 'closed'), sf(1, WLAN, 2001)])];
  ss.emit('subflow', { type: 'opened', subflow: ss.list[0]!.subflows[2]! });
  await flush();
  t.same(be.calls, [`flags 1 ${CELL}:1000 backup`], 'standby again');
});

t.test('active-standby: the active subflows closing also fails over', async (t) => {
  const ss = new FakeSessions();
  const be = new FakeBackend();
  const c = new SteeringController({ sessions: ss, backend: be, policy: () => ({ mode: 'active-standby', ratio: { cellular: 50, wlan: 50 } }) });
  t.teardown(() => c.stop());
  c.start();
  ss.list = [session(2, [sf(2, CELL, 1000), sf(2, WLAN, 2000)])];
  ss.emit('subflow', { type: 'opened', subflow: ss.list[0]!.subflows[1]! });
  await flush();
  be.calls = [];
  ss.list = [session(2, [sf(2, CELL, 1000), sf(2, WLAN, 2000, 'closed')])];
  ss.emit('subflow', { type: 'closed', subflow: ss.list[0]!.subflows[1]! });
  await flush();
  await flush();
  t.same(be.calls, [`flags 2 ${CELL}:1000 -`]);
  t.equal(c.stats().failovers, 1);
});

t.test('ratio: too much cellular moves connections to WLAN only', async (t) => {
  const ss = new FakeSessions();
  const be = new FakeBackend();
  let now = 0;
  const bytes = new Map<number, { cell: number; wlan: number }>();
  ss.list = [1, 2, 3, 4].map((k) => session(k, [sf(k, CELL, 1000 + k), sf(k, WLAN, 2000 + k)]));
  for (const k of [1, 2, 3, 4]) bytes.set(k, { cell: 0, wlan: 0 });
  const counters = async (): Promise<SteerCounters[]> => ss.list.flatMap((s) => s.subflows.map((f) => ({
    token: s.token, saddr: f.saddr, sport: f.sport, daddr: f.daddr, dport: f.dport, bytesSent: 0, bytesReceived: f.saddr === CELL ? bytes.get(s.token)!.cell : bytes.get(s.token)!.wlan,
  })));
  const placements: string[] = [];
  const c = new SteeringController({ sessions: ss, backend: be, counters, now: () => now, policy: () => ({ mode: 'ratio', ratio: { cellular: 20, wlan: 80 }, group: 'alice' }), lookaheadMs: 0 });
  c.on('placement', (p) => placements.push(`${p.token}:${p.placement}`));
  // every connection carries 50:50 while it has both accesses, WLAN only otherwise
  for (let i = 0; i < 40; i++) {
    now += 250;
    for (const s of ss.list) {
      const b = bytes.get(s.token)!;
      const cellBackup = be.calls.filter((x) => x.startsWith(`flags ${s.token} ${CELL}`)).at(-1)?.endsWith('backup') === true;
      b.cell += cellBackup ? 0 : 50_000;
      b.wlan += cellBackup ? 100_000 : 50_000;
    }
    await c.tick();
  }
  const g = c.groups()[0]!;
  t.equal(g.group, 'alice');
  t.equal(g.target, 20);
  t.ok(g.share !== undefined && Math.abs(g.share - 20) <= 8, `share ${g.share} near 20 %`);
  t.ok(g.placements.wlan >= 1 && g.placements.both >= 1, `some connections WLAN only, some both: ${JSON.stringify(g.placements)}`);
  t.ok(c.stats().moves >= 1);
  t.ok(placements.some((p) => p.endsWith(':wlan')));
  t.ok(be.calls.every((x) => x.includes(CELL)), 'only cellular subflows are touched (20 % < natural 50 %)');
});

t.test('bad input: bad policies, throwing policy, EINVAL, bad options', async (t) => {
  const ss = new FakeSessions();
  const be = new FakeBackend();
  ss.list = [session(5, [sf(5, CELL, 1000), sf(5, WLAN, 2000)]), session(6, [sf(6, CELL, 1001), sf(6, WLAN, 2001)]), session(7, [sf(7, CELL, 1002), sf(7, WLAN, 2002)])];
  const pol = (s: PmConnectionView): SteerPolicy | undefined => {
    if (s.token === 5) return { mode: 'ratio', ratio: { cellular: 90, wlan: 90 } };
    if (s.token === 6) throw new Error('store closed');
    return { mode: 'active-standby', ratio: { cellular: 50, wlan: 50 } };
  };
  be.fail = (token) => (token === 7 ? 22 : undefined);
  const c = new SteeringController({ sessions: ss, backend: be, policy: pol, counters: async () => { throw new Error('sock_diag gone'); } });
  for (let i = 0; i < 6; i++) await c.tick();
  const st = c.stats();
  t.ok(st.badPolicies >= 2, 'bad ratio and a throwing policy counted');
  t.equal(be.calls.length, 0, 'nothing sent for them');
  t.equal(st.unsupported, 1, 'EINVAL four times on a connection never accepted: not under the userspace PM');
  const before = st.commandFailures;
  await c.tick();
  t.equal(c.stats().commandFailures, before, 'and not tried again');
  t.throws(() => new SteeringController({ sessions: ss, backend: be, policy: pol, intervalMs: 0 }), { code: 'DC_CONFIG_INVALID' });
  t.throws(() => new SteeringController({ sessions: ss, backend: be, policy: pol, windowMs: Number.NaN }), { code: 'DC_CONFIG_INVALID' });
});

t.test('EINVAL on a connection that accepted flags before is a gone subflow, not unsupported', async (t) => {
  const ss = new FakeSessions();
  const be = new FakeBackend();
  ss.list = [session(8, [sf(8, CELL, 1000), sf(8, WLAN, 2000)])];
  const c = new SteeringController({ sessions: ss, backend: be, policy: () => ({ mode: 'active-standby', ratio: { cellular: 50, wlan: 50 } }) });
  await c.tick();
  t.equal(be.calls.length, 1);
  be.fail = () => 22;
  ss.list = [session(8, [sf(8, CELL, 1000), sf(8, WLAN, 2000), sf(8, CELL, 1003)])];
  for (let i = 0; i < 6; i++) await c.tick();
  t.equal(c.stats().unsupported, 0);
  t.ok(c.stats().commandFailures >= 4, 'retried each tick');
});

t.test('the policy function is asked once per connection per tick', async (t) => {
  const ss = new FakeSessions();
  const be = new FakeBackend();
  ss.list = [1, 2, 3].map((k) => session(k, [sf(k, CELL, 1000 + k), sf(k, WLAN, 2000 + k)]));
  let asked = 0;
  const c = new SteeringController({ sessions: ss, backend: be, policy: () => (asked++, { mode: 'active-standby', ratio: { cellular: 50, wlan: 50 } }) });
  await c.tick();
  c.groups();
  t.equal(asked, 3);
  await c.tick();
  t.equal(asked, 6, 'asked again on the next tick (a changed policy takes effect)');
});

t.test('no M-session: no counters dump (sock_diag lists every TCP socket of the box)', async (t) => {
  const ss = new FakeSessions();
  let dumps = 0;
  const counters = async (): Promise<SteerCounters[]> => {
    dumps++;
    return [];
  };
  const c = new SteeringController({ sessions: ss, backend: new FakeBackend(), counters, policy: () => ({ mode: 'ratio', ratio: { cellular: 20, wlan: 80 } }) });
  for (let i = 0; i < 4; i++) await c.tick();
  t.equal(dumps, 0, 'four ticks without a session, no dump');
  ss.list = [session(9, [sf(9, CELL, 1000), sf(9, WLAN, 2000)])];
  await c.tick();
  t.equal(dumps, 1, 'with one, the tick measures again');
  t.equal(c.stats().ticks, 5);
});

t.test('a path down matches its subflows by address value, whatever the spelling (IPv4-mapped on the :: listener)', async (t) => {
  const ss = new FakeSessions();
  const be = new FakeBackend();
  const paths = new FakePaths();
  const c = new SteeringController({ sessions: ss, backend: be, paths, policy: () => ({ mode: 'active-standby', ratio: { cellular: 50, wlan: 50 }, preferred: 'wlan' }), now: () => 0 });
  t.teardown(() => c.stop());
  c.start();
  // the kernel writes a dual-stack listener's subflows in hex: 10.0.2.1 is ::ffff:a00:201
  const mappedWlan = '::ffff:a00:201';
  const mappedCell = '::FFFF:10.0.1.1';
  ss.list = [session(1, [{ ...sf(1, CELL, 1000), saddr: mappedCell, access: 'cellular' }, { ...sf(1, WLAN, 2000), saddr: mappedWlan, access: 'wlan' }])];
  ss.emit('subflow', { type: 'opened', subflow: ss.list[0]!.subflows[1]! });
  await flush();
  be.calls = [];
  paths.emit('event', { type: 'path-down', path: { name: 'wifi', access: 'wlan', addresses: [WLAN] } as unknown as PathView });
  await flush();
  await flush();
  t.ok(be.calls.includes(`destroy 1 ${mappedWlan}:2000`), `the WLAN subflow is destroyed although the path names it ${WLAN} (calls: ${be.calls.join(', ')})`);
  t.notOk(be.calls.some((x) => x.startsWith('destroy') && x.includes(':1000')), 'the cellular subflow is kept');
  t.equal(c.stats().subflowsDestroyed, 1);
});

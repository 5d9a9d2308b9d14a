// Pacing the cellular egress in ratio mode (src/services/pm/steer/pace.ts): the rate follows
// target / (1 − target) × WLAN's rate, moves at most ±15 % a tick, and is lifted when WLAN
// carries nothing; PaceGate sums the groups' requests, skips small changes, and stops asking a
// pacer that failed.
import t from 'tap';
import { initialPaceState, PaceGate, paceStep, recentBps } from '../../src/services/pm/steer/pace.js';

// 250 ms ticks: WLAN 30 Mbit/s = 937,500 bytes a tick
const ticks = (n: number, wlan: number, cell = 0): Array<{ t: number; cell: number; wlan: number }> => Array.from({ length: n }, (_, i) => ({ t: 1000 + 250 * i, cell, wlan }));

t.test('recentBps counts each sample over the time since the one before', async (t) => {
  t.equal(Math.round(recentBps(ticks(12, 937_500), 'wlan', 2000, 250)), 30_000_000);
  // late ticks: 500 ms apart, twice the bytes each
  const late = Array.from({ length: 6 }, (_, i) => ({ t: 1000 + 500 * i, cell: 0, wlan: 1_875_000 }));
  t.equal(Math.round(recentBps(late, 'wlan', 2000, 250)), 30_000_000);
});

t.test('paceStep: feed-forward from WLAN, bounded steps, lifted without WLAN traffic', async (t) => {
  const first = paceStep(initialPaceState, { target: 0.3, share: 0.3, samples: ticks(12, 937_500), intervalMs: 250 });
  t.ok(Math.abs(first.rate! - (0.3 / 0.7) * 30e6) < 1e3, `30:70 with WLAN at 30 Mbit/s: ${first.rate} bit/s`);
  const jump = paceStep(first, { target: 0.3, share: 0.3, samples: ticks(12, 2 * 937_500), intervalMs: 250 });
  t.ok(Math.abs(jump.rate! - 1.15 * first.rate!) < 1, 'a doubled WLAN rate moves the rate by 15 % in one tick');
  const low = paceStep(first, { target: 0.3, share: 0.2, samples: ticks(12, 937_500), intervalMs: 250 });
  t.ok(low.c > first.c, 'share under target: the integral correction raises the rate');
  t.equal(paceStep(first, { target: 0.3, share: 0.3, samples: ticks(12, 0, 937_500), intervalMs: 250 }).rate, undefined, 'no WLAN traffic: no limit');
  t.same(paceStep(first, { target: 1, share: 0.3, samples: ticks(12, 937_500), intervalMs: 250 }), initialPaceState, 'target 100 %: no pacing');
});

t.test('PaceGate sums requests, skips small changes, gives up after a failure', async (t) => {
  const set: Array<number | undefined> = [];
  let fail = false;
  const g = new PaceGate({ setRate: async (r) => {
    if (fail) throw new Error('no htb');
    set.push(r);
  } });
  const settle = (): Promise<void> => new Promise((r) => setImmediate(r));
  g.request('a', 10e6);
  await settle();
  g.request('b', 5e6);
  await settle();
  g.request('a', 10.1e6); // +0.7 %: not worth a command
  await settle();
  t.same(set, [10e6, 15e6]);
  g.request('a', undefined);
  g.request('b', undefined);
  await settle();
  t.same(set.at(-1), undefined, 'no requests: the limit is lifted');
  t.equal(g.changes, set.length);
  fail = true;
  g.request('a', 20e6);
  await settle();
  t.ok(g.failed, 'a refused rate marks the pacer failed');
  fail = false;
  g.request('a', 30e6);
  await settle();
  t.notOk(set.includes(30e6), 'a failed pacer is not asked again');
});

import t from 'tap';
import { convergence, type SplitSample } from '../../bench/ratio.js';

/** Cumulative counts every 250 ms with a cellular share given per time (ms), 50 Mbit/s in all. */
function run(shareAt: (ms: number) => number, ms = 21_000): SplitSample[] {
  const out: SplitSample[] = [];
  let cell = 0;
  let wlan = 0;
  for (let x = 0; x <= ms; x += 250) {
    const bytes = (50e6 / 8) * 0.25;
    cell += (bytes * shareAt(x)) / 100;
    wlan += (bytes * (100 - shareAt(x))) / 100;
    out.push({ t: x, cell, wlan });
  }
  return out;
}

t.test('converges when the split stays within ±5 points for 10 s', async (t) => {
  const c = convergence(run((x) => (x < 4000 ? 50 : 31)), 30);
  // windows are 3 s: the first window entirely after 4 s ends at 7 s; the ones from ~6.3 s are within 5
  t.ok(c.convergedAtS >= 5 && c.convergedAtS <= 7, `converged at ${c.convergedAtS}`);
  t.ok(Math.abs(c.errorPoints - 1) < 0.01, 'error over the 10 s: 1 point');
  t.ok(c.worstPoints <= 5);
});

t.test('a swing out of the band restarts the clock; never holding gives NaN', async (t) => {
  const swing = convergence(run((x) => (x < 3000 ? 50 : x >= 9000 && x < 10_000 ? 60 : 30), 30_000), 30);
  t.ok(swing.convergedAtS > 10 && swing.convergedAtS < 14, `the swing at 9–10 s pushes convergence past it (${swing.convergedAtS})`);
  t.ok(Number.isNaN(convergence(run((x) => (x < 3000 ? 50 : x >= 9000 && x < 10_000 ? 60 : 30)), 30).convergedAtS), 'no 10 s left in a 21 s run after the swing');
  const never = convergence(run(() => 40), 30);
  t.ok(Number.isNaN(never.convergedAtS));
  t.ok(Math.abs(never.errorPoints - 10) < 0.01, 'error of the last 10 s');
  t.ok(Number.isNaN(convergence([], 30).convergedAtS));
});

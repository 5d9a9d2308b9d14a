import t from 'tap';
import { alternate, median, spread } from '../../bench/stats.js';
import { failure, fromRuns, result } from '../../bench/lib.js';

t.test('median and spread of runs', async (t) => {
  t.equal(median([5, 1, 3]), 3);
  t.equal(median([4, 1, 3, 2]), 2.5, 'even count: mean of the middle two');
  t.ok(Number.isNaN(median([])), 'no runs: NaN');
  t.equal(median([NaN, 2, Infinity, 4]), 3, 'non-finite values are not figures');
  t.same(spread([3, 9, 1, 7, 5]), { median: 5, min: 1, max: 9, runs: 5 });
  t.same(spread([NaN]), { median: NaN, min: NaN, max: NaN, runs: 0 });
});

t.test('alternate runs duocell and baseline in turn and keeps going after a failure', async (t) => {
  const order: string[] = [];
  const r = await alternate(
    3,
    async (i) => {
      order.push(`a${i}`);
      if (i === 1) throw new Error('boom');
      return i;
    },
    async (i) => {
      order.push(`b${i}`);
      return 10 + i;
    },
  );
  t.same(order, ['a0', 'b0', 'a1', 'b1', 'a2', 'b2']);
  t.equal(r.a[0], 0);
  t.ok(r.a[1] instanceof Error);
  t.same(r.b, [10, 11, 12]);
});

t.test('fromRuns: median, spread, ratio, judged target', async (t) => {
  const r = fromRuns('aggregate', 'Mbit/s', [40, 44, 42, 41, 43], [45, 44, 46, 43, 47], 'kernel-only', { target: 'ratio >= 0.97', judge: (x) => x.ratio >= 0.97, links: 'realistic' });
  t.equal(r.value, 42);
  t.equal(r.baseline, 45);
  t.equal(r.min, 40);
  t.equal(r.max, 44);
  t.equal(r.baselineMin, 43);
  t.equal(r.baselineMax, 47);
  t.equal(r.runs, 5);
  t.equal(r.baselineRuns, 5);
  t.equal(r.ratio, 0.933);
  t.equal(r.met, false);
  t.equal(r.links, 'realistic');
  t.equal(r.error, undefined);
});

t.test('fromRuns: one failed run writes the failure and no figure', async (t) => {
  const r = fromRuns('aggregate', 'Mbit/s', [40, new Error('receiver got 10 of 20 bytes'), 42], [45, 44, 46], 'kernel-only', { target: 'x', judge: () => true });
  t.equal(r.value, undefined);
  t.equal(r.baseline, undefined);
  t.equal(r.ratio, undefined);
  t.equal(r.met, undefined, 'no figure, no verdict');
  t.match(r.error, /1 of 6 runs failed: duocell run 2: receiver got 10 of 20 bytes/);
  const b = fromRuns('x', 'ms', [1], [new Error('stall')], 'base');
  t.match(b.error, /baseline run 1: stall/);
  t.match(fromRuns('x', 'ms', [NaN], [1], 'base').error, /no finite figure/);
});

t.test('result and failure keep the old shape', async (t) => {
  t.same(result('a', 'u', 1.23456, 2, 'b'), { name: 'a', unit: 'u', value: 1.235, baseline: 2, baselineName: 'b', ratio: 0.617 });
  const f = failure('a', 'u', 'b', 'it broke', { value: 3, ratio: 1, note: 'n' });
  t.same(f, { name: 'a', unit: 'u', baselineName: 'b', note: 'n', error: 'it broke' });
});

t.test('censored runs: a run that never got there counts as longer than any figure', async (t) => {
  const r = fromRuns('handover-80', 'ms', [700, 720, Infinity, 690, 800], [1100, Infinity, Infinity, 900, Infinity], 'kernel-only', { censored: true, judge: (x) => x.value <= 1000 });
  t.equal(r.value, 720, 'median with the never-run above the rest');
  t.equal(r.min, 690);
  t.equal(r.max, undefined, 'no finite maximum');
  t.equal(r.baseline, undefined, 'the baseline never got there in 3 of 5: no number');
  t.equal(r.ratio, undefined);
  t.match(r.baselineName, /not reached in 3 of 5 runs/);
  t.equal(r.met, true);
  t.match(r.note, /never in 1 of 5 duocell runs, 3 of 5 baseline runs/);
  const none = fromRuns('x', 'ms', [Infinity, Infinity, 5], [1, 2, 3], 'b', { censored: true });
  t.equal(none.value, undefined);
  t.match(none.error, /not reached/);
  const err = fromRuns('x', 'ms', [1, new Error('stalled')], [1, 2], 'b', { censored: true });
  t.match(err.error, /duocell run 2: stalled/);
});

// The ratio loop judges the split over its own short window (RATIO_WINDOW_MS, the last 1.5 s of
// the controller's samples) with no look-ahead: a 3 s split that still carries the previous
// level's bytes must not move the ladder again (bench pm: the 3 s lag made it hunt ±6–12 points).
import t from 'tap';
import { ratioMode, RATIO_WINDOW_MS, initialRatioState, type RatioGroup } from '../../src/services/pm/steer/ratio.js';
import type { ModeTick } from '../../src/services/pm/steer/mode.js';

/** 250 ms ticks over 3 s: the first half `early` cellular share, the second half `late`. */
function tick(now: number, early: number, late: number, moves: number[]): ModeTick {
  const samples = Array.from({ length: 12 }, (_, i) => {
    const t = now - 3000 + (i + 1) * 250;
    const share = t > now - RATIO_WINDOW_MS ? late : early;
    return { t, cell: 1e6 * share, wlan: 1e6 * (1 - share) };
  });
  const cell = samples.reduce((a, x) => a + x.cell, 0);
  const wlan = samples.reduce((a, x) => a + x.wlan, 0);
  return {
    now, group: 'g', policy: { mode: 'ratio', ratio: { cellular: 30, wlan: 70 } }, cell, wlan, spanMs: 3000,
    share: cell / (cell + wlan), samples, minWindowBytes: 64 * 1024, slope: 0.0001, movable: 20, rtt: {}, pathRttMs: {},
    deadband: 0.01, settleMs: 250, lookaheadMs: 750, holdMs: 1000, moved: () => moves.push(now),
  };
}

const group = (): RatioGroup => ({ ratio: { ...initialRatioState(20), lastMoveAt: 0 }, frac: 0.5, n: 20 });

t.test('on target over the last 1.5 s: no move, though the 3 s split is 15 points high', async (t) => {
  const s = group();
  const moves: number[] = [];
  ratioMode.tick!(s, tick(10_000, 0.6, 0.3, moves));
  t.equal(moves.length, 0, 'the ladder stays');
  t.equal(s.ratio.level, 20);
});

t.test('off target over the last 1.5 s: the ladder moves towards it', async (t) => {
  const s = group();
  const moves: number[] = [];
  ratioMode.tick!(s, tick(10_000, 0.3, 0.5, moves));
  t.equal(moves.length, 1, 'one move');
  t.ok(s.ratio.level < 20, `down from 20 (now ${s.ratio.level})`);
});

import { logger } from '../../../core/logger.js';
import type { SteerMode } from './mode.js';
import { accesses } from './mode.js';
import type { Placement } from './types.js';

/**
 * ratio: closed loop on the cellular share of the group's bytes over a sliding window. The
 * group's connections sit on a ladder of 2N+1 levels: level L ≤ N gives L connections both
 * accesses and the rest WLAN only; L > N gives L−N connections cellular only and the rest both.
 * Outside a deadband the level moves towards the target (step ∝ error; going down, doubled while
 * the error does not shrink), then waits settleMs for the kernel's queues to follow.
 */

const log = logger('duocell:pm:steer');

/** Placements of n connections (in first-seen order) at a ladder level 0..2n. */
export function placementsAt(level: number, n: number): Placement[] {
  const l = Math.max(0, Math.min(2 * n, Math.round(level)));
  const out: Placement[] = [];
  for (let i = 0; i < n; i++) {
    if (l <= n) out.push(i < l ? 'both' : 'wlan');
    else out.push(i < l - n ? 'cellular' : 'both');
  }
  return out;
}

export interface RatioState {
  readonly level: number;
  /** Direction of the last move (0: none / in band). */
  readonly dir: -1 | 0 | 1;
  readonly step: number;
  /** |error| when the last move was made. */
  readonly lastError: number;
  readonly lastMoveAt: number;
  /**
   * What the levels were seen to do: `lo` is the highest level seen to give too little
   * cellular (kept for the view only), `hi` the lowest level ≥ 1 seen to give too much
   * (−1 / 2N+1: not seen). The loop does not climb to `hi` or above: with greedy flows it ends
   * up alternating between hi−1 and hi. Both are forgotten after boundsMs.
   */
  readonly lo: number;
  readonly hi: number;
  readonly boundsAt: number;
}

export interface RatioInput {
  /** Target cellular share 0..1. */
  readonly target: number;
  /** Measured cellular share over the window 0..1 (undefined: not enough bytes). */
  readonly share: number | undefined;
  /** Share since the last move settled, i.e. what the current level gives (undefined: unknown). */
  readonly fast?: number | undefined;
  /** Share change per ms (for the look-ahead), 0 if unknown. */
  readonly slope?: number;
  readonly n: number;
  readonly deadband: number;
  readonly settleMs: number;
  readonly lookaheadMs: number;
  /** Forget lo/hi after this long (the traffic may have changed; default 5 s). */
  readonly boundsMs?: number;
  readonly now: number;
}

export const initialRatioState = (n: number): RatioState => ({ level: n, dir: 0, step: 0, lastError: 0, lastMoveAt: -Infinity, lo: -1, hi: 2 * n + 1, boundsAt: -Infinity });

/** One decision of the ratio loop: the next ladder level. */
export function ratioStep(s: RatioState, i: RatioInput): RatioState {
  const max = 2 * i.n;
  const fixed = (level: number): RatioState => ({ ...s, level, dir: 0, step: 0, lo: -1, hi: max + 1 });
  if (i.n === 0) return fixed(0);
  if (i.target <= 0) return fixed(0);
  if (i.target >= 1) return fixed(max);
  const level = Math.max(0, Math.min(max, s.level));
  if (i.share === undefined || i.now - s.lastMoveAt < i.settleMs) return { ...s, level };
  // what the current level does
  let lo = s.lo;
  let hi = Math.min(s.hi, max + 1);
  if (i.now - s.boundsAt > (i.boundsMs ?? 5000)) {
    lo = -1;
    hi = max + 1;
  }
  const boundsAt = lo === -1 && hi === max + 1 ? i.now : s.boundsAt;
  if (i.fast !== undefined) {
    // (level 0 cannot be avoided, so it is never a bound: what it shows is queues draining)
    if (i.fast > i.target + i.deadband && level > 0) hi = Math.min(hi, level);
    else if (i.fast < i.target - i.deadband) lo = Math.max(lo, level);
  }
  const predicted = Math.max(0, Math.min(1, i.share + (i.slope ?? 0) * i.lookaheadMs));
  const e = predicted - i.target;
  if (Math.abs(e) <= i.deadband) return { ...s, level, dir: 0, step: 0, lo, hi, boundsAt };
  const dir: -1 | 1 = e > 0 ? -1 : 1;
  // a second move the same way waits until the first one's effect was seen (flows ramp up)
  if (dir === s.dir && i.fast === undefined) return { ...s, level, lo, hi, boundsAt };
  // going down, keep going (and faster) while the error does not shrink: with greedy flows the
  // middle levels all give the same split. Going up never accelerates: flows that were backup
  // ramp up slowly, so the error shrinks late and doubling would overshoot.
  const consecutive = s.dir === dir && i.now - s.lastMoveAt <= 4 * Math.max(i.settleMs, 250);
  const step = dir < 0 && consecutive && Math.abs(e) >= s.lastError * 0.9 ? Math.min(max, s.step * 2) : Math.max(1, Math.ceil(Math.abs(e) * i.n - 1e-9));
  let next = level + dir * step;
  // going up, never above a level seen to give too much; going down, straight below it.
  // (lo is not used to bound moves: right after a move up the flows are still ramping up and
  // the level looks weaker than it is.)
  if (dir < 0) next = Math.min(next, hi - 1);
  else next = Math.min(next, max, hi);
  next = Math.max(0, Math.min(max, next));
  if ((dir < 0 && next >= level) || (dir > 0 && next <= level)) return { ...s, level, dir, step, lastError: Math.abs(e), lo, hi, boundsAt };
  return { level: next, dir, step, lastError: Math.abs(e), lastMoveAt: i.now, lo, hi, boundsAt };
}


export interface RatioGroup {
  ratio: RatioState;
  /** level / 2N, kept when N changes. */
  frac: number;
  n: number;
}

/** Follow a change of the number of movable connections, keeping the level's fraction. */
function resize(s: RatioGroup, n: number): void {
  if (s.n === n) return;
  s.n = n;
  s.ratio = { ...s.ratio, level: Math.round(s.frac * 2 * n) };
}

export const ratioMode: SteerMode<RatioGroup> = {
  name: 'ratio',
  problem(o) {
    const r = o.ratio as Record<string, unknown> | undefined;
    if (typeof r !== 'object' || r === null) return 'ratio missing';
    const c = r.cellular;
    const w = r.wlan;
    if (typeof c !== 'number' || typeof w !== 'number' || !Number.isFinite(c) || !Number.isFinite(w) || c < 0 || w < 0) return 'ratio shares must be numbers ≥ 0';
    if (Math.abs(c + w - 100) > 0.5) return `ratio ${c}:${w} does not add up to 100`;
    return undefined;
  },
  init: (_now, previous) => ({ ratio: initialRatioState(previous?.n ?? 0), frac: 0.5, n: previous?.n ?? 0 }),
  tick(s, m) {
    resize(s, m.movable);
    // what the current level gives: bytes since the last move (its first 150 ms are the queues draining)
    const since = s.ratio.lastMoveAt + 150;
    const recent = m.samples.filter((x) => x.t > since);
    const rc = recent.reduce((x, y) => x + y.cell, 0);
    const rt = rc + recent.reduce((x, y) => x + y.wlan, 0);
    const fast = rt >= m.minWindowBytes / 4 && recent.length >= 2 ? rc / rt : undefined;
    const before = s.ratio.level;
    s.ratio = ratioStep(s.ratio, {
      target: m.policy.ratio.cellular / 100, share: m.share, fast, slope: m.slope, n: s.n,
      deadband: m.deadband, settleMs: m.settleMs, lookaheadMs: m.lookaheadMs, now: m.now,
    });
    if (s.n > 0) s.frac = s.ratio.level / (2 * s.n);
    if (s.ratio.level !== before) {
      m.moved();
      log.debug({ group: m.group, share: m.share, fast, level: s.ratio.level, lo: s.ratio.lo, hi: s.ratio.hi, n: s.n }, 'ratio: level moved');
    }
  },
  place(s, n) {
    resize(s, n);
    return placementsAt(s.ratio.level, n);
  },
  carry(_s, _p, placement) {
    if (placement === 'cellular') return accesses('cellular');
    if (placement === 'wlan') return accesses('wlan');
    return accesses('cellular', 'wlan');
  },
  view: (s, p) => ({ target: p.ratio.cellular, level: s.ratio.level }),
};

import { logger } from '../../../core/logger.js';
import type { SteerMode } from './mode.js';
import { accesses } from './mode.js';
import { bracketOf, ditherEnter, ditherStep, type DitherState, type LevelRates } from './ratio-dither.js';
import type { Placement } from './types.js';

/**
 * ratio: closed loop on the cellular share of the group's bytes over a sliding window. The
 * group's connections sit on a ladder of 2N+1 levels: level L ≤ N gives L connections both
 * accesses and the rest WLAN only; L > N gives L−N connections cellular only and the rest both.
 * Outside a deadband the level moves towards the target (step ∝ error; going down, doubled while
 * the error does not shrink), then waits settleMs for the kernel's queues to follow (the seek
 * phase). Once a level is seen to give too little while a level above it gave too much, the
 * hold phase (ratio-dither.ts) time-divides between them with a duty under integral control.
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
  /** Hold phase (time division between two adjacent levels), undefined while seeking. */
  hold: DitherState | undefined;
  /** Rates (bytes/ms per access) last seen at each level, for the hold phase's first duty. */
  rates: Map<number, LevelRates>;
  /** Since when n has not changed. */
  nSince: number;
  /** The seek phase's recent moves (the last SWING_MS). */
  moves: Array<{ t: number; level: number }>;
}

/** The seek phase swings when its last four moves within this time alternate between two levels. */
const SWING_MS = 4000;

/** The two levels of a swing (low, high), or undefined. */
function swingOf(moves: ReadonlyArray<{ level: number }>): { low: number; high: number } | undefined {
  if (moves.length < 4) return undefined;
  const [a, b, c, d] = moves.slice(-4).map((x) => x.level) as [number, number, number, number];
  return a === c && b === d && a !== b ? { low: Math.min(a, b), high: Math.max(a, b) } : undefined;
}

/** Integral gain of the hold phase per tick (see ratio-dither.ts). */
const HOLD_GAIN = 0.5;
/** Modulation period: the default measurement window (and the bench's), so each window holds one period. */
const HOLD_PERIOD_MS = 3000;
/** Leave the hold phase when the duty is pinned and the error beyond this many points for HOLD_EXIT_MS. */
const HOLD_EXIT_POINTS = 3;
const HOLD_EXIT_MS = 6000;
/** The hold phase leaves the duty alone while a period's split is this close to the target. */
const HOLD_DEADBAND_POINTS = 2.5;
/** Enter the hold phase only once the number of movable connections has been steady this long. */
const HOLD_STABLE_MS = 1000;

/** The level in force: the hold phase's output, else the seek phase's level. */
const levelOf = (s: RatioGroup): number => s.hold?.out ?? s.ratio.level;

/** Follow a change of the number of movable connections, keeping the level's fraction. */
function resize(s: RatioGroup, n: number, now: number): void {
  if (s.n === n) return;
  s.n = n;
  s.nSince = now;
  s.rates.clear();
  // the levels change meaning: seek again from the same fraction of the ladder
  s.hold = undefined;
  s.ratio = { ...s.ratio, level: Math.round(s.frac * 2 * n) };
}

/** Bytes per access and their span (ms) over the samples after `since`. */
function sumSince(samples: ReadonlyArray<{ t: number; cell: number; wlan: number }>, since: number): { cell: number; wlan: number; n: number; ms: number } {
  const xs = samples.filter((x) => x.t > since);
  const cell = xs.reduce((a, b) => a + b.cell, 0);
  const wlan = xs.reduce((a, b) => a + b.wlan, 0);
  const ms = xs.length >= 2 ? ((xs.at(-1)!.t - xs[0]!.t) * xs.length) / (xs.length - 1) : 0;
  return { cell, wlan, n: xs.length, ms };
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
  init: (now, previous) => ({ ratio: initialRatioState(previous?.n ?? 0), frac: 0.5, n: previous?.n ?? 0, hold: undefined, rates: new Map(), nSince: now, moves: [] }),
  tick(s, m) {
    resize(s, m.movable, m.now);
    const target = m.policy.ratio.cellular / 100;
    const before = levelOf(s);
    if (s.hold !== undefined && target > 0 && target < 1) {
      // hold: at the end of each modulation period, integral action on that period's split
      const h = sumSince(m.samples, m.now - HOLD_PERIOD_MS);
      const split = m.now - s.hold.since >= HOLD_PERIOD_MS && h.cell + h.wlan >= m.minWindowBytes ? h.cell / (h.cell + h.wlan) : undefined;
      const next = ditherStep(s.hold, { target, split, max: 2 * s.n, now: m.now, gain: HOLD_GAIN, exitBand: HOLD_EXIT_POINTS / 100, exitMs: HOLD_EXIT_MS, periodMs: HOLD_PERIOD_MS, deadband: HOLD_DEADBAND_POINTS / 100 });
      if (next !== undefined) {
        s.hold = next;
        if (s.n > 0) s.frac = next.out / (2 * s.n);
        if (next.out !== before) m.moved();
        log.debug({ group: m.group, share: m.share, split, duty: next.u, level: next.out, n: s.n }, 'ratio: hold');
        return;
      }
      // the bracket no longer holds the target (the traffic changed): seek again from its nearer end
      const up = split !== undefined && split < target;
      log.debug({ group: m.group, share: m.share, split, low: s.hold.low, up }, 'ratio: bracket left, seeking');
      s.ratio = { ...initialRatioState(s.n), level: up ? s.hold.high : s.hold.low, lastMoveAt: m.now };
      s.hold = undefined;
      s.rates.clear();
      s.moves = [];
      if (levelOf(s) !== before) m.moved();
      return;
    }
    s.hold = undefined;
    // what the current level gives: bytes since the last move (its first 150 ms are the queues draining)
    const r = sumSince(m.samples, s.ratio.lastMoveAt + 150);
    const rt = r.cell + r.wlan;
    const fast = rt >= m.minWindowBytes / 4 && r.n >= 2 ? r.cell / rt : undefined;
    if (fast !== undefined && r.ms > 0) s.rates.set(s.ratio.level, { cell: r.cell / r.ms, wlan: r.wlan / r.ms });
    s.ratio = ratioStep(s.ratio, {
      target, share: m.share, fast, slope: m.slope, n: s.n,
      deadband: m.deadband, settleMs: m.settleMs, lookaheadMs: m.lookaheadMs, now: m.now,
    });
    const { hi } = s.ratio;
    if (s.ratio.level !== before) s.moves = [...s.moves.filter((x) => m.now - x.t <= SWING_MS), { t: m.now, level: s.ratio.level }];
    // Enter the hold phase (not while connections still join) when the level just measured gives
    // too little and a level above it too much, or when the seek keeps swinging between two
    // levels (with a queue that drains for longer than a settle, the lower one never looks low)
    const swing = swingOf(s.moves);
    const seen = fast !== undefined && fast < target - m.deadband && before < hi && hi <= 2 * s.n ? { low: before, high: hi } : undefined;
    const bracket = seen ?? swing;
    if (bracket !== undefined && s.n > 0 && target > 0 && target < 1 && m.now - s.nSince >= HOLD_STABLE_MS) {
      const b = bracketOf(bracket.low, bracket.high, s.n);
      const h = ditherEnter(b.low, b.high, target, s.rates.get(bracket.low), s.rates.get(bracket.high), m.now, HOLD_PERIOD_MS);
      s.hold = ditherStep(h, { target, split: undefined, max: 2 * s.n, now: m.now, gain: 0, exitBand: 1, exitMs: Infinity, periodMs: HOLD_PERIOD_MS, deadband: 1 });
      s.moves = [];
      log.debug({ group: m.group, share: m.share, fast, low: b.low, high: b.high, by: seen !== undefined ? 'bracket' : 'swing', duty: h.u, span: h.span }, 'ratio: bracket seen, holding');
    }
    if (s.n > 0) s.frac = levelOf(s) / (2 * s.n);
    if (levelOf(s) !== before) {
      m.moved();
      log.debug({ group: m.group, share: m.share, fast, level: levelOf(s), lo: s.ratio.lo, hi: s.ratio.hi, n: s.n }, 'ratio: level moved');
    }
  },
  place(s, n) {
    // a connection joined or left since the tick: the same fraction of the ladder until the next tick resizes
    return placementsAt(n === s.n ? levelOf(s) : Math.round(s.frac * 2 * n), n);
  },
  carry(_s, _p, placement) {
    if (placement === 'cellular') return accesses('cellular');
    if (placement === 'wlan') return accesses('wlan');
    return accesses('cellular', 'wlan');
  },
  view: (s, p) => ({ target: p.ratio.cellular, level: levelOf(s), ...(s.hold === undefined ? {} : { duty: Math.round(s.hold.u * 1000) / 10 }) }),
};

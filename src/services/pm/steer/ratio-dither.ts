/**
 * ratio, hold phase: time division between two ladder levels.
 *
 * Why: with greedy flows on two separate bottlenecks every ladder level between "no connection
 * on cellular" and "all on cellular only" gives the natural capacity split, so no level gives the
 * target. The seek phase (ratio.ts ratioStep) then alternates between the bracketing levels at
 * its own pace (a move, a settle, a 3 s window to notice): a period of 4–5 s that a 3 s window
 * cannot average, so the 3 s split swung 6–9 points around the target (bench at af04e04).
 *
 * Here the alternation is made deliberate: pulse-width modulation with a fixed period equal to
 * the measurement window (3 s), `high` for the first u·period and `low` for the rest. Every
 * trailing 3 s window then holds exactly one period, so its split is the same wherever it starts
 * (as long as the kernel answers each period alike): the receiver's 3 s split stays flat where
 * the old alternation swung. The duty u starts where the levels' measured rates put the target
 * (shortened by the time a path's queue keeps delivering after its subflows became backup, about
 * 0.8–1 s in the bench: short low phases do not bite at all, which is why a faster modulation,
 * tried first, failed) and is corrected once per period by integral action on that period's
 * split, normalised by the bracket's share span so that the loop gain does not depend on the
 * traffic (gain 0.5: half the error per period, one period of lag).
 *
 *   seek (ratioStep) ──bracket seen / seek swinging──► hold: out = high for u·P, else low;
 *        ▲                                                  each period: u += g·(t − split)/span
 *        └──── u pinned at 0 or 1 with the error beyond ±exitBand for exitMs, or n changed ────┘
 *
 * Few connections: one connection has levels 0 (WLAN only), 1 (both), 2 (cellular only); the
 * hold phase time-divides between two of them, so even one greedy connection reaches any ratio
 * over a window (its traffic moves between the accesses once per 3 s period), which placement
 * alone cannot do. The price: the connection's bytes on the `high` access stop for part of each
 * period (the other access carries them; MPTCP reinjects nothing, the scheduler just moves on).
 */

/** Bytes per ms per access measured while a level was in force. */
export interface LevelRates {
  readonly cell: number;
  readonly wlan: number;
}

export interface DitherState {
  /** The bracket: level `low` gives too little cellular, `high` too much. */
  readonly low: number;
  readonly high: number;
  /** Duty: the share of ticks at `high` (0..1). */
  readonly u: number;
  /** Start of the current modulation period. */
  readonly periodStart: number;
  /** Level in force this tick (low or high). */
  readonly out: number;
  /** Cellular share span of the bracket (share at high minus share at low), ≥ MIN_SPAN. */
  readonly span: number;
  readonly since: number;
  /** Since when u has been pinned at a bound with the error beyond the exit band (undefined: not). */
  readonly pinnedSince: number | undefined;
}

export interface DitherInput {
  readonly target: number;
  /** Cellular share of the bytes of the last periodMs (undefined: too few bytes, or the hold is younger). */
  readonly split: number | undefined;
  /** Highest level (2N). */
  readonly max: number;
  readonly now: number;
  /** Integral gain per period (duty change per unit of error / span). */
  readonly gain: number;
  /** Modulation period (ms): the controller's window, so every window holds one whole period. */
  readonly periodMs: number;
  readonly exitBand: number;
  readonly exitMs: number;
  /** No correction while |target − split| is at most this. */
  readonly deadband: number;
}

/** Span assumed when a level's rates were not seen, and the least span used (a larger span: a gentler loop). */
const DEFAULT_SPAN = 0.2;
const MIN_SPAN = 0.1;
/** How long a path's bytes keep being acked after its subflows became backup (its queue draining). */
const DRAIN_MS = 800;
/** Largest duty change per period (a little more than one 250 ms tick of a 3 s period). */
const MAX_STEP = 0.1;
const clamp = (x: number, a: number, b: number): number => Math.max(a, Math.min(b, x));

/**
 * Duty that gives cellular share `target` when a level with rates `low` is in force for 1 − u
 * of the time and one with rates `high` for u (bytes add up, shares do not). Undefined when the
 * rates do not bracket the target.
 */
export function dutyFor(target: number, low: LevelRates, high: LevelRates): number | undefined {
  // (1 − t)·(cL + u·Δc) = t·(wL + u·Δw)  →  u = (t·wL − (1 − t)·cL) / ((1 − t)·Δc − t·Δw)
  const dc = high.cell - low.cell;
  const dw = high.wlan - low.wlan;
  const den = (1 - target) * dc - target * dw;
  const num = target * low.wlan - (1 - target) * low.cell;
  if (!(den > 0) || !Number.isFinite(num / den)) return undefined;
  const u = num / den;
  return u >= 0 && u <= 1 ? u : undefined;
}

const shareOf = (r: LevelRates | undefined): number | undefined => (r === undefined || r.cell + r.wlan <= 0 ? undefined : r.cell / (r.cell + r.wlan));

/**
 * The levels to time-divide between when level `low` gives too little and `high` (> low) too
 * much, on a ladder of n connections. At the ends of the ladder the gate is widened: "no
 * connection on cellular" (0) is paired with at least "every connection on both" (n), and "every
 * connection on cellular only" (2n) with at most n. With greedy flows every level strictly inside
 * the ladder gives the natural split, so the wide gate gives the same average, but the on-phase
 * starts n subflows at once (each from its initial window, as a backup subflow's window is reset
 * after idle), which fill the path within a round trip, where one subflow takes seconds to ramp
 * up (seen in the bench: a time-divided split then lagged the duty by 2 s).
 */
export function bracketOf(low: number, high: number, n: number): { low: number; high: number } {
  if (low === 0) return { low: 0, high: Math.max(high, n, 1) };
  if (high === 2 * n) return { low: Math.min(low, n), high };
  return { low, high };
}

/** Enter the hold phase on the bracket [low, high], with the rates seen at both levels (if any). */
export function ditherEnter(low: number, high: number, target: number, rl: LevelRates | undefined, rh: LevelRates | undefined, now: number, periodMs: number): DitherState {
  const sl = shareOf(rl) ?? target - DEFAULT_SPAN / 2;
  const sh = shareOf(rh) ?? target + DEFAULT_SPAN / 2;
  const span = Math.max(MIN_SPAN, sh - sl);
  const byRates = rl !== undefined && rh !== undefined ? dutyFor(target, rl, rh) : undefined;
  // the low phase bites only once the path's queue drained (about DRAIN_MS seen): start shorter
  const u0 = clamp((byRates ?? (target - sl) / span) - DRAIN_MS / periodMs, 0.05, 0.95);
  return { low, high, u: u0, periodStart: now, out: high, span, since: now, pinnedSince: undefined };
}

/**
 * One tick of the hold phase; undefined: leave it (the bracket no longer holds the target).
 * Pulse-width modulation with a fixed period: `high` for the first u·period of each period,
 * `low` for the rest (the time is taken from the clock, not counted in ticks, so a late tick
 * does not stretch the period). At the end of each period u is corrected by the error of that
 * period's split.
 */
export function ditherStep(s: DitherState, i: DitherInput): DitherState | undefined {
  if (s.low < 0 || s.high > i.max || s.high <= s.low) return undefined;
  let { u, periodStart, pinnedSince } = s;
  if (i.now - periodStart >= i.periodMs) {
    if (i.split !== undefined) {
      const e = i.target - i.split;
      // inside the deadband the duty stays (the split's noise and the tick's quantisation of the
      // high phase are a few points); outside, one step of at most MAX_STEP (a bufferbloated
      // path turns a short high phase into seconds of delivery, so the split is steep near u = 0
      // and flat above: a larger step swung between 0 % and 40 % on the bench's ideal links)
      if (Math.abs(e) > i.deadband) u = clamp(u + clamp((i.gain * e) / s.span, -MAX_STEP, MAX_STEP), 0, 1);
      const pinned = (u <= 0 && e < -i.exitBand) || (u >= 1 && e > i.exitBand);
      pinnedSince = pinned ? (pinnedSince ?? i.now) : undefined;
      if (pinnedSince !== undefined && i.now - pinnedSince >= i.exitMs) return undefined;
    }
    const periods = Math.floor((i.now - periodStart) / i.periodMs);
    // one period late or more (a stalled event loop): start afresh rather than catch up
    periodStart = periods === 1 ? periodStart + i.periodMs : i.now;
  }
  const out = i.now - periodStart < u * i.periodMs ? s.high : s.low;
  return { ...s, u, periodStart, out, pinnedSince };
}

/**
 * ratio, hold phase: time-division between two adjacent ladder levels.
 *
 * Why: with greedy flows on two separate bottlenecks every ladder level between "no connection
 * on cellular" and "all on cellular only" gives the natural capacity split, so no level gives the
 * target. The seek phase (ratio.ts ratioStep) then alternates between the bracketing levels
 * L (too little cellular) and H = L + 1 (too much) at its own pace (a move, a settle, a 3 s
 * window to notice): a period of 4–5 s, which a 3 s window cannot average, so the 3 s split
 * swung 6–9 points around the target.
 *
 * Here the alternation is made deliberate: every tick the output is H or L, chosen by a
 * first-order sigma-delta modulator on a duty u (the share of ticks at H), so the H ticks are
 * spread as evenly as the tick allows (u = 0.64: H H L H H L H L …, a period of about 1 s, each
 * 3 s window holds 12 ticks of which round(12u) ± 1 are at H). The kernel's queues smooth the
 * switching further. u starts where the two levels' measured rates say the target lies and is
 * then corrected by integral action on the split measured since the hold began (at most the
 * controller's window), normalised by the share span of the bracket so the loop gain does not
 * depend on the traffic. Adjacent levels differ by one connection's placement: one SET_FLAGS
 * per switch.
 *
 *   seek (ratioStep) ──bracket [L, L+1] seen──► hold: out = sigmaDelta(u); u += g·(t − split)/span
 *        ▲                                              │
 *        └── u pinned at 0 or 1 with the error beyond ±exitBand for exitMs, or L+1 > 2N ──┘
 *
 * Few connections: one connection has levels 0 (WLAN only), 1 (both), 2 (cellular only), and
 * the hold phase time-divides between two of them, so even one greedy connection reaches any
 * ratio on average (its traffic moves between accesses every few hundred ms).
 */

/** Bytes per ms per access measured while a level was in force. */
export interface LevelRates {
  readonly cell: number;
  readonly wlan: number;
}

export interface DitherState {
  /** The bracket: level L gives too little cellular, L + 1 too much. */
  readonly low: number;
  /** Duty: the share of ticks at L + 1 (0..1). */
  readonly u: number;
  /** Sigma-delta accumulator (−0.5..0.5). */
  readonly acc: number;
  /** Level in force this tick (L or L + 1). */
  readonly out: number;
  /** Cellular share span of the bracket (share at L + 1 minus share at L), ≥ minSpan. */
  readonly span: number;
  readonly since: number;
  /** Since when u has been pinned at a bound with the error beyond the exit band (undefined: not). */
  readonly pinnedSince: number | undefined;
}

export interface DitherInput {
  readonly target: number;
  /** Cellular share of the bytes since the hold began (within the window), undefined: too few. */
  readonly split: number | undefined;
  /** Highest level (2N). */
  readonly max: number;
  readonly now: number;
  /** Integral gain per tick (fraction of the span's worth of duty per unit of normalised error). */
  readonly gain: number;
  readonly exitBand: number;
  readonly exitMs: number;
}

const MIN_SPAN = 0.05;
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

/** Enter the hold phase on the bracket [low, low + 1], with the rates seen at both levels (if any). */
export function ditherEnter(low: number, target: number, rl: LevelRates | undefined, rh: LevelRates | undefined, now: number): DitherState {
  const sl = shareOf(rl) ?? target - MIN_SPAN / 2;
  const sh = shareOf(rh) ?? target + MIN_SPAN / 2;
  const span = Math.max(MIN_SPAN, sh - sl);
  const byRates = rl !== undefined && rh !== undefined ? dutyFor(target, rl, rh) : undefined;
  const u0 = clamp(byRates ?? (target - sl) / span, 0.1, 0.9);
  return { low, u: u0, acc: 0, out: low, span, since: now, pinnedSince: undefined };
}

/** One tick of the hold phase; undefined: leave it (the bracket no longer holds the target). */
export function ditherStep(s: DitherState, i: DitherInput): DitherState | undefined {
  if (s.low < 0 || s.low + 1 > i.max) return undefined;
  let u = s.u;
  let pinnedSince = s.pinnedSince;
  if (i.split !== undefined) {
    const e = i.target - i.split;
    u = clamp(u + (i.gain * e) / s.span, 0, 1);
    const pinned = (u <= 0 && e < -i.exitBand) || (u >= 1 && e > i.exitBand);
    pinnedSince = pinned ? (pinnedSince ?? i.now) : undefined;
    if (pinnedSince !== undefined && i.now - pinnedSince >= i.exitMs) return undefined;
  }
  let acc = s.acc + u;
  let out = s.low;
  if (acc >= 0.5) {
    out = s.low + 1;
    acc -= 1;
  }
  return { ...s, u, acc: clamp(acc, -0.5, 0.5), out, pinnedSince };
}

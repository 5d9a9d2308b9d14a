/**
 * Ratio-convergence figures from the receiver's byte counts (pure).
 *
 * Input: samples of cumulative bytes received per path, `t` in ms since the transfers started.
 * The split at time t is the cellular share of the bytes received in the trailing `windowMs`.
 * Converged at t: every split from t to t + `holdMs` is within ±`tolPoints` of the target (and
 * the samples reach that far). The error over that time is |cellular share of the bytes received
 * in [t, t + holdMs] − target|; `worstPoints` is the worst split in it. When the split never
 * holds, convergedAtS is NaN and the errors are taken over the last `holdMs` of the samples.
 */
export interface SplitSample {
  t: number;
  cell: number;
  wlan: number;
}

export interface ConvergenceOptions {
  windowMs: number;
  holdMs: number;
  tolPoints: number;
}

export const CONVERGENCE_DEFAULTS: ConvergenceOptions = { windowMs: 3000, holdMs: 10_000, tolPoints: 5 };

export interface Convergence {
  convergedAtS: number;
  errorPoints: number;
  worstPoints: number;
  /** The trailing-window splits, for the note. */
  splits: Array<{ t: number; share: number }>;
}

const shareOf = (a: SplitSample, b: SplitSample): number => {
  const c = b.cell - a.cell;
  const w = b.wlan - a.wlan;
  return c + w > 0 ? (100 * c) / (c + w) : NaN;
};

/** The latest sample at or before t (the first sample when none). */
function at(s: readonly SplitSample[], t: number): SplitSample {
  let r = s[0]!;
  for (const x of s) {
    if (x.t <= t) r = x;
    else break;
  }
  return r;
}

export function convergence(samples: readonly SplitSample[], targetPct: number, o: ConvergenceOptions = CONVERGENCE_DEFAULTS): Convergence {
  if (samples.length < 2) return { convergedAtS: NaN, errorPoints: NaN, worstPoints: NaN, splits: [] };
  const splits = samples.filter((x) => x.t >= samples[0]!.t + o.windowMs).map((x) => ({ t: x.t, share: shareOf(at(samples, x.t - o.windowMs), x) }));
  const end = samples[samples.length - 1]!.t;
  const judge = (from: number): { err: number; worst: number } => {
    const inside = splits.filter((x) => x.t >= from && x.t <= from + o.holdMs);
    const worst = Math.max(...inside.map((x) => (Number.isFinite(x.share) ? Math.abs(x.share - targetPct) : Infinity)));
    const err = Math.abs(shareOf(at(samples, from), at(samples, from + o.holdMs)) - targetPct);
    return { err, worst };
  };
  for (const s of splits) {
    if (s.t + o.holdMs > end) break;
    const { err, worst } = judge(s.t);
    if (worst <= o.tolPoints) return { convergedAtS: s.t / 1000, errorPoints: err, worstPoints: worst, splits };
  }
  const { err, worst } = judge(Math.max(samples[0]!.t, end - o.holdMs));
  return { convergedAtS: NaN, errorPoints: err, worstPoints: worst, splits };
}

/**
 * Handover figures from a download trace (pure). A trace is the receiver's arrivals as
 * [epoch ms, cumulative bytes], ascending; `cutAt` is when the path went down.
 *
 *   handover     the time from the cut until bytes flow again after the longest stall: among
 *                the gaps between arrivals that begin within `stallSearchMs` after the cut (the
 *                first gap begins at the cut itself), the longest; the figure is its end − cut.
 *   handover-80  the first moment t ≥ cut after which the rate stays at or above 80 % of the
 *                surviving path's rate for at least `holdMs`: every window of `windowMs`
 *                starting in [t, t + holdMs − windowMs] carries ≥ 80 % of what the surviving
 *                path carries in a window (evaluated on a `stepMs` grid); the figure is t − cut.
 * Either is NaN when the trace never gets there (no byte after the cut; the rate never holds).
 */
export type Trace = ReadonlyArray<readonly [number, number]>;

export interface HandoverOptions {
  stallSearchMs: number;
  windowMs: number;
  holdMs: number;
  stepMs: number;
  /** Fraction of the surviving path's rate (0.8). */
  fraction: number;
}

export const HANDOVER_DEFAULTS: HandoverOptions = { stallSearchMs: 3000, windowMs: 250, holdMs: 1000, stepMs: 10, fraction: 0.8 };

/** Cumulative bytes the receiver had at time t (the last arrival at or before t). */
export function bytesAt(trace: Trace, t: number): number {
  let lo = 0;
  let hi = trace.length - 1;
  if (hi < 0 || trace[0]![0] > t) return 0;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (trace[mid]![0] <= t) lo = mid;
    else hi = mid - 1;
  }
  return trace[lo]![1];
}

export function resumeAfterCut(trace: Trace, cutAt: number, o: Pick<HandoverOptions, 'stallSearchMs'> = HANDOVER_DEFAULTS): { resumeMs: number; longestStallMs: number } {
  const after = trace.filter(([t]) => t > cutAt).map(([t]) => t);
  if (after.length === 0) return { resumeMs: NaN, longestStallMs: NaN };
  let prev = cutAt;
  let longest = -1;
  let end = NaN;
  for (const t of after) {
    if (prev - cutAt > o.stallSearchMs) break;
    if (t - prev > longest) {
      longest = t - prev;
      end = t;
    }
    prev = t;
  }
  return { resumeMs: end - cutAt, longestStallMs: longest };
}

export function timeTo80(trace: Trace, cutAt: number, survivorMbit: number, o: HandoverOptions = HANDOVER_DEFAULTS): number {
  if (trace.length === 0 || !(survivorMbit > 0)) return NaN;
  const need = (o.fraction * survivorMbit * 1e6 * (o.windowMs / 1000)) / 8;
  const lastT = trace[trace.length - 1]![0];
  const ok = (u: number): boolean => bytesAt(trace, u + o.windowMs) - bytesAt(trace, u) >= need;
  // Walk candidate starts; `goodFrom` is the earliest start of the current run of good windows.
  let goodFrom: number | undefined;
  for (let u = cutAt; u + o.windowMs <= lastT; u += o.stepMs) {
    if (ok(u)) {
      goodFrom ??= u;
      if (u - goodFrom >= o.holdMs - o.windowMs) return goodFrom - cutAt;
    } else {
      goodFrom = undefined;
    }
  }
  return NaN;
}

export function handoverOf(trace: Trace, cutAt: number, survivorMbit: number, o: HandoverOptions = HANDOVER_DEFAULTS): { resumeMs: number; to80Ms: number; longestStallMs: number } {
  const r = resumeAfterCut(trace, cutAt, o);
  return { ...r, to80Ms: timeTo80(trace, cutAt, survivorMbit, o) };
}

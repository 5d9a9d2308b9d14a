/**
 * Pure statistics of the benchmarks: the median and spread of repeated runs, and the A,B,A,B…
 * order in which duocell and its baseline take turns (both see the same machine load).
 */

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** Runs that gave a finite figure. */
  runs: number;
}

/** Median of the finite values (the mean of the middle two for an even count); NaN when none. */
export function median(xs: readonly number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function spread(xs: readonly number[]): Spread {
  const s = xs.filter((x) => Number.isFinite(x));
  if (s.length === 0) return { median: NaN, min: NaN, max: NaN, runs: 0 };
  return { median: median(s), min: Math.min(...s), max: Math.max(...s), runs: s.length };
}

/**
 * Run `a` and `b` alternately `n` times each (a, b, a, b, …) and collect what each returned.
 * A run that throws is recorded as its error and the alternation goes on.
 */
export async function alternate<T>(n: number, a: (i: number) => Promise<T>, b: (i: number) => Promise<T>): Promise<{ a: Array<T | Error>; b: Array<T | Error> }> {
  const out = { a: [] as Array<T | Error>, b: [] as Array<T | Error> };
  for (let i = 0; i < n; i++) {
    out.a.push(await a(i).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e)))));
    out.b.push(await b(i).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e)))));
  }
  return out;
}

/** Round for the results file: 3 significant decimals are plenty for these figures. */
export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

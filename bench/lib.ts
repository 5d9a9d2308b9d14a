import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { round3, spread } from './stats.js';

/**
 * One benchmark figure as a group returns it; ratio = value / baseline (as the issue asks).
 * A figure whose measurement failed carries `error` and no value (bench/README.md).
 * run.ts stamps it (commit, date, kernel) into an `Entry`.
 */
export interface BenchResult {
  name: string;
  unit: string;
  value?: number;
  baseline?: number;
  baselineName: string;
  ratio?: number;
  target?: string;
  /** Whether the target is met (set where the group can judge it). */
  met?: boolean;
  note?: string;
  /** Why there is no figure (a transfer that did not deliver every byte, a stall, a crash). */
  error?: string;
  /** Runs behind `value` (median) and their spread; single-shot figures have runs 1. */
  runs?: number;
  min?: number;
  max?: number;
  baselineRuns?: number;
  baselineMin?: number;
  baselineMax?: number;
  /** The link world: `realistic` (lte + wlan), `ideal`, `loopback`, or profile names. */
  links?: string;
  /** The MPTCP path manager of the box under test: `userspace`, `kernel` or `n/a`. */
  pm?: string;
}

const r3 = (x: number | undefined): number | undefined => (x === undefined ? undefined : round3(x));

export function result(name: string, unit: string, value: number, baseline: number, baselineName: string, extra: Partial<BenchResult> = {}): BenchResult {
  return { name, unit, value: round3(value), baseline: round3(baseline), baselineName, ratio: baseline === 0 ? 0 : round3(value / baseline), ...extra };
}

/** The failure in place of a figure: no value, no ratio, the error said. */
export function failure(name: string, unit: string, baselineName: string, error: string, extra: Partial<BenchResult> = {}): BenchResult {
  const { value: _v, baseline: _b, ratio: _r, met: _m, ...rest } = extra;
  return { name, unit, baselineName, ...rest, error };
}

/**
 * The median of repeated runs of duocell and of its baseline, with their spread. A run that
 * failed (an Error in either list) makes the whole figure a failure: no value is written.
 */
export function fromRuns(
  name: string,
  unit: string,
  values: ReadonlyArray<number | Error>,
  baselines: ReadonlyArray<number | Error>,
  baselineName: string,
  extra: Partial<BenchResult> & {
    judge?: (r: { value: number; baseline: number; ratio: number }) => boolean;
    /** Infinity in the runs means "never got there" (a censored run): it sorts above every figure. */
    censored?: boolean;
  } = {},
): BenchResult {
  const { judge, censored, ...rest } = extra;
  if (censored === true) return fromCensoredRuns(name, unit, values, baselines, baselineName, rest, judge);
  const errs = [
    ...values.flatMap((v, i) => (v instanceof Error ? [`duocell run ${i + 1}: ${v.message}`] : [])),
    ...baselines.flatMap((v, i) => (v instanceof Error ? [`baseline run ${i + 1}: ${v.message}`] : [])),
  ];
  const nums = (xs: ReadonlyArray<number | Error>): number[] => xs.filter((x): x is number => typeof x === 'number');
  const v = spread(nums(values));
  const b = spread(nums(baselines));
  const counts = { runs: values.length, baselineRuns: baselines.length };
  if (errs.length > 0 || v.runs === 0 || b.runs === 0) {
    const why = errs.length > 0 ? errs.join('; ') : 'no finite figure';
    return failure(name, unit, baselineName, `${errs.length} of ${values.length + baselines.length} runs failed: ${why}`.slice(0, 2000), { ...rest, ...counts });
  }
  const ratio = b.median === 0 ? 0 : v.median / b.median;
  return {
    name,
    unit,
    value: round3(v.median),
    baseline: round3(b.median),
    baselineName,
    ratio: round3(ratio),
    ...counts,
    min: r3(v.min),
    max: r3(v.max),
    baselineMin: r3(b.min),
    baselineMax: r3(b.max),
    ...(judge === undefined ? {} : { met: judge({ value: v.median, baseline: b.median, ratio }) }),
    ...rest,
  };
}

/** The median of runs where Infinity is a run that never got there; Infinity when half or more did not. */
export function censoredSpread(xs: readonly number[]): { median: number; min: number; max: number; runs: number; never: number } {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  const never = s.filter((x) => x === Infinity).length;
  if (s.length === 0) return { median: NaN, min: NaN, max: NaN, runs: 0, never };
  const m = s.length >> 1;
  const median = s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]!, runs: s.length, never };
}

function fromCensoredRuns(
  name: string,
  unit: string,
  values: ReadonlyArray<number | Error>,
  baselines: ReadonlyArray<number | Error>,
  baselineName: string,
  rest: Partial<BenchResult>,
  judge?: (r: { value: number; baseline: number; ratio: number }) => boolean,
): BenchResult {
  const errs = [
    ...values.flatMap((v, i) => (v instanceof Error ? [`duocell run ${i + 1}: ${v.message}`] : [])),
    ...baselines.flatMap((v, i) => (v instanceof Error ? [`baseline run ${i + 1}: ${v.message}`] : [])),
  ];
  const counts = { runs: values.length, baselineRuns: baselines.length };
  if (errs.length > 0) return failure(name, unit, baselineName, `${errs.length} of ${values.length + baselines.length} runs failed: ${errs.join('; ')}`.slice(0, 2000), { ...rest, ...counts });
  const nums = (xs: ReadonlyArray<number | Error>): number[] => xs.filter((x): x is number => typeof x === 'number');
  const v = censoredSpread(nums(values));
  const b = censoredSpread(nums(baselines));
  const never = `never in ${v.never} of ${values.length} duocell runs, ${b.never} of ${baselines.length} baseline runs`;
  const note = [rest.note, v.never + b.never > 0 ? `${never} (counted as longer than any figure)` : undefined].filter((x) => x !== undefined).join('; ');
  if (!Number.isFinite(v.median)) return failure(name, unit, baselineName, `not reached: ${never}`, { ...rest, ...counts, note });
  const bOk = Number.isFinite(b.median);
  const ratio = bOk && b.median !== 0 ? v.median / b.median : undefined;
  const fin = (x: number): number | undefined => (Number.isFinite(x) ? round3(x) : undefined);
  return {
    name,
    unit,
    value: round3(v.median),
    ...(bOk ? { baseline: round3(b.median) } : {}),
    baselineName: bOk ? baselineName : `${baselineName}: not reached in ${b.never} of ${baselines.length} runs`,
    ...(ratio === undefined ? {} : { ratio: round3(ratio) }),
    ...counts,
    min: round3(v.min),
    ...(fin(v.max) === undefined ? {} : { max: fin(v.max) }),
    ...(fin(b.min) === undefined ? {} : { baselineMin: fin(b.min) }),
    ...(fin(b.max) === undefined ? {} : { baselineMax: fin(b.max) }),
    ...(judge === undefined ? {} : { met: judge({ value: v.median, baseline: b.median, ratio: ratio ?? NaN }) }),
    ...rest,
    ...(note === '' ? {} : { note }),
  };
}

/** CPU seconds (user+system) a process has used so far, from /proc. */
export function cpuSeconds(pid: number): number {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    const hz = 100;
    // utime + stime + the children it waited for (socat forks per connection)
    return (Number(rest[11]) + Number(rest[12]) + Number(rest[13]) + Number(rest[14])) / hz;
  } catch {
    return 0;
  }
}

/** CPU seconds a process has used so far, split into user and system time (its own threads only). */
export function cpuSplit(pid: number): { user: number; system: number } {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return { user: Number(rest[11]) / 100, system: Number(rest[12]) / 100 };
  } catch {
    return { user: 0, system: 0 };
  }
}

export function rssMiB(pid: number): number {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+) kB/.exec(s);
    return m === null ? 0 : Number(m[1]) / 1024;
  } catch {
    return 0;
  }
}

/** Run a command to completion and return stdout (rejects on failure). */
export function runCmd(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    c.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${err}`))));
  });
}

/** Board and state directories made by `benchDir` and not yet removed. */
const benchDirs = new Set<string>();

/**
 * A fresh directory in os.tmpdir() for one `duocell run` (board.json, state store). The group's
 * end removes it: run.ts calls removeBenchDirs() after every group, failed or not; other entry
 * points (handover-soak, tests) call it in their own finally.
 */
export function benchDir(prefix = 'dc-bench-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  benchDirs.add(dir);
  return dir;
}

/** Remove every directory benchDir made (its process may still run: a bench's store is disposable). */
export function removeBenchDirs(): void {
  for (const dir of benchDirs) fs.rmSync(dir, { recursive: true, force: true });
  benchDirs.clear();
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs per figure (≥ 5 unless BENCH_RUNS says otherwise for a quick look). */
export function runsWanted(): number {
  const n = Number(process.env.BENCH_RUNS ?? 5);
  return Number.isInteger(n) && n >= 1 ? n : 5;
}

import fs from 'node:fs';
import { spawn } from 'node:child_process';

/** One benchmark figure; ratio = value / baseline (as the issue asks). */
export interface BenchResult {
  name: string;
  unit: string;
  value: number;
  baseline: number;
  baselineName: string;
  ratio: number;
  target?: string;
  note?: string;
}

export function result(name: string, unit: string, value: number, baseline: number, baselineName: string, extra: Partial<BenchResult> = {}): BenchResult {
  const r = (x: number): number => Math.round(x * 1000) / 1000;
  return { name, unit, value: r(value), baseline: r(baseline), baselineName, ratio: baseline === 0 ? 0 : r(value / baseline), ...extra };
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

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { DuocellError } from '../src/core/errors.js';
import type { BenchResult } from './lib.js';
import { benchRoot } from './root.js';

/**
 * The results files (bench/README.md):
 *   bench/results/<group>.json  what the last run of one group measured, each entry stamped
 *   bench/results/latest.json   all groups' entries assembled, each with its own stamp; an
 *                               entry is `stale` when code that could change it (anything but
 *                               bench/results, docs, test and *.md) differs between the commit it
 *                               was measured at and HEAD at assembly
 */
const ROOT = benchRoot();
export const RESULTS_DIR = path.join(ROOT, 'bench/results');
export const LATEST = path.join(RESULTS_DIR, 'latest.json');

export interface Stamp {
  /** git rev-parse --short HEAD, with -dirty when files that matter differ from it. */
  commit: string;
  /** ISO 8601, when the group finished. */
  date: string;
  /** uname -r of the machine that measured. */
  kernel: string;
}

export interface Entry extends BenchResult {
  group: string;
  commit: string;
  date: string;
  kernel: string;
  links: string;
  pm: string;
  runs: number;
  stale?: boolean;
  staleReason?: string;
}

/** Paths whose changes never change a figure (pathspec excludes for git). */
export const NOT_FIGURES = [':(exclude)bench/results', ':(exclude)docs', ':(exclude)test', ':(exclude)*.md'];

const git = (args: string[]): string => execFileSync('git', ['-C', ROOT, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();

export function currentStamp(now = new Date()): Stamp {
  let commit = 'unknown';
  try {
    commit = git(['rev-parse', '--short', 'HEAD']);
    if (git(['status', '--porcelain', '--', '.', ...NOT_FIGURES]) !== '') commit += '-dirty';
  } catch {
    /* not a git checkout: commit stays unknown (and every entry reads stale) */
  }
  return { commit, date: now.toISOString(), kernel: os.release() };
}

/** Stamp a group's figures; figures without their own runs/spread are single-shot. */
export function stampEntries(group: string, rs: readonly BenchResult[], stamp: Stamp, defaults: { links: string; pm: string }): Entry[] {
  return rs.map((r) => {
    const single = r.value !== undefined && (r.runs === undefined || (r.runs === 1 && r.min === undefined));
    return {
      ...r,
      group,
      commit: stamp.commit,
      date: stamp.date,
      kernel: stamp.kernel,
      links: r.links ?? defaults.links,
      pm: r.pm ?? defaults.pm,
      runs: r.runs ?? (r.value === undefined ? 0 : 1),
      ...(single ? { min: r.value, max: r.value } : {}),
    };
  });
}

/**
 * Why an entry measured at `commit` is not current at HEAD, or undefined when it is. Pure given
 * `changedSince` (the files that matter changed from that commit to HEAD; undefined when git
 * does not know the commit).
 */
export function staleReason(commit: string, head: string, changedSince: (base: string) => string[] | undefined): string | undefined {
  const base = commit.replace(/-dirty$/, '');
  if (base === 'unknown' || base === '') return 'measured at an unknown commit';
  if (base === head) return undefined;
  const files = changedSince(base);
  if (files === undefined) return `commit ${base} is not in this repository`;
  if (files.length === 0) return undefined;
  return `${files.length} file(s) that can change figures differ from ${base} to ${head} (${files.slice(0, 3).join(', ')}${files.length > 3 ? ', …' : ''})`;
}

/** latest.json from the group files: groups in `order` first, then any other, entries as written. */
export function assemble(groups: ReadonlyMap<string, readonly Entry[]>, order: readonly string[], reasonOf: (commit: string) => string | undefined): Entry[] {
  const names = [...order.filter((g) => groups.has(g)), ...[...groups.keys()].filter((g) => !order.includes(g)).sort()];
  const out: Entry[] = [];
  const memo = new Map<string, string | undefined>();
  for (const g of names) {
    for (const e of groups.get(g)!) {
      if (!memo.has(e.commit)) memo.set(e.commit, reasonOf(e.commit));
      const why = memo.get(e.commit);
      const { stale: _s, staleReason: _r, ...rest } = e;
      out.push(why === undefined ? rest : { ...rest, stale: true, staleReason: why });
    }
  }
  return out;
}

export function checkEntries(x: unknown, file: string): Entry[] {
  if (!Array.isArray(x)) throw new DuocellError('DC_CONFIG_INVALID', `${file}: not a JSON array of benchmark entries`);
  x.forEach((e: unknown, i) => {
    const o = e as Partial<Entry> | null;
    const bad = (why: string): never => {
      throw new DuocellError('DC_CONFIG_INVALID', `${file}[${i}]: ${why}`);
    };
    if (o === null || typeof o !== 'object') bad('not an object');
    if (typeof o!.name !== 'string' || typeof o!.unit !== 'string') bad('needs name and unit');
    for (const k of ['group', 'commit', 'date', 'kernel', 'links', 'pm'] as const) if (typeof o![k] !== 'string') bad(`needs ${k}`);
    if (typeof o!.runs !== 'number') bad('needs runs');
    if (o!.value !== undefined && typeof o!.value !== 'number') bad('value is not a number');
    if (o!.error !== undefined && typeof o!.error !== 'string') bad('error is not a string');
    if (o!.value === undefined && o!.error === undefined) bad('has neither value nor error');
    if (o!.value !== undefined && o!.error !== undefined) bad('has both value and error');
  });
  return x as Entry[];
}

export function readGroupFiles(dir = RESULTS_DIR): Map<string, Entry[]> {
  const m = new Map<string, Entry[]>();
  if (!fs.existsSync(dir)) return m;
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.json') && n !== 'latest.json').sort()) {
    const file = path.join(dir, f);
    let parsed: unknown;
    try {
      parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new DuocellError('DC_CONFIG_INVALID', `${file}: ${(e as Error).message}`);
    }
    m.set(f.slice(0, -'.json'.length), checkEntries(parsed, file));
  }
  return m;
}

export function writeJson(file: string, x: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(x, null, 2) + '\n');
  fs.renameSync(tmp, file);
}

/** The git-backed stale check of `staleReason`. */
export function gitReason(): (commit: string) => string | undefined {
  let head = 'unknown';
  try {
    head = git(['rev-parse', '--short', 'HEAD']);
  } catch {
    return () => 'not a git checkout';
  }
  const changed = (base: string): string[] | undefined => {
    try {
      git(['cat-file', '-e', `${base}^{commit}`]);
    } catch {
      return undefined;
    }
    const out = git(['diff', '--name-only', base, 'HEAD', '--', '.', ...NOT_FIGURES]);
    return out === '' ? [] : out.split('\n');
  };
  return (commit) => staleReason(commit, head, changed);
}

/** Re-assemble latest.json from the group files. */
export function assembleLatest(order: readonly string[], dir = RESULTS_DIR): Entry[] {
  const entries = assemble(readGroupFiles(dir), order, gitReason());
  writeJson(path.join(dir, 'latest.json'), entries);
  return entries;
}

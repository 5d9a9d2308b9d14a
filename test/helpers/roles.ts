import type { ChildProcess } from 'node:child_process';
import type { Host } from './hosts.js';

/** The TypeScript loader flags of this tap process, for children that run .ts files. */
export const tsLoader = (): string[] => process.execArgv.filter((a) => a.includes('@tapjs/typescript'));

type Line = Record<string, unknown>;

/**
 * How long a test waits for a child's start-up line ("ready"): a bound that only ends a hang, not
 * a timing claim. Each child is a node process that loads TypeScript through tap's loader; at load
 * ~20 on 2 cores, with tap running other files beside it, 30 s was seen to run out (proxy-pool's
 * "srv ready"), and at load ~37 three children starting at once took over 120 s (proxy-sni).
 * Files that use it raise their own timeout (root t.setTimeout) to make room.
 */
export const START_MS = 240_000;
/** The file timeout (ms) for tests that wait START_MS more than once: beyond .taprc's 600 s. */
export const SLOW_FILE_MS = 1_200_000;

/** A child that prints one JSON object per line on stdout (a test's role in a namespace). */
export interface Role {
  child: ChildProcess;
  lines: Line[];
  /** The first line with `key` (already printed or to come); rejects if the child exits first. */
  line: (key: string) => Promise<Line>;
  /** The next line with `key` printed from now on. */
  next: (key: string) => Promise<Line>;
  /** The first line (printed or to come) that `pred` accepts; rejects if the child exits first or after `ms` (default START_MS). */
  wait: (pred: (l: Line) => boolean, what: string, ms?: number) => Promise<Line>;
  exited: Promise<number | null>;
  /** Its stderr and the stdout lines that were not JSON. */
  stderr: () => string;
}

/** Follow a child's JSON lines; `name` says which child in errors. */
export function followRole(child: ChildProcess, name: string): Role {
  const lines: Line[] = [];
  const checks = new Set<() => void>();
  let err = '';
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const raw = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        lines.push(JSON.parse(raw) as Line);
      } catch {
        err += raw + '\n';
      }
      for (const c of [...checks]) c();
    }
  });
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  const waitFrom = (from: number, pred: (l: Line) => boolean, what: string, ms?: number): Promise<Line> =>
    new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        checks.delete(check);
        clearTimeout(timer);
      };
      const check = (): void => {
        const l = lines.slice(from).find(pred);
        if (l !== undefined) (done(), resolve(l));
      };
      if (ms !== undefined) timer = setTimeout(() => (done(), reject(new Error(`${name}: timed out waiting for ${what}: ${err.slice(-1500)} ${JSON.stringify(lines.slice(-3))}`))), ms);
      checks.add(check);
      check();
      void exited.then((c) => {
        if (checks.has(check)) (done(), reject(new Error(`${name} exited (${c}) before ${what}: ${JSON.stringify(lines).slice(-1000)} ${err.slice(-2000)}`)));
      });
    });
  const has = (key: string) => (l: Line): boolean => l[key] !== undefined;
  return {
    child,
    lines,
    line: (key) => waitFrom(0, has(key), `"${key}"`),
    next: (key) => waitFrom(lines.length, has(key), `"${key}"`),
    wait: (pred, what, ms = START_MS) => waitFrom(0, pred, what, ms),
    exited,
    stderr: () => err,
  };
}

/** Run `file role ...args` with node (and tap's TS loader) in `h`, logging silenced. */
export function startRole(h: Host, file: string, role: string, args: string[] = [], stdin: 'pipe' | 'ignore' = 'ignore'): Role {
  const child = h.spawn(process.execPath, [...tsLoader(), file, role, ...args], {
    env: { ...process.env, DUOCELL_LOG_LEVEL: 'silent' },
    stdio: [stdin, 'pipe', 'pipe'],
  });
  return followRole(child, role);
}

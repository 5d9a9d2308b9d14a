import type { ChildProcess } from 'node:child_process';
import type { Host } from './hosts.js';

/** The TypeScript loader flags of this tap process, for children that run .ts files. */
export const tsLoader = (): string[] => process.execArgv.filter((a) => a.includes('@tapjs/typescript'));

/** A child that prints one JSON object per line on stdout (a test's role in a namespace). */
export interface Role {
  child: ChildProcess;
  lines: Array<Record<string, unknown>>;
  /** The first line with `key` (already printed or to come); rejects if the child exits first. */
  line: (key: string) => Promise<Record<string, unknown>>;
  /** The next line with `key` printed from now on. */
  next: (key: string) => Promise<Record<string, unknown>>;
}

/** Run `file role ...args` with node (and tap's TS loader) in `h`, logging silenced. */
export function startRole(h: Host, file: string, role: string, args: string[] = [], stdin: 'pipe' | 'ignore' = 'ignore'): Role {
  const child = h.spawn(process.execPath, [...tsLoader(), file, role, ...args], {
    env: { ...process.env, DUOCELL_LOG_LEVEL: 'silent' },
    stdio: [stdin, 'pipe', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<{ key: string; resolve: (l: Record<string, unknown>) => void }> = [];
  let err = '';
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const raw = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        const l = JSON.parse(raw) as Record<string, unknown>;
        lines.push(l);
        for (const w of [...waiters]) if (l[w.key] !== undefined) (waiters.splice(waiters.indexOf(w), 1), w.resolve(l));
      } catch {
        err += raw + '\n';
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  const wait = (key: string, what: () => string): Promise<Record<string, unknown>> =>
    Promise.race([
      new Promise<Record<string, unknown>>((resolve) => waiters.push({ key, resolve })),
      exited.then((c) => {
        throw new Error(`${role} exited (${c}) before "${key}": ${what()}`);
      }),
    ]);
  const line = (key: string): Promise<Record<string, unknown>> => {
    const have = lines.find((l) => l[key] !== undefined);
    return have !== undefined ? Promise.resolve(have) : wait(key, () => `${JSON.stringify(lines).slice(-1000)} ${err.slice(-2000)}`);
  };
  const next = (key: string): Promise<Record<string, unknown>> => wait(key, () => err.slice(-2000));
  return { child, lines, line, next };
}

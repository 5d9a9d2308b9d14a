import fs from 'node:fs';
import { pathToFileURL } from 'node:url';
import { DuocellError } from '../../src/core/errors.js';
import { parseSysctlConf } from '../sysctl.js';
import { checkEntries } from '../results.js';
import { SHIPPED_SYSCTL } from '../sysctl.js';
import { prng } from './convert.js';

/**
 * Fuzz the benchmarks' two readers: the sysctl.d parser (the shipped file, mutated, and noise)
 * and the results-file check (valid entries with fields dropped, retyped or replaced by noise).
 * Checked on every input: it parses, or it is refused with DC_CONFIG_INVALID; a parse of a
 * sysctl file gives keys of the allowed characters and non-empty values. Anything else throws.
 */
const int = (r: () => number, n: number): number => Math.floor(r() * n);
const CHARS = 'abc.XYZ_/-= \t#;\n019$(){}"\'\\*é';

function mutate(r: () => number, s: string): string {
  const a = [...s];
  for (let k = 1 + int(r, 6); k > 0; k--) {
    const i = int(r, a.length + 1);
    const c = CHARS[int(r, CHARS.length)]!;
    const op = int(r, 3);
    if (op === 0) a.splice(i, 0, c);
    else if (op === 1) a.splice(i, 1);
    else a[i] = c;
  }
  return a.join('');
}

const ENTRY = { name: 'aggregate', unit: 'Mbit/s', value: 1, baseline: 1, baselineName: 'b', ratio: 1, group: 'netns', commit: 'abc', date: 'd', kernel: 'k', links: 'realistic', pm: 'userspace', runs: 5 };
const NOISE: unknown[] = [null, 0, -1, 'x', '', true, [], {}, [1], { a: 1 }, NaN, undefined];

export function fuzz(n: number, seed: number): { iterations: number; parsed: number; rejected: Record<string, number> } {
  const r = prng(seed);
  const shipped = fs.readFileSync(SHIPPED_SYSCTL, 'utf8');
  const rejected: Record<string, number> = {};
  let parsed = 0;
  const judge = (f: () => void): void => {
    try {
      f();
      parsed++;
    } catch (e) {
      if (!(e instanceof DuocellError) || e.code !== 'DC_CONFIG_INVALID') throw e;
      rejected[e.code] = (rejected[e.code] ?? 0) + 1;
    }
  };
  for (let i = 0; i < n; i++) {
    if (i % 2 === 0) {
      const text = r() < 0.8 ? mutate(r, shipped) : Array.from({ length: int(r, 200) }, () => CHARS[int(r, CHARS.length)]).join('');
      judge(() => {
        for (const s of parseSysctlConf(text)) {
          if (!/^[A-Za-z0-9_.\-/]+$/.test(s.key) || s.key.includes('/') || s.value === '') throw new Error(`bad setting accepted: ${JSON.stringify(s)}`);
        }
      });
    } else {
      const e: Record<string, unknown> = { ...ENTRY };
      const keys = Object.keys(e);
      for (let k = int(r, 4); k > 0; k--) {
        const key = keys[int(r, keys.length)]!;
        if (r() < 0.5) delete e[key];
        else e[key] = NOISE[int(r, NOISE.length)];
      }
      if (r() < 0.2) e.error = r() < 0.5 ? 'failed' : 7;
      const doc: unknown = r() < 0.1 ? NOISE[int(r, NOISE.length)] : [e];
      judge(() => checkEntries(doc, 'fuzz.json'));
    }
  }
  return { iterations: n, parsed, rejected };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(JSON.stringify(fuzz(Number(process.argv[2] ?? 100_000), Number(process.argv[3] ?? 1))) + '\n');
}

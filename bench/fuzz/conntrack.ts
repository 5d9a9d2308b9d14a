import { pathToFileURL } from 'node:url';
import { parseConntrackLine } from '../../src/drivers/conntrack/parse.js';
import { prng } from './convert.js';

/**
 * Fuzz the conntrack line parser: real-shaped lines, mutated ones, truncated ones, and noise.
 * Every input either parses to a sane flow (ports in range, counters ≥ 0) or gives undefined;
 * a throw or an insane flow is a bug.
 *
 *   node --import <ts loader> bench/fuzz/conntrack.ts [iterations=200000] [seed=1]
 */
export function fuzz(iterations: number, seed: number): { iterations: number; parsed: number; refused: number } {
  const r = prng(seed);
  const int = (n: number): number => Math.floor(r() * n);
  let parsed = 0;
  let refused = 0;
  for (let i = 0; i < iterations; i++) {
    const sp = int(65536);
    const dp = int(65536);
    let s = `udp      17 ${int(180)} src=192.168.${int(256)}.${int(256)} dst=10.1.${int(256)}.1 sport=${sp} dport=${dp} packets=${int(1e6)} bytes=${int(1e9)} ${r() < 0.5 ? '[UNREPLIED] ' : ''}src=10.1.0.1 dst=10.182.2.2 sport=${dp} dport=${sp} packets=${int(1e6)} bytes=${int(1e9)} mark=${int(4096)} use=1`;
    const kind = int(4);
    if (kind === 1) {
      const a = s.split('');
      for (let k = 0, n = 1 + int(6); k < n; k++) a[int(a.length)] = String.fromCharCode(int(128));
      s = a.join('');
    } else if (kind === 2) s = s.slice(0, int(s.length));
    else if (kind === 3) s = Array.from({ length: int(300) }, () => String.fromCharCode(int(256))).join('');
    const f = parseConntrackLine(s);
    if (f === undefined) {
      refused++;
      continue;
    }
    parsed++;
    if (f.sport < 0 || f.sport > 65535 || f.dport < 0 || f.dport > 65535 || f.packets < 0 || f.bytes < 0 || f.mark < 0) throw new Error(`insane flow from ${JSON.stringify(s)}`);
    if (kind === 0 && (f.sport !== sp || f.dport !== dp)) throw new Error(`an untouched line lost its ports: ${s}`);
  }
  return { iterations, parsed, refused };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(JSON.stringify(fuzz(Number(process.argv[2] ?? 200_000), Number(process.argv[3] ?? 1))) + '\n');
}

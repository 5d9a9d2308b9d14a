import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { DuocellError } from '../../src/core/errors.js';
import { delaylinePath, validateLinkShape, type LinkShape } from '../../src/sim/links.js';
import { decodeProbe, encodeProbe } from '../../src/sim/probe.js';
import { prng } from './convert.js';

/**
 * Fuzz the link emulator's two validators against each other and the probe codec:
 * - random direction specs (known and unknown keys, numbers in and out of range, junk) go to
 *   build/delayline (with interfaces that do not exist) and, mapped to a LinkShape, to
 *   validateLinkShape: the binary must exit 2 exactly when TypeScript refuses the shape
 *   (DC_LINK_INVALID), 1 otherwise (no such interface), and never die of a signal;
 * - random and mutated datagrams through decodeProbe: undefined or a sequence that round-trips.
 * Anything else is a bug and is thrown.
 */

const int = (r: () => number, n: number): number => Math.floor(r() * n);
const KEYS = ['delay', 'jitter', 'loss', 'rate', 'queue'] as const;
const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

function value(r: () => number): string {
  const k = r();
  if (k < 0.1) return ['', 'abc', '1e999', 'nan', '--1', '1.5.2', '5ms', '-1e999', '.', '+'][int(r, 10)]!;
  if (k < 0.2) return ['0', '-0', '100', '100.0001', '60000', '60000.5', '100000', '100001', '1e-9', '-1e-9'][int(r, 10)]!;
  const n = (r() - 0.2) * [1, 10, 200, 70_000, 200_000][int(r, 5)]!;
  return r() < 0.5 ? String(Math.round(n)) : n.toFixed(int(r, 4));
}

function spec(r: () => number): string {
  const parts: string[] = [];
  for (let i = int(r, 5); i > 0; i--) {
    const key = r() < 0.9 ? KEYS[int(r, KEYS.length)]! : ['bogus', 'Delay', 'delay ', 'rate_mbit'][int(r, 4)]!;
    parts.push(r() < 0.03 ? key : `${key}=${value(r)}`);
  }
  return parts.join(',');
}

/** The LinkShape a delay-line spec means, or a reason it cannot be one. */
function toShape(s: string): LinkShape | string {
  const shape: Record<string, unknown> = { rateIn: 'delayline' };
  const map: Record<string, string> = { delay: 'delayMs', jitter: 'jitterMs', loss: 'lossPct', rate: 'rateMbit', queue: 'queueMs' };
  for (const tok of s.split(',').filter((x) => x !== '')) {
    const eq = tok.indexOf('=');
    if (eq < 0) return `no value in ${tok}`;
    const key = map[tok.slice(0, eq)];
    if (key === undefined) return `unknown key ${tok.slice(0, eq)}`;
    const v = tok.slice(eq + 1);
    shape[key] = NUMBER.test(v) ? Number(v) : Number.NaN;
    // every value is checked as it comes, even one a later duplicate key would replace
    try {
      validateLinkShape({ rateIn: 'delayline', [key]: shape[key] });
    } catch {
      return `bad ${tok}`;
    }
  }
  return shape as LinkShape;
}

export interface LinksFuzzResult {
  iterations: number;
  accepted: number;
  refused: number;
  probes: number;
}

export function fuzz(iterations: number, seed: number, bin = delaylinePath()): LinksFuzzResult {
  const r = prng(seed);
  const res: LinksFuzzResult = { iterations: 0, accepted: 0, refused: 0, probes: 0 };
  for (let i = 0; i < iterations; i++) {
    res.iterations++;
    const s = spec(r);
    const shape = toShape(s);
    let tsRefuses = typeof shape === 'string';
    if (typeof shape !== 'string') {
      try {
        validateLinkShape(shape);
      } catch (e) {
        if (!(e instanceof DuocellError) || e.code !== 'DC_LINK_INVALID') throw new Error(`validateLinkShape threw ${String(e)} for ${s}`);
        tsRefuses = true;
      }
    }
    const p = spawnSync(bin, ['--a', 'dlfz0a', '--b', 'dlfz0b', '--ab', s], { encoding: 'utf8' });
    if (p.signal !== null) throw new Error(`delayline died of ${p.signal} for --ab '${s}'`);
    const want = tsRefuses ? 2 : 1;
    if (p.status !== want) throw new Error(`delayline --ab '${s}' exited ${p.status}, TypeScript ${tsRefuses ? 'refuses' : 'accepts'} it: ${p.stderr}`);
    if (tsRefuses) res.refused++;
    else res.accepted++;

    // the probe codec
    const seq = int(r, 2 ** 32);
    const good = encodeProbe(seq, 16 + int(r, 100));
    const bad = Buffer.from(good);
    for (let k = int(r, 4); k > 0; k--) bad[int(r, bad.length)] = int(r, 256);
    const cut = bad.subarray(0, int(r, bad.length + 1));
    const d = decodeProbe(good);
    if (d?.seq !== seq) throw new Error(`probe ${seq} did not round-trip`);
    for (const b of [bad, cut]) {
      const x = decodeProbe(b);
      if (x !== undefined && (b.length < 16 || x.seq !== b.readUInt32BE(4))) throw new Error('decodeProbe accepted a short or inconsistent datagram');
    }
    res.probes++;
  }
  return res;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(JSON.stringify(fuzz(Number(process.argv[2] ?? 2000), Number(process.argv[3] ?? 1))) + '\n');
}

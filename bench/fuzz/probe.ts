import { pathToFileURL } from 'node:url';
import { DuocellError } from '../../src/core/errors.js';
import { decodeProbe, encodeProbe, PROBE_HEADER } from '../../src/protocols/probe/codec.js';
import { prng } from './convert.js';

/**
 * Fuzz the path-probe codec: valid probes (every size), mutated ones, truncated ones, and noise.
 * Every input either decodes (and a valid, untouched probe decodes to what was encoded) or throws
 * a DuocellError with DC_PROBE_MALFORMED; anything else is a bug.
 *
 *   node --import <ts loader> bench/fuzz/probe.ts [iterations=200000] [seed=1]
 */
export async function fuzz(iterations: number, seed: number): Promise<{ iterations: number; decoded: number; rejected: Record<string, number> }> {
  const r = prng(seed);
  const int = (n: number): number => Math.floor(r() * n);
  const rejected: Record<string, number> = {};
  let decoded = 0;
  for (let i = 0; i < iterations; i++) {
    const f = { session: int(0x100000000), seq: int(0x100000000), sentUs: BigInt(int(2 ** 52)) };
    let b: Buffer = encodeProbe(f, PROBE_HEADER + int(64));
    const kind = int(4);
    if (kind === 1) for (let k = 0, n = 1 + int(4); k < n; k++) b[int(b.length)] = int(256);
    else if (kind === 2) b = b.subarray(0, int(b.length));
    else if (kind === 3) b = Buffer.from(Array.from({ length: int(1600) }, () => int(256)));
    try {
      const d = decodeProbe(b);
      decoded++;
      if (kind === 0 && (d.session !== f.session || d.seq !== f.seq || d.sentUs !== f.sentUs)) throw new Error(`round trip changed a probe: ${JSON.stringify({ ...f, sentUs: String(f.sentUs) })}`);
    } catch (e) {
      if (!(e instanceof DuocellError)) throw e;
      rejected[e.code] = (rejected[e.code] ?? 0) + 1;
    }
  }
  return { iterations, decoded, rejected };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const res = await fuzz(Number(process.argv[2] ?? 200_000), Number(process.argv[3] ?? 1));
  process.stdout.write(JSON.stringify(res) + '\n');
}

import { pathToFileURL } from 'node:url';
import { DuocellError } from '../../src/core/errors.js';
import { decodeEcho, encodeEcho, type IcmpFamily } from '../../src/protocols/icmp/echo.js';
import { EchoMatcher } from '../../src/drivers/probe/icmp.js';
import { prng } from './convert.js';

/**
 * Fuzz the ICMP echo codec and the ICMP probe's reply filter: valid echo requests and replies of
 * both families (every data size), mutated ones, truncated ones, and noise. Every input either
 * decodes (a valid, untouched message decodes to what was encoded) or throws a DuocellError with
 * DC_PROBE_MALFORMED; the filter never throws and accepts only replies to its own requests.
 *
 *   node --import <ts loader> bench/fuzz/icmp.ts [iterations=200000] [seed=1]
 */
export async function fuzz(iterations: number, seed: number): Promise<{ iterations: number; decoded: number; matched: number; falseMatches: number; rejected: Record<string, number> }> {
  const r = prng(seed);
  const int = (n: number): number => Math.floor(r() * n);
  const rejected: Record<string, number> = {};
  let decoded = 0;
  let matched = 0;
  let falseMatches = 0;
  const matchers = { 4: new EchoMatcher(4, 0x1234), 6: new EchoMatcher(6, 0x1234) } as const;
  for (let i = 0; i < iterations; i++) {
    const family: IcmpFamily = int(2) === 0 ? 4 : 6;
    const data = Buffer.from(Array.from({ length: int(80) }, () => int(256)));
    const m = { kind: int(2) === 0 ? ('request' as const) : ('reply' as const), id: int(0x10000), seq: int(0x10000), data };
    let b: Buffer = encodeEcho(family, m);
    const kind = int(4);
    if (kind === 1) for (let k = 0, n = 1 + int(4); k < n; k++) b[int(b.length)] = int(256);
    else if (kind === 2) b = b.subarray(0, int(b.length));
    else if (kind === 3) b = Buffer.from(Array.from({ length: int(1600) }, () => int(256)));
    try {
      const d = decodeEcho(family, b);
      decoded++;
      if (kind === 0 && (d.kind !== m.kind || d.id !== m.id || d.seq !== m.seq || !d.data.equals(m.data))) throw new Error(`round trip changed an echo: ${JSON.stringify({ ...m, data: data.toString('hex') })}`);
    } catch (e) {
      if (!(e instanceof DuocellError)) throw e;
      rejected[e.code] = (rejected[e.code] ?? 0) + 1;
    }
    // the reply filter: a request of ours answered (exactly once), or anything else refused
    const mt = matchers[family];
    const req = mt.request(data);
    const ours = Buffer.from(req);
    ours[0] = family === 4 ? 0 : 129;
    if (kind === 0) {
      const got = mt.reply(ours);
      if (got === undefined || !got.equals(data)) throw new Error('a reply to our own request was refused');
      if (mt.reply(ours) !== undefined) throw new Error('a repeated reply was accepted');
      matched++;
    } else if (mt.reply(b) !== undefined) {
      // noise may by chance look like a reply to an outstanding request: it must then really be one
      const d = decodeEcho(family, b);
      if (d.kind !== 'reply' || d.id !== 0x1234) falseMatches++;
    }
  }
  return { iterations, decoded, matched, falseMatches, rejected };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const res = await fuzz(Number(process.argv[2] ?? 200_000), Number(process.argv[3] ?? 1));
  process.stdout.write(JSON.stringify(res) + '\n');
}

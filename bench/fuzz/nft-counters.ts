import { pathToFileURL } from 'node:url';
import { parseTableCounters } from '../../src/drivers/nft/counters.js';
import { prng } from './convert.js';

/**
 * Fuzz the nft table-counter reader (`nft -j list table` → counters): real-shaped documents,
 * mutated bytes, truncations, wrong types in each field, and noise. It never throws; every count
 * it returns is a safe integer ≥ 0; an untouched document gives exactly its counts.
 *
 *   node --import <ts loader> bench/fuzz/nft-counters.ts [iterations=50000] [seed=1]
 */
export function fuzz(iterations: number, seed: number): { iterations: number; exact: number; partial: number } {
  const r = prng(seed);
  const int = (n: number): number => Math.floor(r() * n);
  const odd = (): unknown => [null, -1, 1.5, '7', [], {}, 2 ** 60, true][int(8)];
  let exact = 0;
  let partial = 0;
  for (let i = 0; i < iterations; i++) {
    const q = int(1e6);
    const drops = Array.from({ length: int(5) }, (_, k) => ({ a: `192.168.${int(256)}.${k}`, n: int(1e9) }));
    const doc: Record<string, unknown> = {
      nftables: [
        { metainfo: { version: '1.0.6' } },
        { counter: { family: 'inet', name: 'quic_blocked', table: 't', packets: q, bytes: q * 60 } },
        { set: { family: 'inet', name: 'capdrops4', table: 't', type: 'ipv4_addr', elem: drops.map((d) => ({ elem: { val: d.a, counter: { packets: d.n, bytes: d.n } } })) } },
      ],
    };
    const kind = int(5);
    let text = JSON.stringify(doc);
    if (kind === 1) {
      const a = text.split('');
      for (let k = 0, n = 1 + int(4); k < n; k++) a[int(a.length)] = String.fromCharCode(int(128));
      text = a.join('');
    } else if (kind === 2) text = text.slice(0, int(text.length));
    else if (kind === 3) {
      const items = doc.nftables as Array<Record<string, Record<string, unknown>>>;
      const it = items[1 + int(2)]!;
      const inner = Object.values(it)[0]!;
      const keys = Object.keys(inner);
      inner[keys[int(keys.length)]!] = odd();
      if (int(2) === 0) (doc as Record<string, unknown>).nftables = odd();
      text = JSON.stringify(doc);
    } else if (kind === 4) text = Array.from({ length: int(200) }, () => String.fromCharCode(int(256))).join('');
    const c = parseTableCounters(text);
    const all = [...Object.values(c.counters), ...Object.values(c.sets).flatMap((s) => Object.values(s))];
    if (!all.every((n) => Number.isSafeInteger(n) && n >= 0)) throw new Error(`insane count from ${JSON.stringify(text)}`);
    if (kind === 0) {
      const want: Record<string, number> = {};
      for (const d of drops) want[d.a] = d.n;
      if (c.counters.quic_blocked !== q || JSON.stringify({ ...c.sets.capdrops4 }) !== JSON.stringify(want)) throw new Error(`an untouched document lost counts: ${text}`);
      exact++;
    } else partial++;
  }
  return { iterations, exact, partial };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(JSON.stringify(fuzz(Number(process.argv[2] ?? 50_000), Number(process.argv[3] ?? 1))) + '\n');
}

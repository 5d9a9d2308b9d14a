import t from 'tap';
import { prng } from '../../bench/fuzz/convert.js';
import {
  addressKey,
  canonicalAddress,
  commonPrefixBits,
  formatIPv4Number,
  ipFamily,
  longestMatch,
  mappedIPv4,
  parsePrefix,
  prefixContains,
  sameAddress,
  unmapV4,
} from '../../src/core/net.js';

/**
 * Fuzz the address helpers of src/core/net.ts (kept here, not in bench/fuzz, while bench/ is
 * another engineer's area): every spelling of an IPv4-mapped address of a random IPv4 address
 * unmaps, compares and matches as that address; random and mutated text never throws.
 */
function fuzz(iterations: number, seed: number): { iterations: number; spellings: number; junk: number; junkAddresses: number; prefixes: number } {
  const r = prng(seed);
  const int = (n: number): number => Math.floor(r() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const hex = (v: number): string => {
    const h = v.toString(16).padStart(int(2) === 0 ? 1 : 4, '0');
    return int(2) === 0 ? h : h.toUpperCase();
  };
  /** One random spelling of ::ffff:<v4>. */
  const spell = (v4: number): string => {
    const hi = v4 >>> 16;
    const lo = v4 & 0xffff;
    const tail = int(3) === 0 ? formatIPv4Number(v4) : `${hex(hi)}:${hex(lo)}`;
    const ffff = pick(['ffff', 'FFFF', 'Ffff', 'fFfF']);
    const zeros = Array.from({ length: 5 }, () => pick(['0', '00', '000', '0000']));
    let s: string;
    switch (int(4)) {
      case 0: s = `::${ffff}:${tail}`; break;
      case 1: s = `${zeros.join(':')}:${ffff}:${tail}`; break;
      case 2: { const k = 1 + int(4); s = `${zeros.slice(0, k).join(':')}::${ffff}:${tail}`; break; } // `::` in the middle
      default: { const k = 1 + int(4); s = `::${zeros.slice(0, 5 - k).join(':')}${5 - k > 0 ? ':' : ''}${ffff}:${tail}`; }
    }
    return int(10) === 0 ? `${s}%eth${int(3)}` : s;
  };
  const alphabet = '0123456789abcdefABCDEFfx:.%/ -';
  let spellings = 0;
  let junk = 0;
  let junkAddresses = 0;
  let prefixes = 0;
  for (let i = 0; i < iterations; i++) {
    const v4 = (int(0x10000) * 0x10000 + int(0x10000)) >>> 0;
    const dotted = formatIPv4Number(v4);
    const s = spell(v4);
    const fail = (what: string): never => {
      throw new Error(`${what}: ${JSON.stringify(s)} (of ${dotted})`);
    };
    if (mappedIPv4(s) !== v4) fail('mappedIPv4');
    if (unmapV4(s) !== dotted) fail('unmapV4');
    if (!s.includes('%') && canonicalAddress(s) !== dotted) fail('canonicalAddress');
    if (addressKey(s) !== dotted) fail('addressKey');
    if (!sameAddress(s, dotted)) fail('sameAddress');
    if (ipFamily(s) !== 6) fail('ipFamily (node:net agrees it is IPv6 text)');
    if (commonPrefixBits(s, dotted) !== 32) fail('commonPrefixBits');
    const bits = int(33);
    const p = parsePrefix(`${formatIPv4Number(int(2) === 0 ? v4 : int(0x100000000) >>> 0)}/${bits}`)!;
    // the mapped spelling and the dotted address are matched alike by every IPv4 prefix…
    if (prefixContains(p, s) !== prefixContains(p, dotted)) fail(`prefixContains ${p.text}`);
    // …and by the same prefix written in the mapped range
    const p6 = parsePrefix(`::ffff:${p.text.split('/')[0]}/${bits + 96}`)!;
    if (prefixContains(p6, s) !== prefixContains(p, dotted) || prefixContains(p6, dotted) !== prefixContains(p, dotted)) fail(`prefixContains ${p6.text}`);
    if (longestMatch([{ prefix: p, value: 1 }], s) !== (prefixContains(p, dotted) ? 1 : undefined)) fail('longestMatch');
    prefixes++;
    spellings++;
    // junk: random text, and the spelling mutated; nothing throws, answers stay consistent
    const junkText = int(2) === 0 ? Array.from({ length: int(48) }, () => alphabet[int(alphabet.length)]).join('') : (() => {
      const c = s.split('');
      for (let k = 0, n = 1 + int(3); k < n; k++) c.splice(int(c.length + 1), int(2), alphabet[int(alphabet.length)]!);
      return c.join('');
    })();
    const u = unmapV4(junkText);
    const m = mappedIPv4(junkText);
    if ((m === undefined) !== (u === junkText) && !(m !== undefined && u === junkText)) throw new Error(`unmapV4/mappedIPv4 disagree on ${JSON.stringify(junkText)}`);
    if (m !== undefined && u !== formatIPv4Number(m)) throw new Error(`unmapV4 ≠ mappedIPv4 on ${JSON.stringify(junkText)}`);
    const key = addressKey(junkText);
    const canon = canonicalAddress(m === undefined ? junkText : formatIPv4Number(m));
    if (canon === undefined ? key !== junkText : key !== canon) throw new Error(`addressKey ${JSON.stringify(junkText)}`);
    if (canonicalAddress(junkText) !== undefined) junkAddresses++;
    const jp = parsePrefix(junkText);
    if (jp !== undefined && (jp.bits < 0 || jp.bits > (jp.family === 4 ? 32 : 128))) throw new Error(`parsePrefix ${JSON.stringify(junkText)}`);
    if (prefixContains(p, junkText) && canonicalAddress(unmapV4(junkText.split('%')[0]!)) === undefined) throw new Error(`prefixContains matched a non-address ${JSON.stringify(junkText)}`);
    commonPrefixBits(junkText, s);
    sameAddress(junkText, dotted);
    junk++;
  }
  return { iterations, spellings, junk, junkAddresses, prefixes };
}

t.test('address helpers: 50k random IPv4 addresses in random mapped spellings, and junk text', async (t) => {
  const res = fuzz(50_000, 17);
  t.equal(res.spellings, 50_000, 'every mapped spelling unmaps, compares and matches as its IPv4 address');
  t.equal(res.junk, 50_000, 'random and mutated text never throws');
  t.ok(res.junkAddresses > 1000, `mutations still reach valid addresses (${res.junkAddresses})`);
});

t.test('the helpers never throw on values that are not strings', async (t) => {
  for (const v of [undefined, null, 0, {}, [], Symbol('x')] as unknown as string[]) {
    t.equal(unmapV4(v), v);
    t.equal(mappedIPv4(v), undefined);
    t.equal(canonicalAddress(v), undefined);
    t.equal(ipFamily(v), 0);
    t.equal(parsePrefix(v), undefined);
    t.notOk(prefixContains(parsePrefix('0.0.0.0/0')!, v));
    t.equal(commonPrefixBits(v, '10.0.0.1'), -1);
  }
});

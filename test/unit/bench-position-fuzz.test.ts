import t, { type Test } from 'tap';
import { describeFault, PositionChecker, positionBytes, positionChunks, type PositionReport } from '../../bench/position.js';

/** xorshift32 in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

/** Feed `b` in random chunks (1 byte .. 70 KiB) and end. */
function check(b: Buffer, r: () => number): PositionReport {
  const c = new PositionChecker();
  for (let i = 0; i < b.length; ) {
    const n = 1 + Math.floor(r() * (r() < 0.3 ? 40 : 70_000));
    c.update(b.subarray(i, i + n));
    i += n;
  }
  return c.end();
}

/** Every promise the report makes about `got`: checked against the bytes themselves. */
function consistent(t: Test, got: Buffer, rep: PositionReport, what: string): void {
  const own = positionBytes(0, got.length);
  let first = -1;
  for (let i = 0; i < got.length; i++) {
    if (got[i] !== own[i]) {
      first = i;
      break;
    }
  }
  t.equal(rep.received, got.length, `${what}: received`);
  t.equal(rep.firstBad, first < 0 ? undefined : first, `${what}: the first bad byte is the first byte off the pattern`);
  let at = 0;
  for (const g of rep.segments) {
    if (g.at !== at) t.fail(`${what}: segments are contiguous (${g.at} after ${at})`);
    const bytes = got.subarray(g.at, g.at + g.len);
    if (typeof g.from === 'number' && !bytes.equals(positionBytes(g.from, g.len))) t.fail(`${what}: segment ${g.at}+${g.len} is from ${g.from}`);
    if (g.from === 'zero' && bytes.some((x) => x !== 0)) t.fail(`${what}: zero segment ${g.at}+${g.len} holds non-zero bytes`);
    at += g.len;
  }
  if (!rep.truncated) t.equal(at, got.length, `${what}: the segments cover the stream`);
}

t.test('the pattern: every aligned word is its own offset, in any chunking', async (t) => {
  const b = positionBytes(0, 64);
  t.equal(b.readBigUInt64LE(0), 0n);
  t.equal(b.readBigUInt64LE(8), 8n);
  t.equal(b.readBigUInt64LE(56), 56n);
  t.same(positionBytes(13, 20), b.subarray(13, 33));
  t.equal(positionBytes(2 ** 33, 8).readBigUInt64LE(0), 2n ** 33n, 'offsets past 4 GiB');
  const it = positionChunks(1000, 77);
  const parts: Buffer[] = [];
  for (let x = it.next(); x !== undefined; x = it.next()) parts.push(x);
  t.same(Buffer.concat(parts), positionBytes(0, 1000));
});

t.test('an intact stream: no fault, one segment', async (t) => {
  const n = 3 * 1024 * 1024 + 5;
  const rep = check(positionBytes(0, n), rng(7));
  t.equal(rep.firstBad, undefined);
  t.equal(rep.badBytes, 0);
  t.same(rep.segments, [{ at: 0, len: n, from: 0 }]);
  t.equal(describeFault(rep), undefined);
});

t.test('named faults are told apart: a range twice, a hole, zeroes, foreign bytes, misaligned', async (t) => {
  const src = positionBytes(0, 1 << 20);
  const dup = Buffer.concat([src.subarray(0, 500_000), src.subarray(400_000, 465_536), src.subarray(500_000)]);
  let rep = check(dup, rng(1));
  t.equal(rep.firstBad, 500_000);
  t.equal(rep.kind, 'duplicate');
  t.same(rep.segments, [
    { at: 0, len: 500_000, from: 0 },
    { at: 500_000, len: 65_536, from: 400_000 },
    { at: 565_536, len: src.length - 500_000, from: 500_000 },
  ]);
  t.equal(rep.badBytes, 65_536 + src.length - 500_000);
  t.match(describeFault(rep), /first bad byte at offset 500000 \(duplicate\).*500000\+65536 ←400000/);

  rep = check(Buffer.concat([src.subarray(0, 123_457), src.subarray(200_003)]), rng(2));
  t.equal(rep.firstBad, 123_457);
  t.equal(rep.kind, 'hole');
  t.same(rep.segments[1], { at: 123_457, len: src.length - 200_003, from: 200_003 });

  const zeroed = Buffer.from(src);
  zeroed.fill(0, 300_001, 301_449);
  rep = check(zeroed, rng(3));
  t.equal(rep.kind, 'zero');
  consistent(t, zeroed, rep, 'zeroed');
  t.ok(rep.segments.some((g) => g.from === 'zero'), 'a zero segment');
  t.same(rep.segments.at(-1)?.from, rep.segments.at(-1)?.at, 'back in place after the zeroes');

  const foreign = Buffer.concat([src.subarray(0, 1000), Buffer.alloc(64, 0xab), src.subarray(1000)]);
  rep = check(foreign, rng(4));
  t.equal(rep.kind, 'foreign');
  t.same(rep.segments[1], { at: 1000, len: 64, from: null });
  t.same(rep.segments[2], { at: 1064, len: src.length - 1000, from: 1000 });
});

t.test('fuzz: random duplicates, holes, swaps, zeroes and noise in random chunkings', async (t) => {
  const r = rng(20261207);
  const src = positionBytes(0, 256 * 1024);
  for (let round = 0; round < 300; round++) {
    let b = Buffer.from(src);
    const edits = 1 + Math.floor(r() * 3);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(r() * b.length);
      const len = 1 + Math.floor(r() * (r() < 0.5 ? 20 : 20_000));
      const from = Math.floor(r() * b.length);
      const k = Math.floor(r() * 5);
      if (k === 0) b = Buffer.concat([b.subarray(0, at), b.subarray(from, from + len), b.subarray(at)]);
      else if (k === 1) b = Buffer.concat([b.subarray(0, at), b.subarray(at + len)]);
      else if (k === 2) b.fill(0, at, Math.min(b.length, at + len));
      else if (k === 3) for (let i = at; i < Math.min(b.length, at + len); i++) b[i] = Math.floor(r() * 256);
      else {
        const x = Buffer.from(b.subarray(at, at + len));
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + len, at + 2 * len), x, b.subarray(at + 2 * len)]);
      }
    }
    const rep = check(b, r);
    consistent(t, b, rep, `round ${round}`);
    if (rep.firstBad !== undefined) t.type(describeFault(rep), 'string');
  }
  t.throws(() => {
    const c = new PositionChecker();
    c.end();
    c.update(Buffer.alloc(1));
  }, /after end/);
});

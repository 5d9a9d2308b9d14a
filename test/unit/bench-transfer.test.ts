import t from 'tap';
import { createHash } from 'node:crypto';
import { positionBytes } from '../../bench/position.js';
import { patternChunks, patternSha256, transferMbit, verifyTransfer } from '../../bench/transfer.js';

const hashOf = (n: number): string => {
  const h = createHash('sha256');
  const it = patternChunks(n, 777);
  for (let b = it.next(); b !== undefined; b = it.next()) h.update(b);
  return h.digest('hex');
};

t.test('the pattern is the position pattern and hashes the same in any chunking', async (t) => {
  const n = (1 << 20) * 2 + 5;
  t.equal(patternSha256(n), hashOf(n));
  const it = patternChunks(n, 1 << 20);
  const parts: Buffer[] = [];
  for (let b = it.next(); b !== undefined; b = it.next()) parts.push(b);
  const all = Buffer.concat(parts);
  t.equal(all.length, n);
  t.same(all.subarray(n - 13), positionBytes(n - 13, 13));
  t.equal(all.readBigUInt64LE(1 << 20), BigInt(1 << 20), 'every aligned word is its offset');
  t.not(patternSha256(100), patternSha256(101));
});

t.test('a transfer counts only with every byte and the right hash', async (t) => {
  const n = 3 * 1024 * 1024;
  const good = { received: n, receivedHash: patternSha256(n), lastByteAt: 1000 };
  t.equal(verifyTransfer(good, n), undefined);
  t.match(verifyTransfer({ ...good, received: n - 1 }, n), /got 3145727 of 3145728 bytes/);
  t.match(verifyTransfer({ ...good, receivedHash: createHash('sha256').update('x').digest('hex') }, n), /SHA-256 .* is not the payload's/);
  // a transfer with a byte out of place: right size, wrong hash
  const it = patternChunks(n, n);
  const swapped = Buffer.from(it.next()!);
  [swapped[8], swapped[9]] = [swapped[9]!, swapped[8]!];
  t.match(verifyTransfer({ ...good, receivedHash: createHash('sha256').update(swapped).digest('hex') }, n), /SHA-256/);
  t.match(verifyTransfer({ ...good, error: 'ECONNRESET' }, n), /receiver: ECONNRESET/);
  t.match(verifyTransfer({ ...good, receivedHash: 'x', fault: 'first bad byte at offset 10 (duplicate)' }, n), /is not the payload's; first bad byte at offset 10/);
  t.match(verifyTransfer(undefined, n), /no report/);
  const { lastByteAt: _l, ...noStamp } = good;
  t.match(verifyTransfer(noStamp, n), /last byte/);
});

t.test('rate runs to the receiver\'s last byte', async (t) => {
  t.equal(transferMbit(1_000_000, 1000, 2000), 8);
  t.ok(Number.isNaN(transferMbit(1, 5, 5)));
});

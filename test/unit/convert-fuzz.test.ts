import t from 'tap';
import { fuzz } from '../../bench/fuzz/convert.js';

t.test('Convert codec survives 20k random, mutated and noisy messages', async (t) => {
  const before = process.memoryUsage().heapUsed;
  const res = await fuzz(20_000, 11);
  t.equal(res.iterations, 20_000);
  const codes = Object.keys(res.rejected).filter((c) => c !== 'need-more');
  t.ok(codes.every((c) => /(^|:)DC_CONVERT_[A-Z_]+$/.test(c)), `every rejection has a Convert code: ${codes.join(', ')}`);
  for (const c of ['DC_CONVERT_MALFORMED', 'DC_CONVERT_UNSUPPORTED_VERSION', 'DC_CONVERT_UNSUPPORTED_MESSAGE']) {
    t.ok((res.rejected[c] ?? 0) > 100, `${c} is reached (${res.rejected[c] ?? 0})`);
  }
  t.ok((res.rejected['need-more'] ?? 0) > 100, 'truncations are asked to wait, not rejected');
  t.ok(process.memoryUsage().heapUsed - before < 200 * 1024 * 1024, 'no unbounded growth');
});

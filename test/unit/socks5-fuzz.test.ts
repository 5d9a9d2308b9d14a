import t from 'tap';
import { fuzz } from '../../bench/fuzz/socks5.js';

t.test('SOCKS5 codec survives 20k random, mutated and noisy messages', async (t) => {
  const before = process.memoryUsage().heapUsed;
  const res = await fuzz(20_000, 11);
  t.equal(res.iterations, 20_000);
  const codes = Object.keys(res.rejected).filter((c) => c !== 'need-more');
  t.ok(codes.every((c) => /^DC_SOCKS_[A-Z_]+$/.test(c)), `every rejection has a SOCKS code: ${codes.join(', ')}`);
  for (const c of ['DC_SOCKS_VERSION', 'DC_SOCKS_MALFORMED', 'DC_SOCKS_COMMAND_UNSUPPORTED', 'DC_SOCKS_ADDRESS_TYPE']) {
    t.ok((res.rejected[c] ?? 0) > 10, `${c} is reached (${res.rejected[c] ?? 0})`);
  }
  t.ok(process.memoryUsage().heapUsed - before < 200 * 1024 * 1024, 'no unbounded growth');
});

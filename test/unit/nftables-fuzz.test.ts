import t from 'tap';
import { fuzz } from '../../bench/fuzz/nftables.js';

t.test('the nf_tables reply decoder survives 20k captured, generated and mutated datagrams; batches always frame', async (t) => {
  const before = process.memoryUsage().heapUsed;
  const res = fuzz(20_000, 7);
  t.equal(res.iterations, 20_000);
  t.ok(res.decoded > 5000, `valid replies decode (${res.decoded})`);
  const codes = Object.keys(res.rejected);
  t.ok(codes.length > 0 && codes.every((c) => c.startsWith('DC_')), `every rejection has a code: ${codes.join(', ')}`);
  t.ok((res.rejected.DC_NETLINK_MALFORMED ?? 0) > 1000, `malformed input is recognised (${res.rejected.DC_NETLINK_MALFORMED})`);
  t.ok(process.memoryUsage().heapUsed - before < 200 * 1024 * 1024, 'no unbounded growth');
});

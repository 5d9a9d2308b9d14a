import t from 'tap';
import { fuzz } from '../../bench/fuzz/netlink.js';

t.test('netlink codecs survive 20k random and mutated datagrams', async (t) => {
  const before = process.memoryUsage().heapUsed;
  const res = await fuzz(20_000, 7);
  t.equal(res.iterations, 20_000);
  const codes = Object.keys(res.rejected);
  t.ok(codes.length > 0, 'some inputs are rejected');
  t.ok(codes.every((c) => c.startsWith('DC_')), `every rejection has a code: ${codes.join(', ')}`);
  t.ok(res.rejected.DC_NETLINK_MALFORMED! > 1000, 'malformed input is recognised');
  t.ok(process.memoryUsage().heapUsed - before < 200 * 1024 * 1024, 'no unbounded growth');
});

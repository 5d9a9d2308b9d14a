import t from 'tap';
import { fuzz } from '../../bench/fuzz/bench-files.js';

t.test('the sysctl.d parser and the results-file check survive 20k mutated and noisy inputs', async (t) => {
  const res = fuzz(20_000, 7);
  t.equal(res.iterations, 20_000);
  t.same(Object.keys(res.rejected), ['DC_CONFIG_INVALID'], 'every refusal is DC_CONFIG_INVALID');
  t.ok(res.rejected.DC_CONFIG_INVALID! > 1000, `refusals are reached (${res.rejected.DC_CONFIG_INVALID})`);
  t.ok(res.parsed > 1000, `and so are parses (${res.parsed})`);
});

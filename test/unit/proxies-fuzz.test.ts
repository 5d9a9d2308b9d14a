import t from 'tap';
import { fuzz } from '../../bench/fuzz/proxies.js';

t.test('candidate proxy lists: 20k valid, mutated and junk inputs are accepted idempotently or refused with a code', async (t) => {
  const res = await fuzz(Number(process.env.DUOCELL_FUZZ_PROXIES ?? 20_000), 7);
  t.comment(JSON.stringify(res));
  t.ok(res.accepted > 1000, `valid lists are accepted (${res.accepted})`);
  t.ok((res.rejected.DC_STORE_INVALID ?? 0) > 1000, `bad ones are refused with DC_STORE_INVALID (${res.rejected.DC_STORE_INVALID ?? 0})`);
  t.same(Object.keys(res.rejected), ['DC_STORE_INVALID'], 'no other outcome');
});

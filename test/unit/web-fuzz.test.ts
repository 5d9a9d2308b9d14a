// A short CI run of the web fuzzer (bench/fuzz/web.ts): random requests through the whole
// pipeline; every refusal a listed code with its status, no internal error, no hang.
import t from 'tap';
import { CODES } from '../../src/core/codes.js';
import { fuzz } from '../../bench/fuzz/web.js';

t.test('fuzz the HTTP pipeline (20k requests, fixed seed)', async (t) => {
  const r = await fuzz(Number(process.env.DUOCELL_FUZZ_WEB ?? 20_000), 0xd0ce11);
  t.equal(r.iterations, Number(process.env.DUOCELL_FUZZ_WEB ?? 20_000));
  const codes = Object.keys(r.rejected);
  t.ok(codes.length >= 5, `many kinds of refusal seen: ${codes.join(', ')}`);
  for (const c of codes) t.ok(c in CODES, `${c} listed`);
  t.ok(r.rejected.DC_HTTP_BAD_REQUEST! > 0, 'validation refusals');
  t.ok(r.rejected.DC_WEB_AUTH_REQUIRED! > 0, 'auth refusals');
  t.ok(r.rejected.DC_WEB_CSRF! > 0, 'CSRF refusals');
});

t.test('fuzz is deterministic for a seed', async (t) => {
  const a = await fuzz(300, 7);
  const b = await fuzz(300, 7);
  t.same(a, b);
});

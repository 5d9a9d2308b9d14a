import t from 'tap';
import { fuzz } from '../../bench/fuzz/probe.js';
import { decodeProbe, encodeProbe } from '../../src/protocols/probe/codec.js';

t.test('probe codec: round trip and clear errors', async (t) => {
  const b = encodeProbe({ session: 0xdeadbeef, seq: 7, sentUs: 123456789n }, 64);
  t.equal(b.length, 64);
  t.same(decodeProbe(b), { session: 0xdeadbeef, seq: 7, sentUs: 123456789n });
  t.throws(() => decodeProbe(b.subarray(0, 23)), { code: 'DC_PROBE_MALFORMED' }, 'short');
  const bad = Buffer.from(b);
  bad[0] = 0;
  t.throws(() => decodeProbe(bad), { code: 'DC_PROBE_MALFORMED' }, 'magic');
  const v2 = Buffer.from(b);
  v2[4] = 2;
  t.throws(() => decodeProbe(v2), { code: 'DC_PROBE_MALFORMED' }, 'version');
  t.throws(() => encodeProbe({ session: -1, seq: 0, sentUs: 0n }), { code: 'DC_PROBE_MALFORMED' });
  t.throws(() => encodeProbe({ session: 1, seq: 0, sentUs: 0n }, 10), { code: 'DC_PROBE_MALFORMED' });
});

t.test('probe codec survives 50k valid, mutated, truncated and noisy datagrams', async (t) => {
  const res = await fuzz(50_000, 5);
  t.equal(res.iterations, 50_000);
  t.ok(res.decoded > 10_000, `valid probes decode (${res.decoded})`);
  t.same(Object.keys(res.rejected), ['DC_PROBE_MALFORMED'], 'every rejection is DC_PROBE_MALFORMED');
  t.ok((res.rejected.DC_PROBE_MALFORMED ?? 0) > 10_000, 'rejections are reached');
});

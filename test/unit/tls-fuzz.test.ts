import t from 'tap';
import { fuzz } from '../../bench/fuzz/tls.js';

t.test('ClientHello parser survives 20k built, mutated and noisy inputs', async (t) => {
  const before = process.memoryUsage().heapUsed;
  const res = await fuzz(20_000, 15);
  t.equal(res.iterations, 20_000);
  for (const k of ['hello', 'need-more', 'DC_TLS_NOT_CLIENT_HELLO', 'DC_TLS_MALFORMED', 'DC_TLS_TOO_LARGE', 'DC_TLS_SERVER_NAME']) {
    t.ok((res.verdicts[k] ?? 0) > 10, `${k} is reached (${res.verdicts[k] ?? 0})`);
  }
  t.ok(process.memoryUsage().heapUsed - before < 200 * 1024 * 1024, 'no unbounded growth');
});

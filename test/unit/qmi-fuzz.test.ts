import t from 'tap';
import { fuzz } from '../../bench/fuzz/qmi.js';

t.test('QMI codec survives 20k generated, mutated and noisy frames', async (t) => {
  const before = process.memoryUsage().heapUsed;
  const res = await fuzz(20_000, 5);
  t.equal(res.iterations, 20_000);
  const codes = Object.keys(res.rejected).filter((c) => c.startsWith('DC_'));
  t.ok(codes.every((c) => /^DC_QMI_[A-Z_]+$/.test(c)), `every rejection has a QMI code: ${codes.join(', ')}`);
  for (const c of ['DC_QMI_FRAME_TRUNCATED', 'DC_QMI_FRAME_INVALID', 'DC_QMI_TLV_OVERFLOW']) t.ok((res.rejected[c] ?? 0) > 10, `${c} is reached (${res.rejected[c] ?? 0})`);
  t.ok((res.rejected['ok:roundtrip'] ?? 0) > 3000, `generated messages round-trip (${res.rejected['ok:roundtrip']})`);
  t.ok((res.rejected['stream:frame'] ?? 0) > 3000, 'the stream parser keeps finding frames among the garbage');
  t.ok(process.memoryUsage().heapUsed - before < 200 * 1024 * 1024, 'no unbounded growth');
});

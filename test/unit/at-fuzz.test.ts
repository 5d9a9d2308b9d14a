import t from 'tap';
import { fuzz } from '../../bench/fuzz/at.js';

t.test('AT parsers and framer survive 20k real, mutated and noisy replies', async (t) => {
  const before = process.memoryUsage().heapUsed;
  const res = await fuzz(20_000, 7);
  t.equal(res.iterations, 20_000);
  const codes = Object.keys(res.rejected).filter((c) => c.startsWith('DC_'));
  t.same(codes, ['DC_AT_PARSE'], 'every parser rejection is DC_AT_PARSE');
  t.ok((res.rejected['DC_AT_PARSE'] ?? 0) > 1000, 'rejections happen');
  for (const p of ['registration', 'cpin', 'csq', 'cesq', 'cops', 'cgdcont', 'cgpaddr', 'qeng', 'sysinfoex', 'hcsq'])
    t.ok((res.rejected[`ok:${p}`] ?? 0) > 50, `${p} parses some inputs (${res.rejected[`ok:${p}`] ?? 0})`);
  for (const p of ['gstatus', 'cpsi', 'rfsts', 'qeng5g', 'cereg', 'cesq9', 'cgpaddr-all', 'cpin-state', 'timer2', 'timer3'])
    t.ok((res.rejected[`ok:${p}`] ?? 0) > 20, `${p} (non-throwing) parses some inputs (${res.rejected[`ok:${p}`] ?? 0})`);
  t.ok((res.rejected['long-line'] ?? 0) > 100, `10,000-character lines were fed (${res.rejected['long-line'] ?? 0})`);
  t.ok((res.rejected['reason:too-long'] ?? 0) > 100, 'and refused as too-long');
  for (const e of ['framer:response', 'framer:urc', 'framer:stray', 'framer:overflow']) t.ok((res.rejected[e] ?? 0) > 0, `${e} reached`);
  t.ok(process.memoryUsage().heapUsed - before < 200 * 1024 * 1024, 'no unbounded growth');
});

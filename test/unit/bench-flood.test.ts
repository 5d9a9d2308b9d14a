import t from 'tap';
import { windowRate, type EstReport } from '../../bench/flood.js';

const est = (bytes: number[]): EstReport => ({ bucketMs: 100, start: 1000, closed: 0, bytes, per: [] });

t.test('windowRate counts only the whole 100 ms buckets inside the window', async (t) => {
  // 125,000 bytes per 100 ms = 10 Mbit/s; bucket 2 stalled
  const e = est([125_000, 125_000, 0, 125_000, 125_000]);
  const all = windowRate(e, 1000, 1500);
  t.equal(all.buckets, 5);
  t.equal(all.mbit, 8);
  t.equal(all.worstMbit, 0, 'the stalled bucket is the slowest');
  const part = windowRate(e, 1250, 1500); // buckets 3 and 4 only (bucket 2 starts at 1200)
  t.equal(part.buckets, 2);
  t.equal(part.mbit, 10);
  const none = windowRate(e, 2000, 3000);
  t.equal(none.buckets, 0, 'a window past the measurement has no bucket');
  t.ok(Number.isNaN(none.mbit));
});

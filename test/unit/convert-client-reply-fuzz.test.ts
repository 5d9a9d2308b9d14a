import t from 'tap';
import { fuzz } from '../../bench/fuzz/convert-reply.js';

t.test('the Convert client\'s reply reader: 5k random, mutated and noisy replies, cut anywhere, agree with the codec', async (t) => {
  const res = await fuzz(5000, 13);
  t.equal(res.iterations, 5000);
  t.ok(res.go > 500, `replies that say go hand the bytes behind them on intact (${res.go})`);
  const codes = Object.keys(res.outcomes).filter((c) => c !== 'go');
  t.ok(codes.every((c) => /^DC_CONVERT_[A-Z_]+(:\d+)?$/.test(c)), `every refusal has a Convert code: ${codes.join(', ')}`);
  t.ok(codes.some((c) => c.startsWith('DC_CONVERT_PEER_ERROR:')), 'Error TLVs are reached');
  t.ok(codes.includes('DC_CONVERT_TRUNCATED'), 'an input cut short before the end of stream is truncated');
});

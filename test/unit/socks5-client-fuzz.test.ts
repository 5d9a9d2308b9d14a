import t from 'tap';
import { fuzz } from '../../bench/fuzz/socks5-client.js';

t.test('SOCKS5 client handshake survives 20k random, mutated and noisy proxy answers, whole and cut', async (t) => {
  const res = await fuzz(20_000, 7);
  t.equal(res.iterations, 20_000);
  t.ok(res.connected > 1000, `well-formed answers connect (${res.connected}), with the bytes behind the reply intact`);
  const codes = Object.keys(res.rejected).filter((c) => c !== 'need-more');
  t.ok(codes.every((c) => /^DC_SOCKS_[A-Z_]+$/.test(c)), `every rejection has a SOCKS code: ${codes.join(', ')}`);
  for (const c of ['DC_SOCKS_PEER_AUTH', 'DC_SOCKS_PEER_REPLY', 'DC_SOCKS_PEER_REFUSED', 'DC_SOCKS_VERSION', 'DC_SOCKS_MALFORMED']) {
    t.ok((res.rejected[c] ?? 0) > 10, `${c} is reached (${res.rejected[c] ?? 0})`);
  }
});

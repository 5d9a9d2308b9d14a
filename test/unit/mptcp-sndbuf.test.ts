import t from 'tap';
import { DEFAULT_MPTCP_SNDBUF, parseMptcpSendBuffer } from '../../src/drivers/sockets/index.js';

t.test('DUOCELL_MPTCP_SNDBUF: unset is the default, 0 turns the bound off, bad values have a code', async (t) => {
  t.equal(DEFAULT_MPTCP_SNDBUF, 0, 'off by default: the kernel autotunes');
  t.equal(parseMptcpSendBuffer(undefined), DEFAULT_MPTCP_SNDBUF);
  t.equal(parseMptcpSendBuffer(' '), DEFAULT_MPTCP_SNDBUF);
  t.equal(parseMptcpSendBuffer('0'), 0, 'the kernel autotunes');
  t.equal(parseMptcpSendBuffer('262144'), 262144);
  t.equal(parseMptcpSendBuffer('4096'), 4096);
  t.equal(parseMptcpSendBuffer(String(64 << 20)), 64 << 20);
  for (const bad of ['-1', '4095', '1.5', 'lots', '0x1000', String((64 << 20) + 1), '1e9']) {
    t.throws(() => parseMptcpSendBuffer(bad), { code: 'DC_CONFIG_INVALID' }, `refused: ${bad}`);
  }
});

import t from 'tap';
import { fuzz } from '../../bench/fuzz/dhcp-lease.js';

t.test('DHCP lease lines, netmasks, AT pass-through checks and data-session queries survive 20k real, mutated and noisy inputs', async (t) => {
  const res = await fuzz(20_000, 11);
  t.equal(res.iterations, 20_000);
  const c = res.counts;
  t.ok((c['ok:lease'] ?? 0) > 500, `leases parsed (${c['ok:lease']})`);
  t.ok((c['DC_MODEM_DHCP'] ?? 0) > 500, `malformed lease lines refused with DC_MODEM_DHCP (${c['DC_MODEM_DHCP']})`);
  t.ok((c['ignored'] ?? 0) > 100, 'untagged lines ignored');
  t.ok((c['long-line'] ?? 0) > 100, '10,000-character lines fed');
  t.ok((c['ok:passthrough'] ?? 0) > 100 && (c['DC_MODEM_AT_REFUSED'] ?? 0) > 100, 'pass-through checks both allow and refuse');
});

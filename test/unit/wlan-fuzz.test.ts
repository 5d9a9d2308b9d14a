import t from 'tap';
import { fuzz } from '../../bench/fuzz/wlan.js';

t.test('nl80211 connection events, wpa_supplicant replies and the configuration encoder survive 10k random inputs', async (t) => {
  const res = await fuzz(10_000, 11);
  t.equal(res.iterations, 10_000);
  const codes = Object.keys(res.rejected).filter((c) => c.startsWith('DC_')).sort();
  t.same(codes, ['DC_NETLINK_MALFORMED', 'DC_WLAN_CONFIG_INVALID', 'DC_WLAN_CTRL_MALFORMED'], 'every rejection has one of the expected codes');
  for (const k of ['ok:event', 'ok:status', 'ok:interfaces', 'ok:unsolicited', 'ok:config']) t.ok((res.rejected[k] ?? 0) > 100, `${k}: ${res.rejected[k] ?? 0}`);
  for (const k of ['DC_NETLINK_MALFORMED', 'DC_WLAN_CONFIG_INVALID', 'DC_WLAN_CTRL_MALFORMED']) t.ok((res.rejected[k] ?? 0) > 50, `${k}: ${res.rejected[k] ?? 0}`);
});

import t from 'tap';
import { probeTargets } from '../../src/wiring/paths.js';
import { icmpProbeTransport } from '../../src/drivers/probe/icmp.js';
import { udpProbeTransport } from '../../src/drivers/probe/udp.js';
import { loadBoard } from '../../src/core/board.js';

t.test('the board\'s probe.method chooses each path\'s transport', async (t) => {
  const targets = probeTargets({
    uplinks: [
      { name: 'cellular', access: 'cellular', interface: 'wwan0', probe: { method: 'icmp' } },
      { name: 'wlan', access: 'wlan', interface: 'wlan0', probe: { address: '192.0.2.7', port: 7007 } },
      { name: 'other', access: 'wlan', interface: 'wlan1' },
    ],
  });
  t.equal(targets.cellular?.transport, icmpProbeTransport, 'icmp → ping sockets');
  t.equal(targets.cellular?.address, undefined, 'no address: the gateway');
  t.equal(targets.wlan?.transport, udpProbeTransport, 'no method → UDP echo (the former behaviour)');
  t.same([targets.wlan?.address, targets.wlan?.port], ['192.0.2.7', 7007]);
  t.notOk('other' in targets, 'no probe entry: not probed');
  for (const n of ['rpi4-ec25', 'rpi5-rm520n', 'openwrt-generic']) {
    const b = probeTargets(loadBoard(n));
    t.same(Object.keys(b).sort(), ['cellular', 'wlan'], `${n}: both uplinks probed`);
    t.ok(Object.values(b).every((x) => x.transport === icmpProbeTransport && x.address === undefined), `${n}: by ICMP echo to the gateway`);
  }
  t.equal(icmpProbeTransport.describe?.('fe80::1', 7), 'icmp:fe80::1');
});

/**
 * Runs INSIDE the station namespace of test/kernel/wlan-dhcp.test.ts: the WLAN uplink's DHCP
 * step as `duocell run` wires it (UplinkDhcp + DataInterface over rtnetlink, keepLinkUp, metric
 * 20), on an interface named like the uplink. The link state stands in for wpa_supplicant's
 * CONNECTED (operstate UP), which nl80211 alone can give: it is set from stdin ('up', 'down').
 * One JSON line per event: { ev: 'lease', address, prefixLength, gateway } { ev: 'lost', why }
 * { ev: 'stopped' }. Reads 'stop': stops the client, removes the lease, exits.
 */
import { EventEmitter } from 'node:events';
import { UplinkDhcp } from '../../src/drivers/dhcp/uplink.js';
import { DataInterface } from '../../src/drivers/modem/netif.js';
import { Rtnl } from '../../src/drivers/netlink/rtnetlink.js';

const [ifname = 'wlan0'] = process.argv.slice(2);
const out = (o: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(o)}\n`);

class Link extends EventEmitter<{ state: [{ present: boolean; up: boolean }] }> {
  state = { present: true, up: false };
  set(up: boolean): void {
    this.state = { present: true, up };
    this.emit('state', this.state);
  }
}

const rtnl = Rtnl.open();
const link = new Link();
const dhcp = new UplinkDhcp({
  ifname,
  link,
  netif: new DataInterface({ ifname, ops: rtnl, rawIp: false, keepLinkUp: true, defaultMetric: 20 }),
  retryMs: 500,
});
dhcp.on('lease', (l) => out({ ev: 'lease', address: l.address, prefixLength: l.prefixLength, gateway: l.gateway }));
dhcp.on('lost', (why) => out({ ev: 'lost', why }));
dhcp.start();
out({ ev: 'ready' });
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d: string) => {
  if (/^up$/m.test(d)) link.set(true);
  if (/^down$/m.test(d)) link.set(false);
  if (!d.includes('stop')) return;
  void (async () => {
    await dhcp.stop();
    rtnl.close();
    out({ ev: 'stopped' });
    process.exit(0);
  })();
});

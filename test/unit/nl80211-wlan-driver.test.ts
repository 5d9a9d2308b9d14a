import { readFileSync } from 'node:fs';
import t from 'tap';
import { FakeKernel } from './netlink-fake.js';
import { Nl80211, WlanDriver, type WlanState } from '../../src/drivers/wlan/index.js';
import { Rtnl } from '../../src/drivers/netlink/rtnetlink.js';
import { attr, decodeGenl, encodeAttrs, encodeGenl, encodeLinkMsg, IFF_LOWER_UP, IFF_UP, RTM, splitMessages } from '../../src/protocols/netlink/index.js';

const NL = 0x1a;
const stationPayload = (() => {
  const text = readFileSync(new URL('../fixtures/nl80211/iw_station_rsp.dump', import.meta.url), 'utf8');
  const bytes = Buffer.from(text.split('\n').filter((l) => !l.startsWith('#')).join('').replace(/[^0-9a-f]/g, ''), 'hex');
  return splitMessages(bytes)[0]!.payload;
})();

function linkMsg(up: boolean): Buffer {
  return Buffer.concat([encodeLinkMsg({ index: 19, flags: up ? IFF_UP | IFF_LOWER_UP : IFF_UP }), encodeAttrs([attr.string(3, 'wlan0'), attr.u8(16, up ? 6 : 2)])]);
}

function rtnlFake(state: { up: boolean }): { rtnl: Rtnl; events: FakeKernel } {
  const k = new FakeKernel();
  k.handler = (m) => (m.type === RTM.GETLINK ? { replies: [[RTM.NEWLINK, linkMsg(state.up)]] } : { errno: 95 });
  const events = new FakeKernel();
  const rtnl = Rtnl.open({ transport: k, eventTransport: events });
  rtnl.subscribe(['LINK']);
  return { rtnl, events };
}

function nlFake(iftype: number): FakeKernel {
  const k = new FakeKernel();
  k.families.set('nl80211', { id: NL, groups: {} });
  k.handler = (m) => {
    const g = decodeGenl(m.payload);
    if (g.cmd === 5) return { replies: [[NL, encodeGenl(7, 1, [attr.u32(3, 19), attr.string(4, 'wlan0'), attr.u32(5, iftype), attr.binary(52, Buffer.from('cell-uplink'))])]] };
    if (g.cmd === 17) return { replies: [[NL, stationPayload]] };
    if (g.cmd === 32) {
      const bss = attr.nested(47, [attr.binary(1, Buffer.from([0xee, 0x1d, 0x4f, 0x83, 0x1a, 0x5b])), attr.u32(2, 5180), attr.u32(9, 1), attr.binary(6, Buffer.from([0, 4, 0x74, 0x65, 0x73, 0x74]))]);
      return { replies: [[NL, encodeGenl(34, 1, [attr.u32(3, 19), bss])]] };
    }
    return { errno: 95 };
  };
  return k;
}

t.test('no nl80211 (no cfg80211): link state from rtnetlink, quality unknown, follows link events', async (t) => {
  const st = { up: true };
  const { rtnl, events } = rtnlFake(st);
  await t.rejects(Nl80211.open({ transport: new FakeKernel() }), { code: 'DC_NETLINK_FAMILY_MISSING' });
  const d = new WlanDriver({ ifname: 'wlan0', rtnl, nl80211: null });
  const seen: WlanState[] = [];
  d.on('state', (s) => seen.push(s));
  const s0 = await d.start();
  t.match(s0, { ifname: 'wlan0', ifindex: 19, present: true, up: true, quality: 'unknown', reason: /nl80211 is absent/ });
  t.equal(s0.signalDbm, undefined);
  st.up = false;
  events.notify(RTM.NEWLINK, linkMsg(false));
  await new Promise((r) => setTimeout(r, 20));
  t.match(d.state, { up: false, quality: 'unknown' });
  events.notify(RTM.DELLINK, linkMsg(false));
  await new Promise((r) => setTimeout(r, 20));
  t.equal(seen.length >= 2, true, 'state events emitted on change');
  d.stop();
  rtnl.close();
});

t.test('station mode: SSID, BSSID, signal and bitrates from nl80211', async (t) => {
  const { rtnl } = rtnlFake({ up: true });
  const nl = await Nl80211.open({ transport: nlFake(2) });
  const d = new WlanDriver({ ifname: 'wlan0', rtnl, nl80211: nl });
  const s = await d.refresh();
  t.match(s, {
    present: true, up: true, quality: 'known', mode: 'station', ssid: 'cell-uplink', bssid: 'ee:1d:4f:83:1a:5b', frequencyMhz: 5180,
    signalDbm: -32, txBitrateMbps: 130, rxBitrateMbps: 6, expectedThroughputKbps: 116928,
  });
  d.stop();
  rtnl.close();
});

t.test('AP mode: the associated stations (UEs) are listed', async (t) => {
  const { rtnl } = rtnlFake({ up: true });
  const nl = await Nl80211.open({ transport: nlFake(3) });
  const d = new WlanDriver({ ifname: 'wlan0', rtnl, nl80211: nl });
  const s = await d.refresh();
  t.equal(s.mode, 'ap');
  t.equal(s.stations?.length, 1);
  t.match(s.stations?.[0], { mac: 'ee:1d:4f:83:1a:5b', signalDbm: -30, rxBytes: 1198263 });
  d.stop();
  rtnl.close();
});

t.test('an interface nl80211 does not know is reported, not thrown', async (t) => {
  const { rtnl } = rtnlFake({ up: true });
  const k = new FakeKernel();
  k.families.set('nl80211', { id: NL, groups: {} });
  k.handler = () => ({ errno: 19 });
  const nl = await Nl80211.open({ transport: k });
  await t.rejects(nl.interface(19), { code: 'DC_WLAN_NO_INTERFACE', errno: 19, origin: 'kernel' });
  const d = new WlanDriver({ ifname: 'wlan0', rtnl, nl80211: nl });
  t.match(await d.refresh(), { present: true, up: true, quality: 'unknown', reason: 'not a wireless interface' });
  d.stop();
  rtnl.close();
});

// The WLAN driver follows nl80211's connection events (group "mlme"): a deauthentication takes
// the station down at once, before any request; an association re-reads at once; a re-read that
// started before an event never overwrites it; nl80211 absent at start is asked again when the
// interface appears (a radio whose module loads later).
import t from 'tap';
import { FakeKernel } from './netlink-fake.js';
import { Nl80211, WlanDriver } from '../../src/drivers/wlan/index.js';
import { Rtnl } from '../../src/drivers/netlink/rtnetlink.js';
import { attr, decodeGenl, encodeAttrs, encodeGenl, encodeLinkMsg, IFF_LOWER_UP, IFF_UP, RTM } from '../../src/protocols/netlink/index.js';
import { Cmd, decodeLinkEvent } from '../../src/protocols/nl80211/index.js';

const NL = 0x1a;
const MLME = 5;
const BSSID = Buffer.from([0x02, 0x00, 0x00, 0x00, 0x01, 0x00]);

function linkMsg(up: boolean): Buffer {
  return Buffer.concat([encodeLinkMsg({ index: 19, flags: up ? IFF_UP | IFF_LOWER_UP : IFF_UP }), encodeAttrs([attr.string(3, 'wlan0'), attr.u8(16, up ? 6 : 2)])]);
}

function rtnlFake(): { rtnl: Rtnl; events: FakeKernel } {
  const k = new FakeKernel();
  k.handler = (m) => (m.type === RTM.GETLINK ? { replies: [[RTM.NEWLINK, linkMsg(true)]] } : { errno: 95 });
  const events = new FakeKernel();
  const rtnl = Rtnl.open({ transport: k, eventTransport: events });
  rtnl.subscribe(['LINK']);
  return { rtnl, events };
}

/** A station interface; `radio.associated` says whether the scan dump names the BSS as associated. */
function nlFake(radio: { associated: boolean }): FakeKernel {
  const k = new FakeKernel();
  k.families.set('nl80211', { id: NL, groups: { config: 4, mlme: MLME } });
  k.handler = (m) => {
    const g = decodeGenl(m.payload);
    if (g.cmd === Cmd.GET_INTERFACE) return { replies: [[NL, encodeGenl(7, 1, [attr.u32(3, 19), attr.string(4, 'wlan0'), attr.u32(5, 2), ...(radio.associated ? [attr.binary(52, Buffer.from('rig'))] : [])])]] };
    if (g.cmd === Cmd.GET_STATION) {
      if (!radio.associated) return { replies: [] };
      const sta = attr.nested(21, [attr.u8(7, 0xe2), attr.nested(8, [attr.u32(5, 540)])]);
      return { replies: [[NL, encodeGenl(Cmd.NEW_STATION, 1, [attr.u32(3, 19), attr.binary(6, BSSID), sta])]] };
    }
    if (g.cmd === Cmd.GET_SCAN) {
      const bss = attr.nested(47, [attr.binary(1, BSSID), attr.u32(2, 2437), ...(radio.associated ? [attr.u32(9, 1)] : [])]);
      return { replies: [[NL, encodeGenl(Cmd.NEW_SCAN_RESULTS, 1, [attr.u32(3, 19), bss])]] };
    }
    return { errno: 95 };
  };
  return k;
}

/** A deauthentication frame (802.11 header, 24 octets) with reason code `reason`. */
function deauthEvent(ifindex: number, reason: number): Buffer {
  const frame = Buffer.alloc(26);
  frame[0] = 0xc0; // management, subtype deauthentication
  frame.writeUInt16LE(reason, 24);
  return encodeGenl(Cmd.DEAUTHENTICATE, 1, [attr.u32(1, 0), attr.u32(3, ifindex), attr.binary(51, frame)]);
}

const tick = (ms = 20): Promise<void> => new Promise((r) => setTimeout(r, ms));

t.test('decodeLinkEvent: losses, gains, reason codes, and commands not followed', async (t) => {
  t.match(decodeLinkEvent(deauthEvent(19, 2)), { kind: 'deauthenticate', ifindex: 19, lost: true, reasonCode: 2 });
  t.match(decodeLinkEvent(encodeGenl(Cmd.DISCONNECT, 1, [attr.u32(3, 7), attr.u16(54, 3), attr.flag(71)])), { kind: 'disconnect', ifindex: 7, lost: true, reasonCode: 3, byAp: true });
  t.match(decodeLinkEvent(encodeGenl(Cmd.DISCONNECT, 1, [attr.u32(3, 7)])), { kind: 'disconnect', byAp: false });
  t.match(decodeLinkEvent(encodeGenl(Cmd.CONNECT, 1, [attr.u32(3, 7), attr.u16(72, 0), attr.binary(6, BSSID)])), { kind: 'connect', lost: false, statusCode: 0 });
  t.equal(decodeLinkEvent(encodeGenl(59, 1, [attr.u32(3, 7)])), undefined, 'FRAME_TX_STATUS is not followed');
  t.throws(() => decodeLinkEvent(encodeGenl(Cmd.DEAUTHENTICATE, 1, [])), { code: 'DC_NETLINK_MALFORMED' }, 'IFINDEX is required');
  t.notOk('reasonCode' in decodeLinkEvent(encodeGenl(Cmd.DEAUTHENTICATE, 1, [attr.u32(3, 1), attr.binary(51, Buffer.alloc(10))]))!, 'a short frame gives no reason');
});

t.test('a deauthentication event takes the station down at once; an association brings it back', async (t) => {
  const { rtnl } = rtnlFake();
  const radio = { associated: true };
  const nlk = nlFake(radio);
  const ev = new FakeKernel();
  const nl = await Nl80211.open({ transport: nlk });
  const d = new WlanDriver({ ifname: 'wlan0', rtnl, nl80211: nl, eventTransport: ev, pollMs: 60_000 });
  const s0 = await d.start();
  t.match(s0, { up: true, associated: true, quality: 'known', ssid: 'rig', bssid: '02:00:00:00:01:00', signalDbm: -30, txBitrateMbps: 54 });
  t.ok(ev.groups.has(MLME), 'joined the mlme group');

  radio.associated = false;
  const states: boolean[] = [];
  d.on('state', (s) => states.push(s.up));
  const radios: string[] = [];
  d.on('radio', (r) => radios.push(r.event.kind));
  ev.notify(NL, deauthEvent(19, 2));
  t.same(radios, ['deauthenticate'], "'radio' emitted with the event");
  t.equal(d.lastLoss?.event.kind, 'deauthenticate');
  // synchronous: no request to the kernel before the state says down
  t.match(d.state, { up: false, associated: false, reason: 'deauthenticate (802.11 reason 2)' });
  t.equal(d.state.signalDbm, undefined, 'radio facts of the lost BSS are cleared');
  t.match(d.lastEvent, { event: { kind: 'deauthenticate', lost: true, reasonCode: 2 } });
  t.ok(typeof d.lastEvent?.atMs === 'number');
  await tick();
  t.match(d.state, { up: false, reason: 'WLAN not associated' }, 'the re-read agrees: not associated');

  ev.notify(NL, deauthEvent(23, 2));
  t.equal(d.lastEvent?.event.ifindex, 19, 'another interface\'s event is ignored');

  radio.associated = true;
  ev.notify(NL, encodeGenl(Cmd.CONNECT, 1, [attr.u32(3, 19), attr.u16(72, 0)]));
  await tick();
  t.match(d.state, { up: true, associated: true, bssid: '02:00:00:00:01:00' }, 'associated again: up without waiting for the poll');
  t.equal(d.lastLoss?.event.kind, 'deauthenticate', 'the last loss stays known after a gain');
  t.equal(d.lastEvent?.event.kind, 'connect');
  t.same(states.filter((u, i) => i === 0 || u !== states[i - 1]), [false, true]);
  d.stop();
  rtnl.close();
});

t.test('a re-read that started before a loss event never overwrites it', async (t) => {
  const { rtnl } = rtnlFake();
  const radio = { associated: true };
  const nlk = nlFake(radio);
  const inner = nlk.handler;
  const ev = new FakeKernel();
  const nl = await Nl80211.open({ transport: nlk });
  const d = new WlanDriver({ ifname: 'wlan0', rtnl, nl80211: nl, eventTransport: ev, pollMs: 60_000 });
  await d.start();
  // The scan dump of this re-read still says "associated"; the loss event arrives before its reply.
  let armed = true;
  nlk.handler = (m) => {
    const r = inner(m);
    if (armed && decodeGenl(m.payload).cmd === Cmd.GET_SCAN) {
      armed = false;
      radio.associated = false;
      ev.notify(NL, deauthEvent(19, 3));
    }
    return r;
  };
  const seen: boolean[] = [];
  d.on('state', (s) => seen.push(s.up));
  await d.refresh();
  await tick();
  t.equal(armed, false, 'the event came in mid-read');
  t.match(d.state, { up: false }, 'still down after the stale re-read finished');
  t.notOk(seen.includes(true), 'never up again in between');
  d.stop();
  rtnl.close();
});

t.test('nl80211 absent at start is asked again when the interface appears', async (t) => {
  const { rtnl, events } = rtnlFake();
  const d = new WlanDriver({ ifname: 'wlan0', rtnl, pollMs: 60_000, events: false });
  // No cfg80211 yet: the family is missing. The driver opens its own socket: give it a fake one.
  const empty = new FakeKernel();
  const radio = { associated: true };
  const loaded = nlFake(radio);
  let opened = 0;
  const orig = Nl80211.open;
  Nl80211.open = async () => {
    opened++;
    return orig({ transport: opened === 1 ? empty : loaded });
  };
  t.teardown(() => {
    Nl80211.open = orig;
  });
  const s0 = await d.start();
  t.match(s0, { quality: 'unknown', reason: /nl80211 is absent/ });
  events.notify(RTM.NEWLINK, linkMsg(true));
  await tick(50);
  t.equal(opened, 2, 'asked again on the link event');
  t.match(d.state, { quality: 'known', up: true, ssid: 'rig' });
  d.stop();
  rtnl.close();
});

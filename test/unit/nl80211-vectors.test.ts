import { readFileSync } from 'node:fs';
import t from 'tap';
import {
  Attr, Cmd, decodeIes, decodeInterface, decodeScanResult, decodeStation, encode,
} from '../../src/protocols/nl80211/index.js';
import { Attrs, decodeGenl, encodeGenl, splitMessages } from '../../src/protocols/netlink/index.js';

// Copies of ../shared/vectors (conformance vectors from independent implementations), kept in the repo.
const VEC = new URL('../fixtures/vectors', import.meta.url).pathname;
const vectors = (JSON.parse(readFileSync(`${VEC}/nl80211-vectors.json`, 'utf8')) as { vectors: Array<{ name: string; hex: string; expected: Record<string, unknown> }> }).vectors;
const vec = (name: string) => vectors.find((v) => v.name === name)!;

t.test('NEW_INTERFACE (iw info, pyroute2 capture) decodes to the expected fields', async (t) => {
  const v = vec('new_interface_reply_iw_info');
  const [m] = splitMessages(Buffer.from(v.hex, 'hex'));
  t.equal(m!.type, v.expected.nlmsg_type);
  t.equal(m!.seq, v.expected.seq);
  t.equal(m!.pid, v.expected.pid);
  t.equal(decodeGenl(m!.payload).cmd, Cmd.NEW_INTERFACE);
  t.same(decodeInterface(m!.payload), { ifindex: 3, ifname: 'wlo1', iftype: 'station', wiphy: 0, wdev: 1, mac: 'a4:4e:31:43:1c:7d', generation: 5 });
  // the same bytes in the \x-escaped dump file, with its own JSON expectation
  const dump = readFileSync(`${VEC}/iw_info_rsp.dump`, 'utf8');
  const bytes = Buffer.from(dump.split('\n')[0]!.split('\\x').filter(Boolean).map((h) => parseInt(h, 16)));
  const expectedJson = JSON.parse(dump.slice(dump.indexOf('['))) as Array<{ attrs: Array<[string, unknown]>; header: { sequence_number: number } }>;
  const [m2] = splitMessages(bytes);
  const d = decodeInterface(m2!.payload);
  const want = Object.fromEntries(expectedJson[0]!.attrs);
  t.equal(d.ifindex, want.NL80211_ATTR_IFINDEX);
  t.equal(d.ifname, want.NL80211_ATTR_IFNAME);
  t.equal(d.mac, want.NL80211_ATTR_MAC);
  t.equal(d.generation, want.NL80211_ATTR_GENERATION);
  t.equal(m2!.seq, expectedJson[0]!.header.sequence_number);
});

t.test('scan requests: our encoder produces the captured GET_SCAN bytes; TRIGGER_SCAN decodes', async (t) => {
  t.equal(encodeGenl(Cmd.GET_SCAN, 0, encode.getScan(21)).toString('hex'), vec('get_scan_dump_request').hex);
  const trig = decodeGenl(Buffer.from(vec('trigger_scan_request').hex, 'hex'));
  t.equal(trig.cmd, 33);
  const a = Attrs.decode(trig.attrs);
  t.equal(a.u32(Attr.IFINDEX), 2);
  const ssids = a.nested(Attr.SCAN_SSIDS)!;
  t.equal(ssids.list.length, 1);
  t.equal(ssids.list[0]!.value.length, 0, 'wildcard (empty) SSID');
  t.equal(a.u32(Attr.SCAN_FLAGS), 0x4000, 'COLOCATED_6GHZ');
});

t.test('NEW_SCAN_RESULTS (wl-nl80211 capture) decodes to the expected BSS', async (t) => {
  const v = vec('new_scan_results_reply');
  const e = v.expected as { GENERATION: number; IFINDEX: number; WDEV: number; BSS: Record<string, number | string> };
  const b = decodeScanResult(Buffer.from(v.hex, 'hex'));
  t.match(b, {
    generation: e.GENERATION, ifindex: e.IFINDEX, wdev: e.WDEV,
    bssid: e.BSS.BSSID, tsf: e.BSS.TSF, beaconTsf: e.BSS.BEACON_TSF, ssid: e.BSS.IES_SSID, channel: e.BSS.IES_channel,
    beaconInterval: e.BSS.BEACON_INTERVAL, capability: 0x0411, frequencyMhz: e.BSS.FREQUENCY, seenMsAgo: e.BSS.SEEN_MS_AGO,
    signalDbm: (e.BSS.SIGNAL_MBM as number) / 100, useFor: 3,
  });
  t.ok(b.ies.some((ie) => ie.id === 48), 'RSN element present');
});

t.test('iw_scan_rsp.dump: four captured multi-part scan results (pyroute2) decode as expected', async (t) => {
  const text = readFileSync(`${VEC}/iw_scan_rsp.dump`, 'utf8');
  const samples = text.split(/# sample \d+/).slice(1).map((s) => Buffer.from(s.split('\n#')[0]!.replace(/[^0-9a-f]/g, ''), 'hex'));
  t.equal(samples.length, 4);
  const want = [
    { bssid: '14:22:db:00:b6:65', tsf: 67820018829, ssid: "Rowan's Desk", capability: 49, seenMsAgo: 490, signalDbm: -43, len: 472 },
    { bssid: '14:22:db:00:06:a7', tsf: 68088371041, ssid: '', capability: 1, seenMsAgo: 480, signalDbm: -33, len: 464 },
    { bssid: '14:22:db:00:da:05', tsf: 7559983583, ssid: "Hook 'em Horns", capability: 17, seenMsAgo: 470, signalDbm: -19, len: 480 },
    { bssid: '14:22:db:00:d7:25', tsf: 6039256605, ssid: "Hook 'em Horns", capability: 49, seenMsAgo: 460, signalDbm: -28, len: 480 },
  ];
  samples.forEach((s, i) => {
    const [m] = splitMessages(s);
    t.match(m, { type: 28, flags: 2, seq: 259, pid: 608 });
    t.equal(s.readUInt32LE(0), want[i]!.len);
    const { len: _l, ...w } = want[i]!;
    t.match(decodeScanResult(m!.payload), { ...w, generation: 7, ifindex: 11, wdev: 1, frequencyMhz: 5180, channel: 36, chanWidth: 0, beaconInterval: 100, beaconTsf: w.tsf }, `sample ${i + 1}`);
  });
});

t.test('NEW_STATION (iw station dump on an 802.11n AP, pyroute2 capture) decodes link quality', async (t) => {
  const text = readFileSync(new URL('../fixtures/nl80211/iw_station_rsp.dump', import.meta.url), 'utf8');
  const bytes = Buffer.from(text.split('\n').filter((l) => !l.startsWith('#')).join('').replace(/[^0-9a-f]/g, ''), 'hex');
  const [m] = splitMessages(bytes);
  t.match(m, { type: 26, flags: 2, seq: 255 });
  t.same(decodeStation(m!.payload), {
    ifindex: 19,
    mac: 'ee:1d:4f:83:1a:5b',
    generation: 1,
    inactiveMs: 10310,
    connectedSeconds: 3492,
    rxBytes: 1198263,
    txBytes: 69659,
    rxPackets: 7983,
    txPackets: 482,
    txRetries: 17,
    txFailed: 18,
    signalDbm: -30,
    signalAvgDbm: -32,
    chainSignalDbm: [-31, -54, -43, -34],
    ackSignalDbm: -31,
    txBitrate: { mbps: 130, mcs: 15 },
    rxBitrate: { mbps: 6 },
    expectedThroughputKbps: 116928, // 0x0001c8c0
  });
});

t.test('malformed nl80211 input is rejected with codes', async (t) => {
  t.throws(() => decodeIes(Buffer.from([0, 5, 1, 2])), { code: 'DC_NETLINK_MALFORMED' });
  t.same(decodeIes(Buffer.from([0, 0, 3, 1, 6])).map((e) => e.id), [0, 3]);
  t.throws(() => decodeStation(Buffer.from([7, 1, 0, 0])), { code: 'DC_NETLINK_MALFORMED' }, 'wrong command');
  t.throws(() => decodeStation(Buffer.from([19, 1, 0, 0])), { code: 'DC_NETLINK_MALFORMED', message: /missing/ });
  t.throws(() => decodeScanResult(Buffer.from([34, 1, 0, 0, 8, 0, 3, 0, 1, 0, 0, 0])), { code: 'DC_NETLINK_MALFORMED', message: /BSS/ });
  t.throws(() => decodeInterface(Buffer.from([7, 1, 0, 0])), { code: 'DC_NETLINK_MALFORMED' });
  t.throws(() => encode.getStation(1, 'zz:00'), { code: 'DC_NETLINK_INVALID_ARG' });
});

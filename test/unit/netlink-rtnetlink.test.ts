import t from 'tap';
import {
  attr, decodeAddress, decodeLink, decodeRoute, decodeRtnl, decodeRule, encodeAddressMsg, encodeAttrs, encodeLinkMsg,
  encodeRouteMsg, encodeRuleMsg, IFF_LOWER_UP, IFF_UP, RTM, RTPROT_DUOCELL, RT_SCOPE_LINK,
} from '../../src/protocols/netlink/index.js';

t.test('routes: encode → decode keeps destination, table > 255, gateway, oif, protocol', async (t) => {
  const b = encodeRouteMsg({ dst: '0.0.0.0/0', table: 1001, oif: 4, gateway: '10.0.0.1', priority: 10 });
  t.equal(b.readUInt8(4), 252, 'rtm_table says RT_TABLE_COMPAT; RTA_TABLE carries the real one');
  t.same(decodeRoute(b), { family: 4, dst: '0.0.0.0/0', table: 1001, protocol: RTPROT_DUOCELL, scope: 0, type: 1, oif: 4, gateway: '10.0.0.1', priority: 10 });
  const l = decodeRoute(encodeRouteMsg({ dst: 'fd00:1::/64', table: 7, oif: 2 }));
  t.match(l, { family: 6, dst: 'fd00:1::/64', table: 7, scope: RT_SCOPE_LINK });
  t.throws(() => encodeRouteMsg({ dst: '10.0.0.0/33', table: 1 }), { code: 'DC_NETLINK_INVALID_ARG' });
  t.throws(() => decodeRoute(Buffer.alloc(8)), { code: 'DC_NETLINK_MALFORMED' });
  const badFam = encodeRouteMsg({ dst: '10.0.0.0/8', table: 1 });
  badFam[0] = 7;
  t.throws(() => decodeRoute(badFam), { code: 'DC_NETLINK_MALFORMED' });
});

t.test('rules: source rule round-trips with priority and protocol', async (t) => {
  const r = decodeRule(encodeRuleMsg({ src: '10.0.0.5/32', table: 300, priority: 1300 }));
  t.same(r, { family: 4, table: 300, action: 1, priority: 1300, src: '10.0.0.5/32', protocol: RTPROT_DUOCELL });
  t.match(decodeRule(encodeRuleMsg({ family: 6, table: 5, fwmark: 0x10, fwmask: 0xff, iifname: 'lan0' })), { family: 6, fwmark: 16, fwmask: 255, iifname: 'lan0' });
  t.throws(() => encodeRuleMsg({ table: 5 }), { code: 'DC_NETLINK_INVALID_ARG' });
  t.throws(() => encodeRuleMsg({ src: '10.0.0.1/32', dst: '::/0', table: 5 }), { code: 'DC_NETLINK_INVALID_ARG' });
});

t.test('addresses and links decode from kernel-shaped messages', async (t) => {
  const a = decodeAddress(encodeAddressMsg({ index: 3, address: '192.0.2.7', prefixLen: 24 }));
  t.match(a, { family: 4, index: 3, address: '192.0.2.7', prefixLen: 24 });
  const six = decodeAddress(encodeAddressMsg({ index: 3, address: '2001:db8::7', prefixLen: 64 }));
  t.match(six, { family: 6, address: '2001:db8::7' });
  // a point-to-point address: IFA_LOCAL differs from IFA_ADDRESS (the peer)
  const h = Buffer.from([2, 32, 0, 0, 5, 0, 0, 0]);
  const ptp = decodeAddress(Buffer.concat([h, encodeAttrs([attr.binary(2, Buffer.from([10, 0, 0, 1])), attr.binary(1, Buffer.from([10, 0, 0, 2])), attr.string(3, 'wwan0')])]));
  t.match(ptp, { address: '10.0.0.1', peer: '10.0.0.2', label: 'wwan0', index: 5 });
  t.throws(() => decodeAddress(h), { code: 'DC_NETLINK_MALFORMED' }, 'no address attribute');

  const link = (flags: number, oper: number) => {
    const b = encodeLinkMsg({ index: 4, flags });
    return decodeLink(Buffer.concat([b, encodeAttrs([attr.string(3, 'wlan0'), attr.u32(4, 1500), attr.u8(16, oper), attr.binary(1, Buffer.from([2, 0, 0, 0, 0, 1]))])]));
  };
  const stats = Buffer.alloc(200);
  stats.writeBigUInt64LE(10n, 0);
  stats.writeBigUInt64LE(20n, 8);
  stats.writeBigUInt64LE(1500n, 16);
  stats.writeBigUInt64LE(3000n, 24);
  t.same(decodeLink(Buffer.concat([encodeLinkMsg({ index: 2 }), encodeAttrs([attr.binary(23, stats)])])).stats, { rxPackets: 10, txPackets: 20, rxBytes: 1500, txBytes: 3000 });
  t.match(link(IFF_UP | IFF_LOWER_UP, 6), { name: 'wlan0', index: 4, up: true, operState: 'up', mtu: 1500, mac: '02:00:00:00:00:01' });
  t.match(link(IFF_UP, 2), { up: false, operState: 'down', adminUp: true });
  t.match(link(IFF_UP | IFF_LOWER_UP, 0), { up: true, operState: 'unknown' }, 'unknown operstate with carrier counts as up (tun, wwan)');
  t.match(link(0, 6), { up: false });
  t.match(decodeRtnl(RTM.DELLINK, encodeLinkMsg({ index: 9 })), { kind: 'link', op: 'del', link: { index: 9, name: 'if9' } });
  t.equal(decodeRtnl(99, Buffer.alloc(0)), undefined);
});

t.test('sock_diag: an MPTCP subflow message decodes addresses, ports, token and tcp_info', async (t) => {
  const { decodeInetDiagMsg, encodeInetDiagReq } = await import('../../src/protocols/netlink/index.js');
  const req = encodeInetDiagReq(4);
  t.equal(req.length, 56);
  t.same([req[0], req[1], req[2], req.readUInt32LE(4)], [2, 6, 2, 2]);
  const h = Buffer.alloc(72);
  h.writeUInt8(2, 0);
  h.writeUInt8(1, 1);
  h.writeUInt16BE(40000, 4);
  h.writeUInt16BE(443, 6);
  Buffer.from([10, 0, 2, 15]).copy(h, 8);
  Buffer.from([198, 51, 100, 1]).copy(h, 24);
  h.writeUInt32LE(3, 40);
  h.writeUInt32LE(777, 68);
  const ulp = attr.nested(19, [attr.string(1, 'mptcp'), attr.nested(3, [attr.u32(2, 0xabcd), attr.u8(10, 2), attr.u8(9, 0)])]);
  const d = decodeInetDiagMsg(Buffer.concat([h, encodeAttrs([attr.binary(2, Buffer.alloc(232)), ulp])]));
  t.match(d, { family: 4, state: 1, saddr: '10.0.2.15', sport: 40000, daddr: '198.51.100.1', dport: 443, ifindex: 3, inode: 777, ulp: 'mptcp', mptcp: { tokenLoc: 0xabcd, idLoc: 2, idRem: 0 } });
  t.equal(d.tcpInfo?.length, 232);
  t.throws(() => decodeInetDiagMsg(Buffer.alloc(40)), { code: 'DC_NETLINK_MALFORMED' });
});

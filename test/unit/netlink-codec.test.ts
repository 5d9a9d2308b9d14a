import t from 'tap';
import {
  attr, Attrs, bufferToIp, decodeAttrs, decodeError, decodeGenl, encodeAttrs, encodeGenl, encodeMessage,
  ipToBuffer, NLA_F_NESTED, NLMSG_ERROR, NLM_F_ACK_TLVS, NLM_F_CAPPED, splitMessages,
} from '../../src/protocols/netlink/index.js';
import { DuocellError } from '../../src/core/errors.js';

const hex = (b: Buffer): string => b.toString('hex');

t.test('leaf attributes are padded to 4 bytes with zeros', async (t) => {
  t.equal(hex(encodeAttrs([attr.u8(2, 7)])), '0500020007000000');
  t.equal(hex(encodeAttrs([attr.u16(1, 2)])), '0600010002000000');
  t.equal(hex(encodeAttrs([attr.u32(6, 0x0a)])), '080006000a000000');
  t.equal(hex(encodeAttrs([attr.string(4, 'wlo1')])), '09000400776c6f3100000000');
  t.equal(hex(encodeAttrs([attr.u64(0x99, 0x0000000600000001n)])), '0c0099000100000006000000');
  t.equal(encodeAttrs([attr.u8(1, 1), attr.u8(2, 2)]).length, 16);
  t.equal(hex(encodeAttrs([attr.flag(3)])), '04000300');
});

t.test('byte order: big-endian values, with or without the NET_BYTEORDER flag', async (t) => {
  t.equal(hex(encodeAttrs([attr.u16(9, 0x1234, { be: true })])), '0600090012340000');
  t.equal(hex(encodeAttrs([attr.u16(9, 0x1234, { be: true, flag: true })])), '0600094012340000');
  const a = Attrs.decode(encodeAttrs([attr.u16(9, 0x1234, { be: true, flag: true }), attr.u32(3, 0x01020304, { be: true })]));
  t.equal(a.u16(9), 0x1234, 'flag decides');
  t.equal(a.u32(3), 0x04030201, 'no flag: host order');
  t.equal(a.u32(3, true), 0x01020304, 'caller forces big-endian');
});

t.test('nested attributes: flag set, lengths include children and their padding', async (t) => {
  const b = encodeAttrs([attr.nested(1, [attr.u16(1, 2), attr.u8(2, 5), attr.u32(3, 0x0a000001, { be: true })])]);
  t.equal(b.readUInt16LE(0), 4 + 8 + 8 + 8);
  t.equal(b.readUInt16LE(2), 1 | NLA_F_NESTED);
  const outer = Attrs.decode(b);
  t.equal(outer.get(1)?.nested, true);
  const inner = outer.nested(1)!;
  t.equal(inner.u16(1), 2);
  t.equal(inner.u8(2), 5);
  t.equal(bufferToIp(inner.binary(3, 4)!), '10.0.0.1');
  // nest without the flag (old families)
  t.equal(encodeAttrs([attr.nested(1, [], false)]).readUInt16LE(2), 1);
});

t.test('decoder is strict about lengths and sizes', async (t) => {
  const tooShort = Buffer.from('0300010000000000', 'hex');
  t.throws(() => decodeAttrs(tooShort), { code: 'DC_NETLINK_MALFORMED' });
  const overrun = Buffer.from('0c000100aabbccdd', 'hex');
  t.throws(() => decodeAttrs(overrun), { code: 'DC_NETLINK_MALFORMED' });
  t.throws(() => decodeAttrs(Buffer.from('0400', 'hex')), { code: 'DC_NETLINK_MALFORMED' }, 'trailing bytes');
  const a = Attrs.decode(encodeAttrs([attr.u16(1, 2)]), { 1: 'FAMILY' });
  t.throws(() => a.u32(1), /FAMILY: 2 bytes, expected 4/);
  t.throws(() => a.need(5, a.u8), /missing attr 5/);
  // the last attribute may lack its padding
  t.equal(Attrs.decode(Buffer.from('0500020007', 'hex')).u8(2), 7);
  // a bad nest names its parent
  const badNest = Buffer.from('08000180ff000100', 'hex');
  t.throws(() => Attrs.decode(badNest, { 1: 'ADDR' }).nested(1), /inside ADDR/);
  t.equal(decodeAttrs(Buffer.alloc(0)).length, 0);
});

t.test('encoder rejects out-of-range values as local errors', async (t) => {
  t.throws(() => attr.u8(1, 256), { code: 'DC_NETLINK_INVALID_ARG' });
  t.throws(() => attr.u16(1, -1), { code: 'DC_NETLINK_INVALID_ARG' });
  t.throws(() => attr.u32(1, 2 ** 32), { code: 'DC_NETLINK_INVALID_ARG' });
  t.throws(() => attr.s32(1, 2 ** 31), { code: 'DC_NETLINK_INVALID_ARG' });
  t.throws(() => attr.u64(1, -1n), { code: 'DC_NETLINK_INVALID_ARG' });
  t.throws(() => attr.string(1, 'a\0b'), { code: 'DC_NETLINK_INVALID_ARG' });
  t.throws(() => encodeAttrs([attr.u8(0x4000, 1)]), { code: 'DC_NETLINK_INVALID_ARG' });
  t.throws(() => encodeAttrs([attr.binary(1, Buffer.alloc(70000))]), { code: 'DC_NETLINK_INVALID_ARG' });
  try {
    attr.u8(1, 300);
  } catch (e) {
    t.ok(e instanceof DuocellError && e.origin === 'local');
  }
});

t.test('typed getters: uint widths, u64, s32, strings', async (t) => {
  const a = Attrs.decode(encodeAttrs([
    attr.u8(1, 200), attr.u16(2, 60000), attr.u32(3, 4e9), attr.u64(4, 1n << 40n), attr.s32(5, -3000),
    attr.string(6, 'héllo'), attr.binary(7, Buffer.from('abc')), attr.u64(8, 1n << 60n), attr.binary(9, Buffer.alloc(3)),
  ]));
  t.same([a.uint(1), a.uint(2), a.uint(3), a.uint(4)], [200, 60000, 4e9, 2 ** 40]);
  t.equal(a.s32(5), -3000);
  t.equal(a.string(6), 'héllo');
  t.equal(a.string(7), 'abc', 'string without NUL');
  t.throws(() => a.u64n(8), { code: 'DC_NETLINK_MALFORMED' });
  t.throws(() => a.uint(9), { code: 'DC_NETLINK_MALFORMED' });
  t.equal(a.u8(99), undefined);
  t.equal(a.all(1).length, 1);
});

t.test('messages: encode, split a multi-message datagram, generic netlink header', async (t) => {
  const g = encodeGenl(3, 1, [attr.u16(1, 2)]);
  t.equal(hex(g), '030100000600010002000000');
  const m1 = encodeMessage({ type: 0x1d, flags: 0x301, seq: 7, pid: 0, payload: g });
  t.equal(m1.readUInt32LE(0), 16 + 12);
  const odd = encodeMessage({ type: 0x10, payload: Buffer.from([1, 2, 3]) });
  t.equal(odd.length, 20, 'padded');
  t.equal(odd.readUInt32LE(0), 19, 'length excludes padding');
  const msgs = splitMessages(Buffer.concat([m1, odd]));
  t.equal(msgs.length, 2);
  t.match(msgs[0], { type: 0x1d, flags: 0x301, seq: 7 });
  const gd = decodeGenl(msgs[0]!.payload);
  t.equal(gd.cmd, 3);
  t.equal(Attrs.decode(gd.attrs).u16(1), 2);
  t.equal(msgs[1]!.payload.length, 3);
  t.throws(() => splitMessages(Buffer.alloc(10)), { code: 'DC_NETLINK_MALFORMED' });
  const bad = Buffer.from(m1);
  bad.writeUInt32LE(200, 0);
  t.throws(() => splitMessages(bad), { code: 'DC_NETLINK_MALFORMED' });
  bad.writeUInt32LE(8, 0);
  t.throws(() => splitMessages(bad), { code: 'DC_NETLINK_MALFORMED' });
  t.throws(() => decodeGenl(Buffer.alloc(2)), { code: 'DC_NETLINK_MALFORMED' });
});

t.test('NLMSG_ERROR: ACK, errno, capped with extended ack text', async (t) => {
  const req = encodeMessage({ type: 0x1d, flags: 5, seq: 42, pid: 9, payload: encodeGenl(1, 1) });
  const ack = encodeMessage({ type: NLMSG_ERROR, payload: Buffer.concat([Buffer.alloc(4), req]) });
  const e0 = decodeError(splitMessages(ack)[0]!);
  t.equal(e0.errno, 0);
  t.equal(e0.request.seq, 42);
  const code = Buffer.alloc(4);
  code.writeInt32LE(-22);
  const ext = encodeAttrs([attr.string(1, 'missing address')]);
  const err = encodeMessage({ type: NLMSG_ERROR, flags: NLM_F_CAPPED | NLM_F_ACK_TLVS, payload: Buffer.concat([code, req.subarray(0, 16), ext]) });
  const e1 = decodeError(splitMessages(err)[0]!);
  t.equal(e1.errno, 22);
  t.equal(e1.extMessage, 'missing address');
  t.throws(() => decodeError({ type: 2, flags: 0, seq: 0, pid: 0, payload: Buffer.alloc(8) }), { code: 'DC_NETLINK_MALFORMED' });
});

t.test('addresses: text ⇄ bytes', async (t) => {
  for (const s of ['10.0.0.1', '255.255.255.255', '::', '::1', 'fe80::1', '2001:db8::1:0:0:1', '2001:db8:1:2:3:4:5:6', '::ffff:1.2.3.4'.replace('::ffff:1.2.3.4', '::ffff:102:304')]) {
    t.equal(bufferToIp(ipToBuffer(s).bytes), s, s);
  }
  t.equal(bufferToIp(ipToBuffer('::ffff:1.2.3.4').bytes), '::ffff:102:304');
  t.equal(ipToBuffer('fe80::1%eth0').family, 6);
  for (const bad of ['1.2.3', '1.2.3.256', 'a.b.c.d', '1::2::3', '12345::', '1:2:3:4:5:6:7:8:9', ':::']) {
    t.throws(() => ipToBuffer(bad), { code: 'DC_NETLINK_INVALID_ARG' }, bad);
  }
  t.throws(() => bufferToIp(Buffer.alloc(5)), { code: 'DC_NETLINK_MALFORMED' });
});

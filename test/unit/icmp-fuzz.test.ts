import t from 'tap';
import { fuzz } from '../../bench/fuzz/icmp.js';
import { decodeEcho, ECHO_HEADER, encodeEcho, inetChecksum } from '../../src/protocols/icmp/echo.js';
import { EchoMatcher } from '../../src/drivers/probe/icmp.js';

// An echo request laid out by hand from RFC 792 (the ICMP part only, as a ping socket takes it):
// type 8, code 0, checksum, id 0x0007, seq 1, 8 data bytes.
const PING_REQUEST = Buffer.from([
  0x08, 0x00, // type 8 (echo request), code 0
  0x00, 0x00, // checksum (filled below by the codec and checked against RFC 1071)
  0x00, 0x07, // identifier (the ping socket's port)
  0x00, 0x01, // sequence 1
  0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, // data "abcdefgh"
]);

t.test('ICMP echo codec: both families, checksum, clear errors', async (t) => {
  const b = encodeEcho(4, { kind: 'request', id: 7, seq: 1, data: Buffer.from('abcdefgh') });
  t.same(b.subarray(4), PING_REQUEST.subarray(4), 'identifier, sequence and data where RFC 792 puts them');
  t.equal(b[0], 8);
  t.equal(inetChecksum(b), 0, 'the IPv4 checksum verifies (sums to 0 over the message)');
  t.same(decodeEcho(4, b), { kind: 'request', id: 7, seq: 1, data: Buffer.from('abcdefgh') });
  const r6 = encodeEcho(6, { kind: 'reply', id: 0xffff, seq: 0xfffe, data: Buffer.alloc(0) });
  t.same([r6[0], r6.length], [129, ECHO_HEADER], 'ICMPv6 echo reply is type 129; empty data allowed');
  t.same(decodeEcho(6, r6), { kind: 'reply', id: 0xffff, seq: 0xfffe, data: Buffer.alloc(0) });
  t.throws(() => decodeEcho(4, b.subarray(0, 7)), { code: 'DC_PROBE_MALFORMED' }, 'truncated header');
  t.throws(() => decodeEcho(6, b), { code: 'DC_PROBE_MALFORMED', message: /type 8/ }, 'an IPv4 type read as ICMPv6');
  const unreach = Buffer.from(b);
  unreach[0] = 3;
  t.throws(() => decodeEcho(4, unreach), { code: 'DC_PROBE_MALFORMED', message: /not an ICMP echo \(type 3\)/ }, 'destination unreachable');
  const code1 = Buffer.from(b);
  code1[1] = 1;
  t.throws(() => decodeEcho(4, code1), { code: 'DC_PROBE_MALFORMED', message: /code 1/ }, 'code ≠ 0');
  t.throws(() => encodeEcho(4, { kind: 'request', id: 0x10000, seq: 0, data: Buffer.alloc(0) }), { code: 'DC_PROBE_MALFORMED' }, 'id > u16');
  t.throws(() => encodeEcho(4, { kind: 'request', id: 0, seq: 0, data: Buffer.alloc(1500) }), { code: 'DC_PROBE_MALFORMED' }, 'too long');
  t.throws(() => encodeEcho(5 as 4, { kind: 'request', id: 0, seq: 0, data: Buffer.alloc(0) }), { code: 'DC_PROBE_MALFORMED' }, 'family');
});

t.test('the ICMP probe accepts only replies to its own requests: id, sequence, once', async (t) => {
  const m = new EchoMatcher(4, 0x4242);
  const reqs = [m.request(Buffer.from('p0')), m.request(Buffer.from('p1'))];
  const reply = (req: Buffer, f?: (b: Buffer) => void): Buffer => {
    const b = Buffer.from(req);
    b[0] = 0;
    f?.(b);
    return b;
  };
  t.same([reqs[0]!.readUInt16BE(6), reqs[1]!.readUInt16BE(6)], [0, 1], 'sequences count up');
  t.equal(m.reply(reply(reqs[1]!, (b) => b.writeUInt16BE(0x4243, 4))), undefined, 'wrong identifier: dropped');
  t.equal(m.reply(reply(reqs[1]!, (b) => b.writeUInt16BE(9, 6))), undefined, 'a sequence never sent: dropped');
  t.equal(m.reply(reqs[1]!), undefined, 'an echo request (our own looped back): dropped');
  t.equal(m.reply(reply(reqs[1]!).subarray(0, 5)), undefined, 'truncated: dropped, no throw');
  t.equal(m.reply(Buffer.alloc(0)), undefined, 'empty: dropped');
  t.same(m.reply(reply(reqs[1]!)), Buffer.from('p1'), 'the reply to seq 1 gives its payload back');
  t.equal(m.reply(reply(reqs[1]!)), undefined, 'a duplicate reply: dropped');
  t.same(m.reply(reply(reqs[0]!)), Buffer.from('p0'), 'a late reply to seq 0 is still ours');
  const m6 = new EchoMatcher(6, 1);
  const q6 = m6.request(Buffer.from('x'));
  t.equal(q6[0], 128, 'ICMPv6 echo request');
  t.equal(m6.reply(reply(q6)), undefined, 'an IPv4 reply type on an ICMPv6 socket: dropped');
  const ok6 = Buffer.from(q6);
  ok6[0] = 129;
  t.same(m6.reply(ok6), Buffer.from('x'));
  // the sequence wraps at 16 bits and only the last 1024 are remembered
  const w = new EchoMatcher(4, 1);
  let last: Buffer = Buffer.alloc(0);
  for (let i = 0; i < 0x10001; i++) last = w.request(Buffer.alloc(0));
  t.equal(last.readUInt16BE(6), 0, 'sequence wraps to 0 after 65535');
});

t.test('ICMP echo codec and reply filter survive 50k valid, mutated, truncated and noisy messages', async (t) => {
  const res = await fuzz(50_000, 7);
  t.equal(res.iterations, 50_000);
  t.ok(res.decoded > 10_000, `valid messages decode (${res.decoded})`);
  t.ok(res.matched > 10_000, `replies to our requests matched (${res.matched})`);
  t.equal(res.falseMatches, 0, 'nothing but a reply with our identifier is ever accepted');
  t.same(Object.keys(res.rejected), ['DC_PROBE_MALFORMED'], 'every rejection is DC_PROBE_MALFORMED');
  t.ok((res.rejected.DC_PROBE_MALFORMED ?? 0) > 10_000, 'rejections are reached');
});

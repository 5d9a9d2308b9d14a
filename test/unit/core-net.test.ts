import t from 'tap';
import {
  commonPrefixBits,
  formatIPv4Number,
  formatIPv6Groups,
  parseIPv4Number,
  parseIPv6Groups,
  parsePrefix,
  prefixContains,
} from '../../src/core/net.js';
import { formatIPv6, parseIPv4, parseIPv6 } from '../../src/protocols/convert/ip.js';
import { canonicalPrefix, formatAddr, parseAddr } from '../../src/store/net.js';

// Text every parser here must refuse (Convert and the store rely on these rejections).
const notIPv4 = ['', '1.2.3', '1.2.3.4.5', '256.0.0.1', '01.2.3.4', '1.2.3.00', '1..2.3', '.1.2.3', '1.2.3.', 'a.b.c.d', '1.2.3.-4', ' 1.2.3.4', '1.2.3.4/32'];
const notIPv6 = [
  ...[':', ':::', '1::2::3', '12345::', ':1::2', '1::2:', 'g::1', '::/0', 'fe80::1%eth0'],
  ...['1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '1:2:3:4::5:6:7:8'], // too many or too few groups
  ...['::ffff:1.2.3', '::ffff:01.2.3.4', '1:2:3:4:5:6:7:1.2.3.4', '1.2.3.4', '1.2.3.4::'], // embedded dotted quad
];

t.test('IPv4 text: strict dotted quad ⇄ 32-bit number', async (t) => {
  t.equal(parseIPv4Number('192.0.2.1'), 0xc0000201);
  t.equal(parseIPv4Number('255.255.255.255'), 0xffffffff);
  t.equal(parseIPv4Number('0.0.0.0'), 0);
  for (const bad of notIPv4) t.equal(parseIPv4Number(bad), undefined, bad);
  t.equal(formatIPv4Number(0xc0000201), '192.0.2.1');
  t.equal(formatIPv4Number(0xffffffff), '255.255.255.255');
});

t.test('IPv6 text: strict parse into eight groups', async (t) => {
  t.same(parseIPv6Groups('::'), [0, 0, 0, 0, 0, 0, 0, 0]);
  t.same(parseIPv6Groups('::1'), [0, 0, 0, 0, 0, 0, 0, 1]);
  t.same(parseIPv6Groups('2001:DB8::1'), [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]);
  t.same(parseIPv6Groups('1:2:3:4:5:6:7:8'), [1, 2, 3, 4, 5, 6, 7, 8]);
  t.same(parseIPv6Groups('::ffff:192.0.2.1'), [0, 0, 0, 0, 0, 0xffff, 0xc000, 0x201], 'mapped stays IPv6 here');
  t.same(parseIPv6Groups('1:2:3:4:5:6:1.2.3.4'), [1, 2, 3, 4, 5, 6, 0x102, 0x304]);
  for (const bad of notIPv6) t.equal(parseIPv6Groups(bad), undefined, bad);
});

t.test('IPv6 text: RFC 5952 output', async (t) => {
  const cases: Array<[string, string]> = [
    ['2001:0DB8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['::', '::'],
    ['fe80::', 'fe80::'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not compressed
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // the longest run
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // the first of equal runs
    ['::ffff:192.0.2.1', '::ffff:c000:201'], // all hex: the dotted form is for callers that want it
  ];
  for (const [input, canon] of cases) t.equal(formatIPv6Groups(parseIPv6Groups(input)!), canon, input);
});

t.test('store and Convert read and write addresses through core', async (t) => {
  for (const s of ['2001:db8::1', '2001:0:0:1:0:0:0:1', '1:2:3:4:5:6:7:8', '::']) {
    const canon = formatIPv6Groups(parseIPv6Groups(s)!);
    t.equal(formatIPv6(parseIPv6(s)!), canon, `convert ${s}`);
    t.equal(formatAddr(parseAddr(s)!), canon, `store ${s}`);
  }
  t.same(parseAddr('::ffff:192.0.2.1'), { family: 4, words: [0xc0000201] }, 'store unmaps');
  t.equal(canonicalPrefix('::ffff:192.0.2.0/120'), '::ffff:c000:200/120', 'a mapped prefix stays IPv6');
  for (const bad of notIPv4) t.equal(parseIPv4(bad) ?? parseAddr(bad), undefined, `both refuse ${bad}`);
  for (const bad of notIPv6.filter((s) => s !== '1.2.3.4')) t.equal(parseIPv6(bad) ?? parseAddr(bad), undefined, `both refuse ${bad}`);
});

t.test('prefixes: IPv4-mapped addresses match IPv4 prefixes', async (t) => {
  const p = parsePrefix('10.0.0.0/8')!;
  t.ok(prefixContains(p, '10.1.2.3'));
  t.ok(prefixContains(p, '::ffff:10.1.2.3'));
  t.notOk(prefixContains(p, '11.0.0.1'));
  t.ok(prefixContains(parsePrefix('fd00::/8')!, 'fd12::1'));
  t.ok(prefixContains(parsePrefix('fe80::/10')!, 'fe80::1%eth0'), 'a zone id (which node:net allows) is ignored');
  t.equal(parsePrefix('10.0.0.0/33'), undefined);
  t.equal(parsePrefix('01.0.0.0/8'), undefined);
  t.equal(commonPrefixBits('2001:db8::1', '2001:db8::2'), 126);
  t.equal(commonPrefixBits('::ffff:10.0.0.1', '10.0.0.1'), 32);
  t.equal(commonPrefixBits('10.0.0.1', '2001:db8::1'), -1);
});

t.test('canonicalAddress: one text per numeric address', async (t) => {
  const { canonicalAddress } = await import('../../src/core/net.js');
  t.equal(canonicalAddress('10.31.0.2'), '10.31.0.2');
  t.equal(canonicalAddress('::ffff:a1f:2'), '10.31.0.2', 'IPv4-mapped, hex spelling');
  t.equal(canonicalAddress('0:0::ffff:10.31.0.2'), '10.31.0.2');
  t.equal(canonicalAddress('2001:db8:0:0::0001'), '2001:db8::1');
  t.equal(canonicalAddress('example.com'), undefined);
  t.equal(canonicalAddress('10.31.0.256'), undefined);
});

// Every spelling of the IPv4-mapped 10.71.0.1 a peer, a socket or a codec may produce: the
// netlink codec writes the kernel's mptcp_pm addresses in hex (`::ffff:a47:1`), node:net writes
// dual-stack peers dotted, operators type the rest.
const MAPPED_10_71_0_1 = [
  '::ffff:10.71.0.1', // node:net, dual-stack socket
  '::ffff:a47:1', // the netlink codec (RFC 5952, all hex)
  '::FFFF:A47:1',
  '::ffff:0a47:0001', // leading zeros
  '0:0:0:0:0:ffff:a47:1', // uncompressed
  '0000:0000:0000:0000:0000:FFFF:0A47:0001',
  '0:0:0::ffff:a47:1',
  '::0:ffff:a47:1',
  '0:0:0:0:0:ffff:10.71.0.1',
  '::FFFF:10.71.0.1',
  '::ffff:a47:1%eth0', // a zone id (node:net allows one) is ignored
];

t.test('IPv4-mapped addresses: every spelling unmaps, matches and compares as its IPv4 address', async (t) => {
  const { addressKey, ipFamily, mappedIPv4, sameAddress, unmapV4, longestMatch } = await import('../../src/core/net.js');
  const p16 = parsePrefix('10.71.0.0/16')!;
  const p96 = parsePrefix('::ffff:0:0/96')!;
  const p104 = parsePrefix('::ffff:10.0.0.0/104')!;
  for (const s of MAPPED_10_71_0_1) {
    t.equal(mappedIPv4(s), 0x0a470001, `mappedIPv4 ${s}`);
    t.equal(unmapV4(s), '10.71.0.1', `unmapV4 ${s}`);
    t.ok(prefixContains(p16, s), `10.71.0.0/16 contains ${s}`);
    t.notOk(prefixContains(parsePrefix('10.72.0.0/16')!, s), `10.72.0.0/16 does not contain ${s}`);
    t.ok(prefixContains(p96, s), `::ffff:0:0/96 contains ${s}`);
    t.ok(prefixContains(p104, s), `::ffff:10.0.0.0/104 contains ${s}`);
    t.notOk(prefixContains(parsePrefix('::/0')!, s), `::/0 names IPv6 space only: not ${s}`);
    t.equal(commonPrefixBits(s, '10.71.0.1'), 32, `commonPrefixBits ${s}`);
    t.equal(commonPrefixBits(s, '10.71.0.3'), 30);
    t.ok(sameAddress(s, '10.71.0.1'), `sameAddress ${s}`);
    t.equal(addressKey(s), '10.71.0.1', `addressKey ${s}`);
  }
  t.ok(prefixContains(p96, '10.71.0.1'), 'a mapped-range IPv6 prefix matches the plain IPv4 address too');
  t.ok(prefixContains(p104, '10.1.2.3'));
  t.notOk(prefixContains(p104, '11.1.2.3'));
  t.ok(prefixContains(parsePrefix('::/0')!, '2001:db8::1'));
  t.ok(prefixContains(parsePrefix('::ffff:a47:0/112')!, '10.71.9.9'), 'a hex-spelled mapped prefix');
  // not IPv4-mapped: stays IPv6 (v4-compatible, NAT64, one group off)
  for (const s of ['::a47:1', '::10.71.0.1', '64:ff9b::a47:1', '::fffe:a47:1', '1::ffff:a47:1', '::ffff:0:a47:1']) {
    t.equal(mappedIPv4(s), undefined, `not mapped: ${s}`);
    t.equal(unmapV4(s), s, `unchanged: ${s}`);
    t.notOk(prefixContains(p16, s), `10.71.0.0/16 does not contain ${s}`);
    t.notOk(prefixContains(p96, s), `::ffff:0:0/96 does not contain ${s}`);
  }
  // not addresses at all: unchanged, no match, no throw
  for (const s of ['', 'ffff', '::ffff:a47:1%', '::ffff:', '::ffff:10.71.0', '::ffff:10.71.0.256', '::ffff:a47:1:2', '::ffff:a47', 'example.com', '::ffff:a47:1/96', ' ::ffff:a47:1', ':::ffff:a47:1', '::ffff::a47:1', '::ffff:g47:1', '::ffff:10.71.0.1.2']) {
    t.equal(unmapV4(s), s, `unchanged: ${JSON.stringify(s)}`);
    t.notOk(prefixContains(p16, s), `no match: ${JSON.stringify(s)}`);
    t.equal(commonPrefixBits(s, '10.71.0.1'), -1);
  }
  t.equal(ipFamily('::ffff:a47:1'), 6, 'ipFamily stays the text family (a dual-stack socket is AF_INET6)');
  // plain IPv4 and non-mapped IPv6 unchanged
  t.equal(unmapV4('10.71.0.1'), '10.71.0.1');
  t.equal(unmapV4('2001:db8::1'), '2001:db8::1');
  t.notOk(sameAddress('10.71.0.1', '10.71.0.2'));
  t.notOk(sameAddress('::a47:1', '10.71.0.1'), 'IPv4-compatible is another address');
  t.ok(sameAddress('2001:DB8::1', '2001:db8:0:0::0001'));
  t.ok(sameAddress('host.example', 'host.example'), 'non-addresses compare as text');
  // longest match ranks IPv4 and mapped prefixes in one space
  const table = [{ prefix: parsePrefix('10.0.0.0/8')!, value: 'v4/8' }, { prefix: parsePrefix('::ffff:10.71.0.0/112')!, value: 'mapped/112' }, { prefix: parsePrefix('::/0')!, value: 'v6 any' }];
  t.equal(longestMatch(table, '::ffff:a47:5'), 'mapped/112');
  t.equal(longestMatch(table, '10.9.0.1'), 'v4/8');
  t.equal(longestMatch(table, '2001:db8::1'), 'v6 any');
  t.equal(longestMatch(table, '::FFFF:0B00:0001'), undefined, '11.0.0.1: no IPv4 prefix, and ::/0 is IPv6 only');
});

t.test('parsePrefix is strict and never throws', async (t) => {
  for (const bad of ['10.0.0.0/8/9', '10.0.0.0/', '10.0.0.0/+8', '10.0.0.0/8 ', '10.0.0.0/0x8', '10.0.0.0/1e1', '10.0.0.0/-1', '/8', '', 'fd00::/129', '10.0.0.0/33', 'fd00::/0008', 'host/8']) {
    t.equal(parsePrefix(bad), undefined, JSON.stringify(bad));
  }
  t.same(parsePrefix('10.1.2.3/8'), { family: 4, bits: 8, value: 0x0a000000n, text: '10.1.2.3/8' }, 'host bits masked');
  t.same(parsePrefix('::FFFF:10.0.0.0/104')?.family, 6, 'a mapped prefix stays IPv6 here (prefixContains gives it the IPv4 meaning)');
  t.equal(parsePrefix('10.0.0.1')?.bits, 32);
  t.equal(parsePrefix('fd00::1')?.bits, 128);
  for (const junk of [undefined, null, 42, {}] as unknown as string[]) {
    t.equal(parsePrefix(junk), undefined);
    t.notOk(prefixContains(parsePrefix('10.0.0.0/8')!, junk));
  }
});

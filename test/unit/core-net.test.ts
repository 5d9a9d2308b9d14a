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

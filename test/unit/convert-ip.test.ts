import t from 'tap';
import {
  forbiddenTarget,
  formatIPv6,
  fromIPv6Bytes,
  parseIPv4,
  parseIPv6,
  toIPv6Bytes,
} from '../../src/protocols/convert/index.js';

t.test('IPv4 text', async (t) => {
  t.same([...parseIPv4('192.0.2.1')!], [192, 0, 2, 1]);
  for (const bad of ['256.0.0.1', '1.2.3', '01.2.3.4', '1.2.3.4.5', '', 'a.b.c.d', '1.2.3.-4']) {
    t.equal(parseIPv4(bad), undefined, bad);
  }
});

t.test('IPv6 text ⇄ bytes, RFC 5952 output', async (t) => {
  const cases: Array<[string, string]> = [
    ['2001:db8::1', '2001:db8::1'],
    ['2001:0DB8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['::', '::'],
    ['::1', '::1'],
    ['fe80::', 'fe80::'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single 0 group is not compressed
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // the longest run is compressed
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first of equal runs
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
  ];
  for (const [input, canon] of cases) {
    const b = parseIPv6(input);
    t.ok(b, input);
    t.equal(formatIPv6(b!), canon, input);
  }
  for (const bad of [':', ':::', '1::2::3', '12345::', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', 'g::1', '::ffff:1.2.3', 'fe80::1%eth0']) {
    t.equal(parseIPv6(bad), undefined, bad);
  }
});

t.test('Convert address field: IPv4 mapped, back to dotted', async (t) => {
  const b = toIPv6Bytes('198.51.100.9')!;
  t.equal(Buffer.from(b).toString('hex'), '00000000000000000000ffffc6336409');
  t.equal(fromIPv6Bytes(b), '198.51.100.9');
  t.equal(fromIPv6Bytes(toIPv6Bytes('2001:db8::5')!), '2001:db8::5');
  t.equal(toIPv6Bytes('example.com'), undefined);
});

t.test('targets RFC 8803 forbids', async (t) => {
  for (const a of ['127.0.0.1', '127.255.0.3', '224.0.0.1', '239.1.1.1', '255.255.255.255', '0.0.0.0', '::1', '::', 'ff02::1']) {
    t.type(forbiddenTarget(toIPv6Bytes(a)!), 'string', a);
  }
  for (const a of ['192.0.2.1', '10.1.2.3', '2001:db8::1', 'fe80::1', '240.0.0.1']) {
    t.equal(forbiddenTarget(toIPv6Bytes(a)!), undefined, a);
  }
});

// The proxy's target filter: a table over every special-purpose range (IPv4, IPv6, v4-mapped,
// NAT64, 6to4, Teredo), the box's own addresses and listener ports, the allow-list, and a fuzz
// run against an independent oracle written with core/net's prefix matcher.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { parsePrefix, prefixContains } from '../../src/core/net.js';
import { createTargetFilter, addressTextKey, specialPurpose, FORBIDDEN_REASONS } from '../../src/services/proxy/target-filter.js';
import { LocalAddresses, boardTargetFilter } from '../../src/services/proxy/index.js';
import { toIPv6Bytes } from '../../src/protocols/convert/ip.js';

const own = new Set(['10.250.0.1', 'fd00:250::1', '192.168.7.1'].map((a) => addressTextKey(a)!));
const filter = createTargetFilter({ ownAddresses: own, listenerPorts: new Set([1080, 8080]) });
const judge = (host: string, port = 443): string | undefined => filter({ host, port })?.reason;

const REFUSED: Array<[string, string]> = [
  // IPv4 special-purpose registry
  ['0.0.0.0', 'unspecified'],
  ['0.1.2.3', 'this-network'],
  ['127.0.0.1', 'loopback'],
  ['127.255.255.254', 'loopback'],
  ['169.254.0.1', 'link-local'],
  ['169.254.255.254', 'link-local'],
  ['192.0.0.1', 'ietf-protocol'],
  ['192.0.0.170', 'ietf-protocol'],
  ['192.0.2.1', 'documentation'],
  ['198.51.100.7', 'documentation'],
  ['203.0.113.9', 'documentation'],
  ['192.88.99.1', 'reserved'],
  ['198.18.0.1', 'benchmarking'],
  ['198.19.255.255', 'benchmarking'],
  ['224.0.0.1', 'multicast'],
  ['239.255.255.250', 'multicast'],
  ['240.0.0.1', 'reserved'],
  ['255.255.255.254', 'reserved'],
  ['255.255.255.255', 'broadcast'],
  // IPv6 special-purpose registry
  ['::', 'unspecified'],
  ['::1', 'loopback'],
  ['fe80::1', 'link-local'],
  ['febf:ffff::1', 'link-local'],
  ['fec0::1', 'reserved'],
  ['ff02::1', 'multicast'],
  ['ff0e::1', 'multicast'],
  ['2001:db8::1', 'documentation'],
  ['3fff::1', 'documentation'],
  ['2001:2::1', 'benchmarking'],
  ['100::1', 'discard-only'],
  ['2001:10::1', 'reserved'],
  ['5f00::1', 'reserved'],
  ['::ffff:0:808:808', 'reserved'], // SIIT-translated form, in ::/8
  // IPv4-mapped: judged as the IPv4 address
  ['::ffff:127.0.0.1', 'loopback'],
  ['::ffff:7f00:1', 'loopback'],
  ['::ffff:169.254.1.1', 'link-local'],
  ['::ffff:255.255.255.255', 'broadcast'],
  // IPv4-compatible (deprecated): the IPv4 inside first, else reserved
  ['::127.0.0.1', 'loopback'],
  ['::8.8.8.8', 'reserved'],
  // NAT64 (RFC 6052 well-known prefix, RFC 8215 local-use prefix): the embedded IPv4
  ['64:ff9b::127.0.0.1', 'loopback'],
  ['64:ff9b::a9fe:101', 'link-local'],
  ['64:ff9b::224.0.0.1', 'multicast'],
  ['64:ff9b:1::7f00:1', 'loopback'],
  // 6to4: the IPv4 in bits 16-47
  ['2002:7f00:1::1', 'loopback'],
  ['2002:a9fe:101::1', 'link-local'],
  // Teredo: the server IPv4 and the obfuscated client IPv4
  ['2001:0:7f00:1::1', 'loopback'],
  ['2001:0:808:808::80ff:fffe', 'loopback'],
  // the box itself
  ['10.250.0.1', 'own-address'],
  ['::ffff:10.250.0.1', 'own-address'],
  ['fd00:250::1', 'own-address'],
  ['FD00:250:0::1', 'own-address'],
  ['64:ff9b::10.250.0.1', 'own-address'],
  ['2002:0afa:0001::1', 'own-address'],
  ['192.168.7.1', 'own-address'],
];

const ALLOWED = [
  '10.0.0.1',
  '10.31.0.2', // the simulated board's N-server
  '172.16.0.1',
  '172.31.255.255',
  '192.168.1.1',
  '100.64.0.1',
  '8.8.8.8',
  '1.1.1.1',
  '11.0.0.1',
  '169.253.255.255',
  '169.255.0.0',
  '192.0.0.9',
  '192.0.0.10',
  '192.0.3.1',
  '198.17.255.255',
  '198.20.0.0',
  '223.255.255.255',
  'fd00:31::2', // the simulated board's servers (unique-local)
  'fc00::1',
  'fd12:3456::1',
  '2001:4860:4860::8888',
  '2a00:1450::1',
  '2001:3::1',
  '2001:20::1',
  '2001:0:808:808::f7f7:f7f7', // Teredo with public server and client
  '2002:808:808::1',
  '64:ff9b::8.8.8.8',
  '64:ff9b::10.0.0.1',
  '::ffff:10.0.0.1',
  '::ffff:8.8.8.8',
  'fe7f:ffff::1',
  '2600::1',
  'www.example.net', // a name: only an explicit listener's configured target, not judged here
];

t.test('every special-purpose form is refused with its reason', async (t) => {
  for (const [addr, reason] of REFUSED) t.equal(judge(addr), reason, addr);
});

t.test('routable, private, CGN and unique-local targets stay reachable', async (t) => {
  for (const addr of ALLOWED) t.equal(judge(addr), undefined, addr);
});

t.test("the box's listener ports on its own addresses are own-listener", async (t) => {
  t.equal(judge('10.250.0.1', 1080), 'own-listener');
  t.equal(judge('fd00:250::1', 8080), 'own-listener');
  t.equal(judge('::ffff:10.250.0.1', 1080), 'own-listener');
  t.equal(judge('10.250.0.1', 1081), 'own-address');
  t.equal(judge('10.31.0.2', 1080), undefined, 'a listener port on another host is fine');
  t.equal(filter({ host: '64:ff9b::a9fe:101', port: 1 })?.judged, '169.254.1.1', 'the embedded IPv4 is named');
});

t.test('the allow-list overrides on purpose, and only what it names', async (t) => {
  const f = createTargetFilter({ ownAddresses: own, allow: ['198.18.0.0/15', 'fe80::/10', '10.250.0.1', '64:ff9b::/96'] });
  t.equal(f({ host: '198.18.4.4', port: 80 }), undefined);
  t.equal(f({ host: '::ffff:198.19.0.1', port: 80 }), undefined, 'a mapped address matches an IPv4 prefix');
  t.equal(f({ host: 'fe80::1', port: 80 }), undefined);
  t.equal(f({ host: '10.250.0.1', port: 80 }), undefined, 'an own address allowed on purpose');
  t.equal(f({ host: '64:ff9b::7f00:1', port: 80 }), undefined, 'a NAT64 prefix allowed on purpose');
  t.equal(f({ host: '192.0.2.1', port: 80 })?.reason, 'documentation');
  t.equal(f({ host: '169.254.1.1', port: 80 })?.reason, 'link-local', 'fe80::/10 does not open IPv4 link-local');
  t.equal(f({ host: 'fd00:250::1', port: 80 })?.reason, 'own-address');
  t.throws(() => boardTargetFilter({ listeners: [], web: { listen: [] }, proxyTargets: { allow: ['10.0.0.0/33'] } }, own), { code: 'DC_CONFIG_INVALID' });
});

t.test("own addresses follow the interfaces as they come and go", async (t) => {
  let ifs: Record<string, Array<{ address: string }>> = { lo: [{ address: '127.0.0.1' }], eth0: [{ address: '10.9.9.9' }] };
  let now = 0;
  const local = new LocalAddresses(() => ifs as never, 1000, () => now);
  const f = boardTargetFilter({ listeners: [{ kind: 'socks5', host: '::', port: 1080, mptcp: true } as never], web: { listen: [{ host: '10.9.9.9', port: 80 }] } }, local);
  t.equal(f({ host: '10.9.9.9', port: 80 })?.reason, 'own-listener', 'the web port');
  t.equal(f({ host: '10.9.9.9', port: 1080 })?.reason, 'own-listener');
  t.equal(f({ host: '10.8.8.8', port: 1080 }), undefined);
  ifs = { lo: [{ address: '127.0.0.1' }], eth0: [{ address: '10.8.8.8' }, { address: 'fe80::1%eth0' }] };
  local.refresh(); // an rtnetlink address event
  t.equal(f({ host: '10.8.8.8', port: 443 })?.reason, 'own-address', 'a new address is refused at once');
  t.equal(f({ host: '10.9.9.9', port: 443 }), undefined, 'a removed address is reachable again');
  ifs = { eth0: [{ address: '10.7.7.7' }] };
  now += 1001; // without an event, at most maxAgeMs late
  t.equal(f({ host: '10.7.7.7', port: 443 })?.reason, 'own-address');
});

// ── fuzz: an independent oracle over random addresses ──

const ORACLE_V4: Array<[string, string | undefined]> = [
  ['192.0.0.9/32', undefined],
  ['192.0.0.10/32', undefined],
  ['0.0.0.0/32', 'unspecified'],
  ['0.0.0.0/8', 'this-network'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'],
  ['192.0.0.0/24', 'ietf-protocol'],
  ['192.0.2.0/24', 'documentation'],
  ['192.88.99.0/24', 'reserved'],
  ['198.18.0.0/15', 'benchmarking'],
  ['198.51.100.0/24', 'documentation'],
  ['203.0.113.0/24', 'documentation'],
  ['224.0.0.0/4', 'multicast'],
  ['255.255.255.255/32', 'broadcast'],
  ['240.0.0.0/4', 'reserved'],
];
const oracleTable = ORACLE_V4.map(([p, r]) => ({ p: parsePrefix(p)!, r }));
function oracleV4(a: string): string | undefined {
  for (const { p, r } of oracleTable) if (prefixContains(p, a)) return r;
  return undefined;
}

function randomV4(): string {
  const b = randomBytes(4);
  // Bias a third of the draws into the special ranges' neighbourhoods.
  if (b[3]! % 3 === 0) {
    const near = [[0], [127], [169, 254], [192, 0, 0], [192, 0, 2], [192, 88, 99], [198, 18], [198, 19], [198, 51, 100], [203, 0, 113], [224], [239], [240], [255, 255, 255], [169, 253], [192, 0, 1]][b[2]! % 16]!;
    near.forEach((x, i) => (b[i] = x));
  }
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

t.test('fuzz: IPv4, v4-mapped and NAT64 forms agree with the oracle', async (t) => {
  const seen = new Set<string>();
  let bad = 0;
  for (let i = 0; i < 20_000; i++) {
    const a = randomV4();
    const want = oracleV4(a);
    const got = [judge(a), judge(`::ffff:${a}`), judge(`64:ff9b::${a}`)];
    if (got.some((g) => g !== want)) {
      bad++;
      if (bad < 5) t.fail(`${a}: oracle ${want}, got ${got.join(' / ')}`);
    }
    if (want !== undefined) seen.add(want);
  }
  t.equal(bad, 0, 'no disagreement in 20,000 draws');
  t.ok(seen.size >= 8, `the draws reached ${seen.size} reasons`);
});

t.test('fuzz: random 16 bytes never throw and give a known reason', async (t) => {
  const known = new Set<string>(FORBIDDEN_REASONS);
  for (let i = 0; i < 20_000; i++) {
    const b = randomBytes(16);
    if (i % 4 === 0) b[0] = [0, 0xfe, 0xff, 0x20, 0x01, 0x3f, 0x5f, 0xfd][b[1]! % 8]!;
    const r = specialPurpose(b);
    if (r !== undefined && !known.has(r)) t.fail(`unknown reason ${r}`);
    // The text round trip judges the same.
    const g: string[] = [];
    for (let j = 0; j < 16; j += 2) g.push(((b[j]! << 8) | b[j + 1]!).toString(16));
    const viaText = specialPurpose(toIPv6Bytes(g.join(':'))!);
    if (viaText !== r) t.fail(`${g.join(':')}: ${r} vs ${viaText}`);
  }
  t.pass('20,000 random addresses judged');
});

t.test('/metrics counts target refusals with a stable code, by front and reason', async (t) => {
  const { startServer } = await import('./web-helpers.js');
  let n = 3;
  const h = await startServer({}, (d) => ({ ...d, targetRefusals: () => ({ 'socks5 own-address': n, 'convert link-local': 1 }) }));
  t.teardown(() => h.close());
  const c = h.client();
  const m1 = (await c.get('/metrics')).text;
  t.match(m1, /duocell_target_forbidden_total\{code="DC_TARGET_FORBIDDEN",front="socks5",reason="own-address"\} 3/);
  t.match(m1, /duocell_target_forbidden_total\{code="DC_TARGET_FORBIDDEN",front="convert",reason="link-local"\} 1/);
  n = 5;
  t.match((await c.get('/metrics')).text, /front="socks5",reason="own-address"\} 5/, 'follows the running total');
});

import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store, BUILTIN_DEFAULTS } from '../../src/store/index.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-store-res-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

t.test('longest-prefix match, defaults merged', async (t) => {
  const s = await Store.open({ dir: tmp, boardDefaults: { interceptPorts: [80] } });
  t.teardown(() => s.close());
  s.setPolicy({ name: 'default', maxSessionsPerUe: 16 }, 'cli');
  s.setPolicy({ name: 'lab', maxSubflowsPerSession: 2, steeringMode: 'active-standby' }, 'cli');
  s.setPolicy({ name: 'vip', maxSessionsPerUe: 100, ratio: { cellular: 30, wlan: 70 } }, 'cli');
  s.addSubscriber({ name: 'net', policy: 'lab', addresses: ['10.0.0.0/8', '2001:db8::/32'] }, 'cli');
  s.addSubscriber({ name: 'host', policy: 'vip', addresses: ['10.1.2.3', '2001:db8:0:1::/64'] }, 'cli');
  s.addSubscriber({ name: 'off', policy: 'vip', addresses: ['172.16.0.0/12'], enabled: false }, 'cli');

  const host = s.resolvePolicy('10.1.2.3');
  t.equal(host.subscriber, 'host');
  t.equal(host.matched, '10.1.2.3/32');
  t.equal(host.maxSessionsPerUe, 100, 'own policy');
  t.same(host.ratio, { cellular: 30, wlan: 70 });
  t.same(host.interceptPorts, [80], 'board default below the default policy');
  t.equal(host.maxSubflowsPerSession, BUILTIN_DEFAULTS.maxSubflowsPerSession, 'built-in default');
  t.equal(s.resolvePolicy('::ffff:10.1.2.3').subscriber, 'host', 'IPv4-mapped');
  const net = s.resolvePolicy('10.200.0.1');
  t.equal(net.subscriber, 'net');
  t.equal(net.maxSessionsPerUe, 16, 'inherits the default policy');
  t.equal(net.steeringMode, 'active-standby');
  t.equal(s.resolvePolicy('2001:db8:0:1::99').subscriber, 'host');
  t.equal(s.resolvePolicy('2001:db8:ffff::1').subscriber, 'net');
  const none = s.resolvePolicy('192.0.2.1');
  t.equal(none.subscriber, null);
  t.equal(none.maxSessionsPerUe, 16);
  t.equal(s.resolvePolicy('172.16.0.1').subscriber, null, 'disabled subscriber does not match');
  t.equal(s.resolvePolicy('not an address').subscriber, null);
  t.ok(Object.isFrozen(host) && Object.isFrozen(host.ratio), 'results are frozen (shared)');

  s.updateSubscriber('host', { addresses: ['10.1.2.4'] }, 'cli');
  t.equal(s.resolvePolicy('10.1.2.3').subscriber, 'net', 'cache invalidated by a local change');
  t.equal(s.resolvePolicy('10.1.2.4').subscriber, 'host');
});

t.test('a change made by another process is seen', async (t) => {
  let now = 0;
  const a = await Store.open({ dir: tmp, now: () => now, recheckMs: 100 });
  const b = await Store.open({ dir: tmp });
  t.teardown(() => (a.close(), b.close()));
  t.equal(a.resolvePolicy('192.0.2.50').subscriber, null);
  b.addSubscriber({ name: 'late', addresses: ['192.0.2.50'] }, 'cli');
  now += 101;
  t.equal(a.resolvePolicy('192.0.2.50').subscriber, 'late', 'seen after recheckMs');
});

t.test('lookup cost with 10,000 subscribers (reported, not asserted)', async (t) => {
  const s = await Store.open({ file: path.join(tmp, 'big.db') });
  t.teardown(() => s.close());
  s.policyWrite('seed', () => {
    for (let i = 0; i < 10_000; i++) s.addSubscriber({ name: `s${i}`, addresses: [`10.${(i >> 8) & 255}.${i & 255}.1`, `2001:db8:${i.toString(16)}::/64`] }, 'system');
  });
  const addrs = Array.from({ length: 1000 }, (_, i) => (i % 2 ? `10.${(i >> 8) & 255}.${i & 255}.1` : `2001:db8:${i.toString(16)}::7`));
  s.resolvePolicy('10.0.0.1');
  const t0 = process.hrtime.bigint();
  let hits = 0;
  for (let r = 0; r < 20; r++) for (const a of addrs) if (s.resolvePolicy(a).subscriber !== null) hits++;
  const us = Number(process.hrtime.bigint() - t0) / 1000 / 20_000;
  t.equal(hits, 20_000, 'every address matched its subscriber');
  t.comment(`resolvePolicy: ${us.toFixed(2)} µs mean over 20k lookups`);
});

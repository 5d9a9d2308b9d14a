import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store, canonicalPrefix, canonicalMac, parseAddr } from '../../src/store/index.js';
import { isDuocellError } from '../../src/core/errors.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (e) {
    return isDuocellError(e) ? e.code : `not a DuocellError: ${String(e)}`;
  }
}
async function codeOfAsync(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return isDuocellError(e) ? e.code : `not a DuocellError: ${String(e)}`;
  }
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-store-repo-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
const fast = { N: 1024, r: 8, p: 1 };

t.test('address, prefix and MAC canonical forms', async (t) => {
  t.equal(canonicalPrefix('192.0.2.77/24'), '192.0.2.0/24');
  t.equal(canonicalPrefix('192.0.2.7'), '192.0.2.7/32');
  t.equal(canonicalPrefix('2001:DB8:0:0:0:0:0:1'), '2001:db8::1/128');
  t.equal(canonicalPrefix('2001:db8:aa:bb::ffff/48'), '2001:db8:aa::/48');
  t.equal(canonicalPrefix('::/0'), '::/0');
  t.equal(canonicalPrefix('1:0:0:2:0:0:0:3'), '1:0:0:2::3/128', 'longest zero run compressed');
  t.equal(canonicalPrefix('::ffff:10.0.0.1'), '::ffff:a00:1/128');
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.4/33', '1.2.3.4/', '::1::2', '1:2:3:4:5:6:7:8:9', ':1:2::', 'fe80::1%eth0', 'x', '1.2.3.4/08', '2001:db8::/129', '12345::']) {
    t.equal(canonicalPrefix(bad), undefined, `refuses ${JSON.stringify(bad)}`);
  }
  t.same(parseAddr('::ffff:192.0.2.1'), { family: 4, words: [0xc0000201] }, 'IPv4-mapped parses as IPv4');
  t.equal(canonicalMac('02-00-00-AA-bb-cc'), '02:00:00:aa:bb:cc');
  t.equal(canonicalMac('0200000aabbcc'), undefined);
});

t.test('subscribers, policies, audit', async (t) => {
  const s = await Store.open({ dir: path.join(tmp, 'a'), scrypt: fast });
  t.teardown(() => s.close());
  s.setPolicy({ name: 'gold', maxSessionsPerUe: 2, maxSubflowsPerSession: 1, steeringMode: 'ratio', ratio: { cellular: 30, wlan: 70 }, allowedNetworks: ['10.0.0.0/8'], interceptPorts: [443, 80, 443] }, 'cli');
  t.same(s.getPolicy('gold')?.interceptPorts, [80, 443], 'ports deduplicated and sorted');
  const r = s.addSubscriber({ name: 'alice', policy: 'gold', addresses: ['10.1.2.3', '2001:db8:1::/48'], macs: ['02:00:00:00:00:01'] }, 'web');
  t.equal(r.policy, 'gold');
  t.same(r.addresses, ['10.1.2.3/32', '2001:db8:1::/48']);
  t.equal(s.countSubscribers(), 1);
  t.equal(codeOf(() => s.addSubscriber({ name: 'alice' }, 'cli')), 'DC_STORE_CONSTRAINT', 'duplicate name');
  t.equal(codeOf(() => s.addSubscriber({ name: 'bob', addresses: ['10.1.2.3'] }, 'cli')), 'DC_STORE_CONSTRAINT', 'identifier owned by another subscriber');
  t.equal(s.getSubscriber('bob'), undefined, 'the failed add left nothing behind');
  t.equal(codeOf(() => s.addSubscriber({ name: 'bob', policy: 'nope' }, 'cli')), 'DC_STORE_NOT_FOUND');
  t.equal(codeOf(() => s.addSubscriber({ name: 'bad name; rm -rf /' }, 'cli')), 'DC_STORE_INVALID');
  t.equal(codeOf(() => s.addSubscriber({ name: 'bob', addresses: ['10.0.0.300'] }, 'cli')), 'DC_STORE_INVALID');
  t.equal(codeOf(() => s.setPolicy({ name: 'x', ratio: { cellular: 30, wlan: 60 } }, 'cli')), 'DC_STORE_INVALID');
  t.equal(codeOf(() => s.setPolicy({ name: 'x', maxSubflowsPerSession: 9 }, 'cli')), 'DC_STORE_INVALID');
  t.equal(codeOf(() => s.setPolicy({ name: 'x', steeringMode: 'fastest' as never }, 'cli')), 'DC_STORE_INVALID');
  t.equal(codeOf(() => s.removePolicy('gold', 'cli')), 'DC_STORE_IN_USE');
  t.equal(codeOf(() => s.removePolicy('default', 'cli')), 'DC_STORE_INVALID');
  const u = s.updateSubscriber('alice', { macs: [], enabled: false }, 'cli');
  t.same(u.macs, []);
  t.same(u.addresses, ['10.1.2.3/32', '2001:db8:1::/48'], 'unchanged fields kept');
  t.equal(s.subscriberByMac('02:00:00:00:00:01'), undefined);
  s.removeSubscriber('alice', 'web');
  t.equal(codeOf(() => s.removeSubscriber('alice', 'web')), 'DC_STORE_NOT_FOUND');
  s.removePolicy('gold', 'cli');
  const audit = s.listAudit({ limit: 50 });
  t.same(
    audit.map((a) => `${a.origin} ${a.action} ${a.entity} ${a.key}`).reverse(),
    ['cli create policy gold', 'web create subscriber alice', 'cli update subscriber alice', 'web remove subscriber alice', 'cli remove policy gold'],
    'every change audited with its origin, failed ones not',
  );
});

t.test('credentials, cookies, secrets', async (t) => {
  const s = await Store.open({ dir: path.join(tmp, 'b'), scrypt: fast });
  t.teardown(() => s.close());
  s.addSubscriber({ name: 'carol' }, 'cli');
  await s.setSubscriberPassword('carol', 'correct horse', 'cli');
  t.ok(await s.verifySubscriberPassword('carol', 'correct horse'));
  t.notOk(await s.verifySubscriberPassword('carol', 'wrong'));
  t.notOk(await s.verifySubscriberPassword('nobody', 'correct horse'));
  const raw = s.exportPolicySet().subscribers.find((x) => x.name === 'carol')?.credential as string;
  t.match(raw, /^scrypt\$1024\$8\$1\$/, 'stored as an scrypt hash');
  t.notMatch(raw, /horse/);
  t.equal(await codeOfAsync(s.setSubscriberPassword('nobody', 'x', 'cli')), 'DC_STORE_NOT_FOUND');
  const cookie = s.issueSubscriberCookie('carol', 'cli');
  t.equal(s.subscriberByCookie(cookie), 'carol');
  t.equal(s.subscriberByCookie(Buffer.from('nope')), undefined);
  const a = s.secret('web-session');
  t.equal(a.length, 32);
  t.same(s.secret('web-session'), a, 'secret stable');
  t.notOk(s.hasCredential('admin'));
  await s.setCredential('admin', 'hunter2hunter2', 'web');
  t.ok(await s.verifyCredential('admin', 'hunter2hunter2'));
  t.notOk(await s.verifyCredential('admin', 'hunter3'));
});

t.test('N-server limits, proxies, M-server cache', async (t) => {
  let now = 1_000_000;
  const s = await Store.open({ dir: path.join(tmp, 'c'), now: () => now });
  t.teardown(() => s.close());
  s.setNServerLimit({ prefix: '198.51.100.0/24', maxSessions: 10 }, 'cli');
  s.setNServerLimit({ prefix: '198.51.100.7', maxSessions: 2 }, 'cli');
  t.equal(s.nserverLimit('198.51.100.7'), 2, 'longest prefix wins');
  t.equal(s.nserverLimit('198.51.100.8'), 10);
  t.equal(s.nserverLimit('203.0.113.1'), 1024, 'default');
  s.setProxy({ address: '192.0.2.1', port: 5124, protocol: 'convert', priority: 10 }, 'cli');
  t.equal(codeOf(() => s.setProxy({ address: '192.0.2.0/24', port: 5124, protocol: 'convert' }, 'cli')), 'DC_STORE_INVALID');
  t.same(s.listProxies(), [{ address: '192.0.2.1', port: 5124, protocol: 'convert', priority: 10, weight: 1, enabled: true, name: 'px-192.0.2.1-5124', location: '', type: 'off-path', socks5: null, apps: [], policies: [], auth: null }]);
  s.rememberMServer('203.0.113.5', 443, 1000);
  t.ok(s.isMServer('203.0.113.5', 443));
  now += 1001;
  t.notOk(s.isMServer('203.0.113.5', 443), 'expired');
  t.equal(s.purgeMServers(), 1);
  t.equal(codeOf(() => s.rememberMServer('host.example', 443, 1)), 'DC_STORE_INVALID');
});

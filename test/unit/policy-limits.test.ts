import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store } from '../../src/store/index.js';
import { SessionLimits, canonicalHost, subflowPolicy } from '../../src/services/policy/limits.js';
import { DuocellError } from '../../src/core/errors.js';
import type { FrontInfo, FrontRequest } from '../../src/services/proxy/types.js';
import { convertErrorFor } from '../../src/services/proxy/fronts/convert.js';
import { ConvertErrorCode } from '../../src/protocols/convert/index.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-limits-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

const info = (address: string): FrontInfo => ({ listener: {} as FrontInfo['listener'], local: { address: '10.10.0.1', port: 9000 }, remote: { address, port: 40000 }, clientMptcp: true });
const req = (host: string, subscriber?: string): FrontRequest => ({ target: { host, port: 80 }, ...(subscriber === undefined ? {} : { subscriber }) });

const refusedCode = (f: () => unknown): string | undefined => {
  try {
    f();
    return undefined;
  } catch (e) {
    return e instanceof DuocellError ? e.code : 'not a DuocellError';
  }
};

t.test('M-sessions per UE: the third of a subscriber limited to 2 is refused, a release frees a place', async (t) => {
  const s = await Store.open({ dir: path.join(tmp, 'a') });
  t.teardown(() => s.close());
  s.setPolicy({ name: 'two', maxSessionsPerUe: 2, maxSubflowsPerSession: 1, ratio: { cellular: 30, wlan: 70 }, steeringMode: 'ratio' }, 'cli');
  s.addSubscriber({ name: 'alice', policy: 'two', addresses: ['10.11.0.2', '10.12.0.2'] }, 'cli');
  const lim = new SessionLimits(s);
  const a1 = lim.admit(info('10.11.0.2'), req('10.31.0.2'));
  t.same(a1.grant, { subscriber: 'alice', policy: 'two', maxSessionsPerUe: 2, maxSessionsPerNServer: 1024, maxSubflowsPerSession: 1, steeringMode: 'ratio', ratio: { cellular: 30, wlan: 70 } }, 'grant: the limits and ratio in force');
  const a2 = lim.admit(info('::ffff:10.12.0.2'), req('10.31.0.3'));
  t.equal(refusedCode(() => lim.admit(info('10.11.0.2'), req('10.31.0.4'))), 'DC_POLICY_LIMIT', 'third refused, from either of her addresses');
  t.same(lim.counts().perUe, { alice: 2 });
  t.same(lim.counts().refused, { perUe: 1, perNServer: 0 });
  // someone else is not affected
  const b = lim.admit(info('192.0.2.7'), req('10.31.0.2'));
  t.equal(b.grant?.subscriber, null, 'an unknown UE gets the default policy');
  a1.release?.();
  a1.release?.(); // twice: counted once
  t.same(lim.counts().perUe, { alice: 1, 'addr:192.0.2.7': 1 });
  const a3 = lim.admit(info('10.11.0.2'), req('10.31.0.2'));
  t.ok(a3.grant, 'admitted again after one ended');
  for (const x of [a2, a3, b]) x.release?.();
  t.same(lim.counts().perUe, {}, 'nothing left counted');
  t.same(lim.counts().perNServer, {});
});

t.test('an authenticated client (cookie, SOCKS user) gets its subscriber\'s policy wherever it connects from', async (t) => {
  const s = await Store.open({ dir: path.join(tmp, 'd') });
  t.teardown(() => s.close());
  s.setPolicy({ name: 'cells', maxSessionsPerUe: 1 }, 'cli');
  s.addSubscriber({ name: 'cell-7', policy: 'cells' }, 'cli');
  const lim = new SessionLimits(s);
  const a = lim.admit(info('198.51.100.1'), req('10.31.0.2', 'cell-7'));
  t.match(a.grant, { subscriber: 'cell-7', policy: 'cells', maxSessionsPerUe: 1 });
  t.equal(refusedCode(() => lim.admit(info('198.51.100.2'), req('10.31.0.2', 'cell-7'))), 'DC_POLICY_LIMIT', 'from another address too');
  t.equal(lim.admit(info('198.51.100.2'), req('10.31.0.2', 'not-in-store')).grant?.policy, 'default', 'a name the store does not know: by address');
  t.equal(s.resolveSubscriber('nobody'), undefined);
});

t.test('sessions per N-server: a subscriber\'s own limit per server, the operator\'s N-server limit for all together', async (t) => {
  const s = await Store.open({ dir: path.join(tmp, 'b') });
  t.teardown(() => s.close());
  s.setNServerLimit({ prefix: '10.31.0.0/24', maxSessions: 1 }, 'cli');
  s.setPolicy({ name: 'default', maxSessionsPerNServer: 3 }, 'cli');
  const lim = new SessionLimits(s);
  const x = lim.admit(info('10.11.0.2'), req('10.31.0.2'));
  t.equal(x.grant?.maxSessionsPerNServer, 1, 'the grant tells the tighter of the two');
  t.equal(refusedCode(() => lim.admit(info('10.11.0.3'), req('10.31.0.2'))), 'DC_POLICY_LIMIT', 'the N-server limit is box-wide: another UE is refused too');
  const ys = [0, 1, 2].map(() => lim.admit(info('10.11.0.4'), req('192.0.2.80')));
  t.equal(refusedCode(() => lim.admit(info('10.11.0.4'), req('192.0.2.80'))), 'DC_POLICY_LIMIT', 'the policy\'s per-N-server limit, per subscriber');
  const other = lim.admit(info('10.11.0.5'), req('192.0.2.80'));
  t.ok(other.grant, 'another UE has its own count to that server');
  t.equal(refusedCode(() => lim.admit(info('10.11.0.4'), req('::FFFF:192.0.2.80'))), 'DC_POLICY_LIMIT', 'another spelling of the same server is the same server');
  t.same(lim.counts().refused, { perUe: 0, perNServer: 3 });
  for (const y of [x, ...ys, other]) y.release?.();
  t.ok(lim.admit(info('10.11.0.3'), req('10.31.0.2')).grant);
});

t.test('addresses are counted in one canonical form; unknown IPv6 clients by /64', async (t) => {
  t.equal(canonicalHost('::FFFF:10.31.0.2'), '10.31.0.2');
  t.equal(canonicalHost('::ffff:a1f:2'), '10.31.0.2');
  t.equal(canonicalHost('0:0::ffff:10.31.0.2'), '10.31.0.2');
  t.equal(canonicalHost('2001:DB8:0:0::0001'), '2001:db8::1');
  t.equal(canonicalHost('Example.COM'), 'example.com');
  const s = await Store.open({ dir: path.join(tmp, 'e') });
  t.teardown(() => s.close());
  s.setPolicy({ name: 'default', maxSessionsPerUe: 2 }, 'cli');
  const lim = new SessionLimits(s);
  lim.admit(info('2001:db8:1:2::10'), req('10.31.0.2'));
  lim.admit(info('2001:db8:1:2::11'), req('10.31.0.3'));
  t.equal(refusedCode(() => lim.admit(info('2001:db8:1:2:ffff::1'), req('10.31.0.4'))), 'DC_POLICY_LIMIT', 'a host rotating addresses in its /64 is one client');
  t.ok(lim.admit(info('2001:db8:1:3::10'), req('10.31.0.4')).grant, 'another /64 is another client');
});

t.test('explicit fronts answer a limit with their protocol\'s refusal', async (t) => {
  const e = new DuocellError('DC_POLICY_LIMIT', 'limit');
  t.equal(convertErrorFor(e)?.code, ConvertErrorCode.RESOURCE_EXCEEDED, 'Convert: Resource Exceeded');
  const { socksReplyFor } = await import('../../src/services/proxy/fronts/socks5.js');
  const { SocksReply } = await import('../../src/protocols/socks5/index.js');
  t.equal(socksReplyFor(e), SocksReply.NOT_ALLOWED, 'SOCKS: connection not allowed by ruleset');
});

t.test('subflow policy: limit per M-session and allowed networks (origin authentication)', async (t) => {
  const s = await Store.open({ dir: path.join(tmp, 'c') });
  t.teardown(() => s.close());
  s.setPolicy({ name: 'one', maxSubflowsPerSession: 1 }, 'cli');
  s.setPolicy({ name: 'home', allowedNetworks: ['10.11.0.0/24', '10.12.0.0/24', 'fd00:12::/64'] }, 'cli');
  s.addSubscriber({ name: 'single', policy: 'one', addresses: ['10.11.0.9'] }, 'cli');
  s.addSubscriber({ name: 'homebody', policy: 'home', addresses: ['10.11.0.2'] }, 'cli');
  const admit = subflowPolicy(s);
  const est = (n: number): Array<{ state: string }> => [...Array.from({ length: n }, () => ({ state: 'established' })), { state: 'closed' }];
  t.equal(admit({ serverSide: true, daddr: '10.11.0.9', subflows: est(2) }, { daddr: '10.12.0.9' }), 'subflow limit 1', 'a second subflow is refused');
  t.equal(admit({ serverSide: true, daddr: '10.11.0.9', subflows: est(1) }, { daddr: '10.11.0.9' }), true, 'the first alone is fine (closed ones do not count)');
  t.equal(admit({ serverSide: true, daddr: '10.11.0.2', subflows: est(2) }, { daddr: '10.12.0.2' }), true, 'a join from the cell\'s own WLAN prefix');
  t.equal(admit({ serverSide: true, daddr: '10.11.0.2', subflows: est(2) }, { daddr: '::ffff:198.51.100.7' }), 'origin 198.51.100.7 outside allowed networks', 'a join from a third-party network');
  t.equal(admit({ serverSide: true, daddr: '10.11.0.2', subflows: est(2) }, { daddr: 'fd00:12::2' }), true, 'IPv6 allowed prefix');
  t.equal(admit({ serverSide: false, daddr: '10.11.0.9', subflows: est(5) }, { daddr: '203.0.113.1' }), true, 'the box\'s own connections are not judged');
  t.equal(admit({ serverSide: true, daddr: '192.0.2.1', subflows: est(3) }, { daddr: '203.0.113.1' }), true, 'default policy: any network, 8 subflows');
  const byAccess = subflowPolicy({ resolvePolicy: (a) => s.resolvePolicy(a), allowedAccess: (p) => (p === 'home' ? ['cellular'] : undefined) });
  t.equal(byAccess({ serverSide: true, daddr: '10.11.0.2', subflows: est(2) }, { daddr: '10.12.0.2', access: 'wlan' }), 'access wlan not allowed', 'the page\'s allowed access types');
  t.equal(byAccess({ serverSide: true, daddr: '10.11.0.2', subflows: est(2) }, { daddr: '10.11.0.3', access: 'cellular' }), true);
  t.equal(byAccess({ serverSide: true, daddr: '10.11.0.9', subflows: est(1) }, { daddr: '10.12.0.9', access: 'wlan' }), true, 'a policy without the setting: any access');
  // an authenticated client (the engine knows its connection's token) is judged by its subscriber
  const byConn = subflowPolicy({ resolvePolicy: (a) => s.resolvePolicy(a), connectionPolicy: (c) => (c.token === 42 ? s.resolveSubscriber('single') : undefined) });
  t.equal(byConn({ token: 42, serverSide: true, daddr: '198.51.100.1', subflows: est(2) }, { daddr: '198.51.100.2' }), 'subflow limit 1', 'the subscriber\'s limit, not the address\'s default');
  t.equal(byConn({ token: 43, serverSide: true, daddr: '198.51.100.1', subflows: est(2) }, { daddr: '198.51.100.2' }), true, 'unknown token: by address');
});

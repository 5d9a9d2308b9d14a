import t from 'tap';
import { pathManagerMode } from '../../src/wiring/pm.js';
import { planSubflows } from '../../src/services/pm/planner.js';
import type { PmConnectionView } from '../../src/services/pm/index.js';
import type { PathView } from '../../src/services/paths/types.js';

t.test('the path manager mode is read from the namespace\'s sysctl', async (t) => {
  const files = (m: Record<string, string>) => (f: string): string => {
    const v = m[f];
    if (v === undefined) throw new Error('ENOENT');
    return v;
  };
  t.equal(pathManagerMode(files({ '/proc/sys/net/mptcp/path_manager': 'userspace\n' })), 'userspace');
  t.equal(pathManagerMode(files({ '/proc/sys/net/mptcp/path_manager': 'kernel\n' })), 'kernel');
  t.equal(pathManagerMode(files({ '/proc/sys/net/mptcp/pm_type': '1\n' })), 'userspace', 'older kernels: pm_type');
  t.equal(pathManagerMode(files({ '/proc/sys/net/mptcp/pm_type': '0\n' })), 'kernel');
  t.equal(pathManagerMode(files({})), 'kernel', 'no MPTCP sysctl at all: kernel');
});

t.test('userspace PM: the box\'s own connections get one subflow per other uplink address', async (t) => {
  const path = (name: string, access: 'cellular' | 'wlan', addresses: string[]): PathView => ({ name, access, addresses, state: 'up' }) as unknown as PathView;
  const up = [path('cellular', 'cellular', ['10.21.0.2', 'fd00:21::2']), path('wlan', 'wlan', ['10.22.0.2', 'fd00:22::2'])];
  const sess = (o: Partial<PmConnectionView>): PmConnectionView =>
    ({ token: 1, family: 4, saddr: '10.21.0.2', daddr: '10.20.0.1', sport: 40000, dport: 5124, serverSide: false, state: 'established', since: '', subflows: [], announced: {}, announcedPorts: {}, ...o }) as PmConnectionView;
  t.same(planSubflows(sess({}), up).map((w) => [w.address, w.remote]), [['10.22.0.2', undefined]], 'from the other IPv4 uplink address, to the connection\'s remote');
  t.same(
    planSubflows(sess({ announced: { 1: '10.22.0.1', 2: 'fd00:22::1' }, announcedPorts: { 1: 5125 } }), up).map((w) => [w.address, w.remote]),
    [['10.22.0.2', { address: '10.22.0.1', port: 5125 }]],
    'to the address (and port) the peer announced, of the same family',
  );
  t.same(
    planSubflows(sess({ saddr: '10.20.0.9', announced: { 1: '10.21.0.1', 2: '10.22.0.1' }, announcedPorts: { 1: 5125, 2: 5125 } }), up).map((w) => [w.address, w.remote?.address]),
    [['10.21.0.2', '10.21.0.1'], ['10.22.0.2', '10.22.0.1']],
    'each local address joins the announced address on its own access network',
  );
  t.same(planSubflows(sess({ announced: { 1: '10.22.0.1' } }), up)[0]?.remote, { address: '10.22.0.1', port: 5124 }, 'announced without a port: the connection\'s port');
  t.same(planSubflows(sess({ family: 6, saddr: 'fd00:21::2', daddr: 'fd00:20::1' }), up).map((w) => w.address), ['fd00:22::2'], 'IPv6 connection: IPv6 addresses');
  t.same(planSubflows(sess({ serverSide: true }), up), [], 'connections the box accepted: the peer makes its subflows');
});

t.test('common prefix bits', async (t) => {
  const { commonPrefixBits } = await import('../../src/core/net.js');
  t.equal(commonPrefixBits('10.21.0.2', '10.21.0.1'), 30);
  t.equal(commonPrefixBits('10.21.0.2', '10.21.0.2'), 32);
  t.equal(commonPrefixBits('::ffff:10.0.0.1', '10.0.0.1'), 32, 'IPv4-mapped');
  t.equal(commonPrefixBits('fd00:21::2', 'fd00:22::1'), 30);
  t.equal(commonPrefixBits('10.0.0.1', 'fd00::1'), -1);
  t.equal(commonPrefixBits('nonsense', '10.0.0.1'), -1);
});

t.test('steering policy: UE policy for accepted connections, the proxied client\'s for the box\'s own; only chosen modes; the page\'s preferred access', async (t) => {
  const { steeringPolicy } = await import('../../src/services/policy/connection.js');
  const { cached } = await import('../../src/services/policy/cache.js');
  const policies: Record<string, { steeringMode?: 'ratio' | 'active-standby' }> = { default: {}, steer: { steeringMode: 'active-standby' } };
  const eff = (policy: string, subscriber: string | null) =>
    ({ subscriber, matched: null, policy, maxSessionsPerUe: 9, maxSubflowsPerSession: 8, maxSessionsPerNServer: 9, allowedNetworks: [], steeringMode: policies[policy]?.steeringMode ?? 'ratio', ratio: { cellular: 50, wlan: 50 }, interceptPorts: [] });
  const src = {
    resolvePolicy: (a: string) => (a === '10.11.0.2' ? eff('steer', 'alice') : eff('default', null)),
    nserverCap: () => undefined,
    getPolicy: (n: string) => (policies[n] === undefined ? undefined : { name: n, ...policies[n] }),
    onChange: () => () => undefined,
    resolveSubscriber: (name: string) => (name === 'cell-7' ? eff('steer', 'cell-7') : undefined),
    connectionOf: (tok: number) => (tok === 7 ? { side: 'server' as const, client: '10.11.0.2' } : tok === 9 ? { side: 'client' as const, subscriber: 'cell-7', client: '198.51.100.7' } : undefined),
    preferredOf: (p: string) => (p === 'steer' ? ('cellular' as const) : undefined),
  };
  const f = steeringPolicy(src, 'wlan');
  const sess = (o: Partial<PmConnectionView>): PmConnectionView => ({ token: 1, serverSide: true, daddr: '10.11.0.2', ...o }) as PmConnectionView;
  t.same(f(sess({})), { mode: 'active-standby', ratio: { cellular: 50, wlan: 50 }, preferred: 'cellular', group: 'alice' }, 'a UE\'s own connection: its policy, grouped by subscriber');
  t.equal(f(sess({ daddr: '192.0.2.9' })), undefined, 'a policy that chose no mode is not steered');
  t.same(f(sess({ serverSide: false, token: 7 })), { mode: 'active-standby', ratio: { cellular: 50, wlan: 50 }, preferred: 'cellular', group: 'alice' }, 'the box\'s own connection: the proxied client\'s policy, looked up now');
  t.same(f(sess({ token: 9, daddr: '198.51.100.7' })), { mode: 'active-standby', ratio: { cellular: 50, wlan: 50 }, preferred: 'cellular', group: 'cell-7' }, 'an authenticated client: its subscriber\'s policy, not its address\'s');
  t.equal(f(sess({ serverSide: false, token: 8 })), undefined, 'an own connection no session claims');
  let n = 0;
  let now = 0;
  const c = cached(() => ++n, 1000, () => now);
  c.get('a');
  c.get('a');
  t.equal(n, 1, 'cached');
  now = 1500;
  c.get('a');
  t.equal(n, 2, 'read again after the TTL');
  c.clear();
  c.get('a');
  t.equal(n, 3, 'and after clear()');
});

t.test('the board profile\'s policy block becomes the store\'s defaults', async (t) => {
  const { boardPolicyDefaults } = await import('../../src/wiring/policy.js');
  t.same(boardPolicyDefaults({ preset: 'cell', policy: { pathRatio: { cellular: 1, wlan: 3 }, maxSubflows: 4 } }), { maxSubflowsPerSession: 4, ratio: { cellular: 25, wlan: 75 } });
  t.same(boardPolicyDefaults({ preset: 'cell', policy: { pathRatio: { cellular: 0, wlan: 0 } } }), {}, 'no weights: nothing');
  t.same(boardPolicyDefaults({ preset: 'concentrator' }), { maxSessionsPerUe: 65_536 }, 'a concentrator counts a whole cell as one client');
});

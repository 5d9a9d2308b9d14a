// Address comparisons by value in the services that meet the kernel's spelling of IPv4-mapped
// addresses: a dual-stack socket's IPv4 peer is reported `::ffff:a47:1` by the mptcp_pm and
// sock_diag codecs, `::ffff:10.71.0.1` by node:net, `10.71.0.1` by rtnetlink and the proxy.
import { EventEmitter } from 'node:events';
import t from 'tap';
import { PmService, type PathsLike } from '../../src/services/pm/index.js';
import { planSubflows } from '../../src/services/pm/planner.js';
import { subflowRtts } from '../../src/services/pm/totals.js';
import { subflowPolicy } from '../../src/services/policy/limits.js';
import { accessLabeler } from '../../src/services/proxy/index.js';
import { buildUdpRuleset } from '../../src/services/udp/ruleset.js';
import { RoutingKeeper } from '../../src/drivers/netlink/uplink-routing.js';
import type { Rtnl } from '../../src/drivers/netlink/rtnetlink.js';
import { isLoopback } from '../../src/wiring/first-boot.js';
import { FakePm, pmEvent } from '../helpers/pm-fakes.js';
import type { PathView } from '../../src/services/paths/types.js';
import type { EffectivePolicy } from '../../src/store/types.js';



const path = (name: string, access: 'cellular' | 'wlan', addresses: string[]): PathView => ({ name, access, addresses, state: 'up' }) as unknown as PathView;

t.test('pm service: subflows of a mapped socket get their path, their counters and their accounting', async (t) => {
  const pm = new FakePm();
  const up = [path('cell', 'cellular', ['10.71.0.1']), path('wifi', 'wlan', ['10.71.1.1'])];
  // the real PathsService.byAddress compares by value; this one stands for it
  const { sameAddress } = await import('../../src/core/net.js');
  const paths: PathsLike = { list: () => up, byAddress: (a) => up.find((p) => p.addresses.some((x) => sameAddress(x, a))), on: () => undefined, off: () => undefined };
  const counters = [{ token: 9, saddr: '10.71.0.1', sport: 5000, daddr: '10.9.9.9', dport: 443, bytesSent: 1000, bytesReceived: 2000, rttMs: 20 }];
  const svc = new PmService({ pm, paths, manageEndpoints: false, counters: async () => counters as never });
  await svc.start();
  pm.emit('event', pmEvent(2, { token: 9, saddr: '::ffff:10.71.0.1', daddr: '::ffff:10.9.9.9', sport: 5000, dport: 443 }));
  const first = svc.session(9)?.subflows[0];
  t.equal(first?.saddr, '::ffff:a47:1', 'the kernel\'s spelling is kept in the view');
  t.equal(first?.access, 'cellular', 'labelled from the path whose address it is, by value');
  t.equal(await svc.refreshCounters(), 1, 'sock_diag\'s counters (IPv4 spelling) merged into the mapped subflow');
  t.same(svc.accessTotals(), { cellular: { subflows: 1, bytesSent: 1000, bytesReceived: 2000, rttMs: 20 } });
  t.same(svc.subflowRtts(['10.71.0.1']), [20], 'per-path RTT by the path\'s own address');
  t.same(subflowRtts(svc.session(9)!.subflows, ['::FFFF:A47:1']), [20]);
  t.same(svc.stats().subflowsOpened, { cellular: 1 });
  svc.stop();
});

t.test('planner: a mapped connection is IPv4; its own address is not joined again', async (t) => {
  const up = [path('cell', 'cellular', ['10.71.0.1', '2001:db8::1']), path('wifi', 'wlan', ['10.71.1.1'])];
  const sess = { serverSide: false, saddr: '::ffff:a47:1', daddr: '::ffff:a09:909', dport: 443, announced: { 1: '::ffff:10.9.1.9', 2: 'fd00::9' }, announcedPorts: {} } as never;
  const plan = planSubflows(sess, up);
  t.same(plan.map((p) => [p.address, p.remote?.address]), [['10.71.1.1', '::ffff:10.9.1.9']], 'only the other IPv4 uplink address, to the announced IPv4 (mapped) address');
});

t.test('origin authentication and access labels by value', async (t) => {
  const pol = { policy: 'p', allowedNetworks: ['10.71.0.0/24', '10.71.1.0/24'], maxSubflowsPerSession: 4 } as unknown as EffectivePolicy;
  const check = subflowPolicy({ resolvePolicy: () => pol });
  const sess = { serverSide: true, daddr: '::ffff:a47:2', subflows: [{ state: 'established' }] };
  for (const d of ['::ffff:a47:102', '0:0:0:0:0:ffff:a47:102', '::FFFF:10.71.1.2']) t.equal(check(sess, { daddr: d, access: 'wlan' }), true, `allowed: ${d}`);
  t.equal(check(sess, { daddr: '::ffff:a48:102', access: 'wlan' }), 'origin 10.72.1.2 outside allowed networks', 'refused, named by its IPv4 address');
  const label = accessLabeler({ accessNetworks: [{ prefix: '10.71.0.0/24', access: 'cellular' }, { prefix: '10.71.1.0/24', access: 'wlan' }], uplinks: [] } as never);
  t.same(['::ffff:a47:2', '::ffff:a47:102', '10.71.1.9', '::ffff:a48:1'].map(label), ['cellular', 'wlan', 'wlan', 'unknown']);
});

t.test('UDP steering: an IPv4-mapped group prefix becomes the IPv4 prefix the ruleset sees', async (t) => {
  const text = buildUdpRuleset({
    table: 'duocell_udp', lanInterfaces: ['lan0'], mask: 0xf00, uplinks: [{ name: 'cellular', interface: 'wwan0', mark: 0x100 }],
    groups: [{ prefixes: ['::ffff:192.168.77.0/120', '::FFFF:C0A8:4E09'], decision: { kind: 'uplink', uplink: 'cellular' } }], fallback: { kind: 'none' },
  });
  t.match(text, /ip saddr 192\.168\.77\.0\/24/);
  t.match(text, /ip saddr 192\.168\.78\.9\/32/);
  t.notMatch(text, /ip6 saddr ::ffff/i, 'no IPv6 rule that IPv4 packets would never meet');
});

t.test('uplink routing: a gateway spelled otherwise than the kernel writes it is not re-installed', async (t) => {
  const added: string[] = [];
  const fake = Object.assign(new EventEmitter(), {
    link: async () => ({ index: 3, name: 'wlan0', up: true }),
    rules: async () => [{ family: 6, table: 22, src: '2001:db8::15/128', priority: 1022 }],
    routes: async () => [{ dst: '::/0', table: 22, gateway: '2001:db8::1', oif: 3 }, { dst: '2001:db8::/64', table: 22, oif: 3 }],
    addRule: async (r: { src: string }) => void added.push(`rule ${r.src}`),
    deleteRule: async () => undefined,
    addRoute: async (r: { dst: string }) => void added.push(`route ${r.dst}`),
    deleteRoute: async () => undefined,
  });
  const keeper = new RoutingKeeper(fake as unknown as Rtnl);
  const c = await keeper.set({ name: 'wifi', ifindex: 3, table: 22, addresses: ['2001:DB8::15'], prefixes: ['2001:DB8:0::15/64'], gateway6: '2001:DB8:0:0::1' });
  t.same(added, [], 'the kernel already has it all');
  t.equal(c.added.routes.length + c.added.rules.length, 0);
  keeper.close();
});

t.test('first boot: loopback by value', async (t) => {
  for (const h of ['::ffff:7f00:1', '0:0:0:0:0:0:0:1', '::FFFF:127.0.0.1']) t.ok(isLoopback(h), h);
  for (const h of ['::ffff:a00:1', '::7f00:1', 'x127.0.0.1']) t.notOk(isLoopback(h), h);
});


t.test('steering groups: an unnamed UE is one group whatever the spelling of its address', async (t) => {
  const { steeringPolicy } = await import('../../src/services/policy/connection.js');
  const eff = { subscriber: null, matched: null, policy: 'steer', maxSessionsPerUe: 9, maxSubflowsPerSession: 8, maxSessionsPerNServer: 9, allowedNetworks: [], steeringMode: 'ratio', ratio: { cellular: 30, wlan: 70 }, interceptPorts: [] };
  const f = steeringPolicy({
    resolvePolicy: () => eff as never, nserverCap: () => undefined, getPolicy: (n: string) => ({ name: n, steeringMode: 'ratio' }) as never, onChange: () => () => undefined,
    connectionOf: (tok: number) => (tok === 2 ? { side: 'server' as const, client: '10.71.0.2' } : undefined),
  }, 'wlan');
  const groups = [
    f({ token: 1, serverSide: true, daddr: '::ffff:a47:2' } as never)?.group, // accepted on `::`
    f({ token: 3, serverSide: true, daddr: '10.71.0.2' } as never)?.group, // accepted on 0.0.0.0
    f({ token: 2, serverSide: false, daddr: '192.0.2.1' } as never)?.group, // the box's own, for that client
  ];
  t.same(groups, ['10.71.0.2', '10.71.0.2', '10.71.0.2']);
});

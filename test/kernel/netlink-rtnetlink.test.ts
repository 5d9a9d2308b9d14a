// Needs root and network namespaces (runs in CI as root).
// rtnetlink client against the real kernel: links, addresses, routes, rules, the link event
// stream, and per-uplink routing restored after the kernel deletes it (link down/up).
import t from 'tap';
import { Topology, netnsUnavailable } from '../helpers/hosts.js';
import { Agent, type AgentError } from './netlink-agent.js';

const why = await netnsUnavailable();

async function until(f: () => Promise<boolean>, ms = 8000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await f()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

t.test('rtnetlink client in a namespace (needs root)', { skip: why === false ? false : why, timeout: 120_000 }, async (t) => {
  const topo = new Topology(`tnlrt${process.pid % 100000}`);
  t.teardown(() => topo.destroy());
  const r = await topo.host('r');
  const p = await topo.host('p');
  await topo.link(r, 'u0', p, 'g0', { a: ['10.72.1.1/24', 'fd72:1::1/64'], b: ['10.72.1.2/24', 'fd72:1::2/64'] });
  const A = new Agent(r);
  t.teardown(() => A.close());
  await A.call('rtnl.open');
  const links = await A.call<Array<Record<string, unknown>>>('rtnl.links');
  const u0 = links.find((l) => l.name === 'u0')!;
  t.match(u0, { up: true, adminUp: true, operState: 'up', mtu: 1500, mac: /^[0-9a-f:]{17}$/ });
  t.match(links.find((l) => l.name === 'lo'), { index: 1 });
  const ifindex = u0.index as number;
  t.match(await A.call('rtnl.counters', 'u0'), { rxBytes: Number, txBytes: Number }, 'interface byte counters (IFLA_STATS64)');

  await t.test('link state changes arrive as events; setLinkUp drives them', async (t) => {
    await A.call('rtnl.setLinkUp', ifindex, false);
    await A.waitEvent((e) => e.event === 'link' && e.data.name === 'u0' && e.data.up === false);
    t.match(await A.call('rtnl.link', 'u0'), { adminUp: false, up: false });
    await A.call('rtnl.setLinkUp', ifindex, true);
    await A.waitEvent((e) => e.event === 'link' && e.data.name === 'u0' && e.data.up === true);
    t.equal(await A.call('rtnl.link', 'nosuch0'), null, 'unknown link: undefined');
  });

  await t.test('WLAN driver on a non-wireless link degrades to rtnetlink link state', async (t) => {
    t.match(await A.call('wlan.start', 'u0'), { present: true, up: true, quality: 'unknown', ifindex });
    await r.linkSet('u0', 'down');
    await A.waitEvent((e) => e.event === 'wlan' && e.data.up === false);
    A.events.length = 0;
    await r.linkSet('u0', 'up');
    await A.waitEvent((e) => e.event === 'wlan' && e.data.up === true);
    t.pass('link down and up followed');
  });

  await t.test('addresses, routes and rules: add, dump, delete', async (t) => {
    await A.call('rtnl.addAddress', ifindex, '10.72.9.1', 32);
    await A.call('rtnl.addAddress', ifindex, 'fd72:9::1', 128);
    const addrs = await A.call<Array<Record<string, unknown>>>('rtnl.addresses');
    t.match(addrs.find((a) => a.address === '10.72.9.1'), { family: 4, prefixLen: 32, index: ifindex, label: 'u0' });
    t.match(addrs.find((a) => a.address === 'fd72:9::1'), { family: 6, prefixLen: 128 });
    t.ok(addrs.some((a) => a.address === '10.72.1.1' && a.prefixLen === 24));
    const dup = await A.call('rtnl.addAddress', ifindex, '10.72.9.1', 32).catch((x: AgentError) => x);
    t.match(dup, { code: 'DC_NETLINK_ERRNO', errno: 17, origin: 'kernel' }, 'EEXIST');
    await A.call('rtnl.deleteAddress', ifindex, '10.72.9.1', 32);
    t.notOk((await A.call<Array<Record<string, unknown>>>('rtnl.addresses', 4)).some((a) => a.address === '10.72.9.1'));

    await A.call('rtnl.addRoute', { dst: '198.51.100.0/24', table: 100, oif: ifindex, gateway: '10.72.1.2' });
    await A.call('rtnl.addRoute', { dst: '::/0', table: 100, oif: ifindex, gateway: 'fd72:1::2' });
    t.match(await r.ip('route', 'show', 'table', '100'), /198\.51\.100\.0\/24 via 10\.72\.1\.2 dev u0 proto 220/);
    t.match(await r.ip('-6', 'route', 'show', 'table', '100'), /default via fd72:1::2 dev u0 proto 220/);
    const routes = await A.call<Array<Record<string, unknown>>>('rtnl.routes', { table: 100 });
    t.match(routes.find((x) => x.dst === '198.51.100.0/24'), { gateway: '10.72.1.2', oif: ifindex, protocol: 220, table: 100 });
    t.ok(routes.some((x) => x.dst === '::/0' && x.gateway === 'fd72:1::2'));
    const main = await A.call<Array<Record<string, unknown>>>('rtnl.routes', { family: 4, table: 254 });
    t.ok(main.some((x) => x.dst === '10.72.1.0/24' && x.protocol === 2), 'kernel prefix route in main');
    await A.call('rtnl.deleteRoute', { dst: '198.51.100.0/24', table: 100, oif: ifindex, gateway: '10.72.1.2' });
    t.notMatch(await r.ip('route', 'show', 'table', '100'), /198\.51\.100/);
    const gone = await A.call('rtnl.deleteRoute', { dst: '198.51.100.0/24', table: 100 }).catch((x: AgentError) => x);
    t.match(gone, { code: 'DC_NETLINK_ERRNO', errno: 3 }, 'ESRCH for a missing route');

    await A.call('rtnl.addRule', { src: '10.72.1.1/32', table: 100, priority: 1100 });
    t.match(await r.ip('rule', 'show'), /1100:\s+from 10\.72\.1\.1 lookup 100 proto 220/);
    const rules = await A.call<Array<Record<string, unknown>>>('rtnl.rules', 4);
    t.match(rules.find((x) => x.priority === 1100), { src: '10.72.1.1/32', table: 100, action: 1, protocol: 220 });
    await A.call('rtnl.deleteRule', { src: '10.72.1.1/32', table: 100, priority: 1100 });
    t.notMatch(await r.ip('rule', 'show'), /1100:/);
  });

  await t.test('uplink routing is installed, and restored after link down/up and deletions', async (t) => {
    const change = await A.call<Record<string, { routes: unknown[]; rules: unknown[] }>>('keeper.set', {
      name: 'wlan', ifindex, table: 101, addresses: ['10.72.1.1', 'fd72:1::1'], prefixes: ['10.72.1.0/24', 'fd72:1::/64'], gateway4: '10.72.1.2', gateway6: 'fd72:1::2',
    });
    t.equal(change.added!.routes.length, 4);
    t.equal(change.added!.rules.length, 2);
    const table = async (): Promise<string> => (await r.ip('route', 'show', 'table', '101')) + (await r.ip('-6', 'route', 'show', 'table', '101'));
    t.match(await table(), /default via 10\.72\.1\.2 dev u0/);
    t.match(await table(), /10\.72\.1\.0\/24 dev u0/);
    t.match(await table(), /default via fd72:1::2 dev u0/);
    t.match(await r.ip('rule', 'show'), /from 10\.72\.1\.1 lookup 101/);
    t.match(await r.ip('-6', 'rule', 'show'), /from fd72:1::1 lookup 101/);

    await r.linkSet('u0', 'down');
    t.ok(await until(async () => !/default via 10\.72\.1\.2/.test(await table())), 'the kernel removed the IPv4 routes on link down');
    await r.linkSet('u0', 'up');
    t.ok(await until(async () => /default via 10\.72\.1\.2/.test(await table()) && /10\.72\.1\.0\/24/.test(await table()) && /default via fd72:1::2/.test(await table())), 'restored after link up');

    await r.ip('route', 'del', 'default', 'table', '101');
    t.ok(await until(async () => /default via 10\.72\.1\.2/.test(await table())), 'a deleted default route comes back');
    await r.ip('rule', 'del', 'from', '10.72.1.1', 'lookup', '101');
    t.ok(await until(async () => /from 10\.72\.1\.1 lookup 101/.test(await r.ip('rule', 'show'))), 'a deleted rule comes back');
    t.ok((await A.call<{ restores: number }>('keeper.stats')).restores >= 4);

    // the address changes: the stale rule goes, the new one comes
    await A.call('keeper.set', { name: 'wlan', ifindex, table: 101, addresses: ['10.72.1.1'], prefixes: ['10.72.1.0/24'], gateway4: '10.72.1.2' });
    t.notMatch(await r.ip('-6', 'rule', 'show'), /lookup 101/, 'stale IPv6 rule removed');
    await A.call('keeper.delete', 'wlan');
    t.notMatch(await r.ip('rule', 'show'), /lookup 101/);
    t.equal((await r.ip('route', 'show', 'table', '101')).trim(), '');
  });
});

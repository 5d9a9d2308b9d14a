// Needs root, network namespaces and the kernel's MPTCP (runs in CI as root).
// The mptcp_pm client against the real kernel: limits, endpoints, and a userspace-PM subflow
// create/destroy on a live connection between two namespaces joined by two veth paths.
import t from 'tap';
import { Topology, netnsUnavailable } from '../helpers/hosts.js';
import { Agent, type AgentError } from './netlink-agent.js';

const why = await netnsUnavailable();

t.test('mptcp_pm client in namespaces (needs root + MPTCP kernel)', { skip: why === false ? false : why, timeout: 120_000 }, async (t) => {
  const topo = new Topology(`tnlpm${process.pid % 100000}`);
  t.teardown(() => topo.destroy());
  const a = await topo.host('a');
  const b = await topo.host('b');
  await topo.link(a, 'c1', b, 's1', { a: ['10.71.1.1/24'], b: ['10.71.1.2/24'] });
  await topo.link(a, 'c2', b, 's2', { a: ['10.71.2.1/24'], b: ['10.71.2.2/24'] });
  const ifC2 = Number(JSON.parse(await a.ip('-j', 'link', 'show', 'c2'))[0].ifindex);
  const A = new Agent(a);
  const B = new Agent(b);
  t.teardown(() => {
    A.close();
    B.close();
  });
  t.match(await A.call('pm.open'), { name: 'mptcp_pm', groups: { mptcp_pm_events: Number } });
  await B.call('pm.open');

  await t.test('limits: set then get round-trips', async (t) => {
    await A.call('pm.setLimits', { subflows: 3, addAddrAccepted: 2 });
    t.same(await A.call('pm.limits'), { subflows: 3, addAddrAccepted: 2 });
    const ipView = await a.ip('mptcp', 'limits', 'show');
    t.match(ipView, /add_addr_accepted 2/, 'iproute2 sees the same limits');
    t.match(ipView, /subflows 3/);
    const e = await A.call('pm.setLimits', { subflows: 1000 }).catch((x: AgentError) => x);
    t.match(e, { code: 'DC_NETLINK_ERRNO', origin: 'kernel', errno: 22 }, 'out-of-range limit is EINVAL from the kernel');
  });

  await t.test('endpoints: add, dump, get, change flags, delete, flush', async (t) => {
    await A.call('pm.flushEndpoints');
    await A.call('pm.addEndpoint', { address: '10.71.2.1', id: 12, flags: ['subflow'], ifIndex: ifC2 });
    await A.call('pm.addEndpoint', { address: '10.71.1.1', id: 11, flags: ['signal', 'backup'] });
    const eps = await A.call<Array<Record<string, unknown>>>('pm.endpoints');
    t.equal(eps.length, 2);
    t.match(eps.find((e) => e.id === 12), { address: '10.71.2.1', flags: ['subflow'], ifIndex: ifC2 });
    t.match(eps.find((e) => e.id === 11), { address: '10.71.1.1', flags: ['signal', 'backup'] });
    const ipView = await a.ip('mptcp', 'endpoint', 'show');
    t.match(ipView, /10\.71\.2\.1 id 12 subflow dev c2/, 'iproute2 agrees');
    t.match(await A.call('pm.endpoint', 12), { id: 12, address: '10.71.2.1' });
    await A.call('pm.setEndpointFlags', { id: 12, flags: ['backup'] });
    t.match(await A.call('pm.endpoint', 12), { flags: ['subflow', 'backup'] }, 'backup set, subflow kept');
    const dup = await A.call('pm.addEndpoint', { address: '10.71.2.1', id: 12, flags: ['subflow'] }).catch((x: AgentError) => x);
    t.match(dup, { code: 'DC_NETLINK_ERRNO', origin: 'kernel' }, 'a duplicate is refused by the kernel');
    await A.call('pm.deleteEndpoint', 11);
    t.equal((await A.call<unknown[]>('pm.endpoints')).length, 1);
    const missing = await A.call('pm.deleteEndpoint', 99).catch((x: AgentError) => x);
    t.match(missing, { code: 'DC_NETLINK_ERRNO', errno: Number });
    await A.call('pm.flushEndpoints');
    t.same(await A.call('pm.endpoints'), []);
  });

  await t.test('userspace PM: events, subflow create/destroy, announce/remove on a live connection', async (t) => {
    await a.sysctl('net.mptcp.path_manager', 'userspace');
    await B.call('pm.setLimits', { subflows: 4, addAddrAccepted: 4 });
    await A.call('pm.subscribe');
    await B.call('pm.subscribe');
    const port = await B.call<number>('sock.listen', '0.0.0.0', 0);
    const conn = await A.call<{ id: number; localPort: number }>('sock.connect', '10.71.1.2', port, '10.71.1.1');
    const est = await A.waitEvent((e) => e.data.type === 'established' && e.data.dport === port);
    const token = est.data.token as number;
    t.match(est.data, { saddr: '10.71.1.1', daddr: '10.71.1.2', sport: conn.localPort, family: 4 });
    // the userspace PM made no subflow by itself
    t.notOk(A.events.some((e) => e.data.type === 'sub_established'), 'no subflow without duocell asking');

    await A.call('pm.subflowCreate', token, { address: '10.71.2.1', id: 22 }, { address: '10.71.2.2', port });
    const sub = await A.waitEvent((e) => e.data.type === 'sub_established' && e.data.token === token);
    t.match(sub.data, { saddr: '10.71.2.1', daddr: '10.71.2.2', dport: port, locId: 22, backup: false });
    const serverSide = await B.waitEvent((e) => e.data.type === 'sub_established' && e.data.daddr === '10.71.2.1');
    t.ok(serverSide, 'the server saw the join');

    await A.call('pm.setSubflowFlags', token, { address: '10.71.2.1', port: sub.data.sport }, { address: '10.71.2.2', port }, ['backup']);
    const prio = await B.waitEvent((e) => e.data.type === 'sub_priority' && e.data.daddr === '10.71.2.1');
    t.equal(prio.data.backup, true, 'peer sees the subflow become backup (MP_PRIO)');

    await A.call('pm.subflowDestroy', token, { address: '10.71.2.1', port: sub.data.sport }, { address: '10.71.2.2', port });
    const closed = await A.waitEvent((e) => e.data.type === 'sub_closed' && e.data.token === token);
    t.match(closed.data, { saddr: '10.71.2.1', sport: sub.data.sport });

    await A.call('pm.announce', token, { address: '10.71.2.1', id: 23 });
    const ann = await B.waitEvent((e) => e.data.type === 'announced');
    t.match(ann.data, { daddr: '10.71.2.1', remId: 23 });
    await A.call('pm.remove', token, 23);
    const rem = await B.waitEvent((e) => e.data.type === 'removed');
    t.equal(rem.data.remId, 23);

    const bad = await A.call('pm.subflowCreate', 0x12345678, { address: '10.71.2.1', id: 24 }, { address: '10.71.2.2', port }).catch((x: AgentError) => x);
    t.match(bad, { code: 'DC_NETLINK_ERRNO', origin: 'kernel' }, 'an unknown token is refused');

    await A.call('sock.close', conn.id);
    await A.waitEvent((e) => e.data.type === 'closed' && e.data.token === token);
    t.pass('closed event for the connection');
  });
});

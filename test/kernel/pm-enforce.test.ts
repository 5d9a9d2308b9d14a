// Needs root, network namespaces and the kernel's MPTCP (runs in CI as root).
// Userspace path manager on both sides: the client's PmService opens the second subflow
// itself (planSubflows); the server's PmService admits at most one subflow per connection and
// destroys the join the moment the kernel reports it (admitSubflow).
import t from 'tap';
import { Topology, netnsUnavailable } from '../helpers/hosts.js';
import { Agent } from './netlink-agent.js';

const why = await netnsUnavailable();

t.test('userspace PM: duocell opens subflows and enforces a subflow limit (needs root + MPTCP kernel)', { skip: why === false ? false : why, timeout: 120_000 }, async (t) => {
  const topo = new Topology(`tpme${process.pid % 100000}`);
  t.teardown(() => topo.destroy());
  const a = await topo.host('ue');
  const b = await topo.host('srv');
  await topo.link(a, 'p1', b, 'q1', { a: ['10.74.1.1/24'], b: ['10.74.1.2/24'] });
  await topo.link(a, 'p2', b, 'q2', { a: ['10.74.2.1/24'], b: ['10.74.2.2/24'] });
  await a.sysctl('net.mptcp.path_manager', 'userspace');
  await b.sysctl('net.mptcp.path_manager', 'userspace');
  const A = new Agent(a);
  const B = new Agent(b);
  t.teardown(() => {
    A.close();
    B.close();
  });
  // the server answers through its connected routes (no per-uplink tables: a join to its first
  // address arriving on its second link must be answered on that link)
  await B.call('stack.userspace', [{ name: 'q1', access: 'wlan', interface: 'q1' }, { name: 'q2', access: 'cellular', interface: 'q2' }], { maxSubflows: 1, routing: false });
  await A.call('stack.userspace', [{ name: 'p1', access: 'wlan', interface: 'p1', gateway4: '10.74.1.2' }, { name: 'p2', access: 'cellular', interface: 'p2', gateway4: '10.74.2.2' }], { plan: true });
  const port = await B.call<number>('sock.listen', '0.0.0.0', 0);
  await A.call('sock.connect', '10.74.1.2', port, '10.74.1.1');

  // the client's service opened a cellular subflow by itself (the userspace PM makes none);
  // the server refused it: opened then closed within the event round trip
  const joined = await B.waitEvent((e) => e.event === 'subflow' && e.data.type === 'opened' && e.data.daddr === '10.74.2.1');
  t.match(joined.data, { saddr: '10.74.1.2', sport: port, access: 'wlan' }, 'join from the client\'s cellular address, to the server\'s first address');
  const killed = await B.waitEvent((e) => e.event === 'subflow' && e.data.type === 'closed' && e.data.daddr === '10.74.2.1');
  const lived = (killed.data.at as number) - (joined.data.at as number);
  t.comment(`second subflow lived ${lived} ms on the server before duocell destroyed it`);
  t.ok(lived < 1000, 'destroyed within a second');
  const bs = await B.call<{ subflowsRefused: Record<string, number>; lastEnforceMs?: number }>('pmsvc.stats');
  t.same(bs.subflowsRefused, { 'subflow limit 1': 1 });
  t.comment(`pm-reaction (refused subflow event → SUBFLOW_DESTROY acknowledged): ${bs.lastEnforceMs} ms`);
  const as = await A.call<{ subflowsCreated: number }>('pmsvc.stats');
  t.equal(as.subflowsCreated, 1);
  const sessions = await B.call<Array<{ subflows: Array<{ state: string }> }>>('pmsvc.sessions');
  t.equal(sessions[0]!.subflows.filter((f) => f.state === 'established').length, 1, 'the connection still has its first subflow');
});

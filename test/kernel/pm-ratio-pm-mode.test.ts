// Needs root, network namespaces and the kernel's MPTCP (runs in CI as root).
// What steering relies on, per path manager (the kernel here is 6.18):
//  - in-kernel PM: a per-connection SET_FLAGS (with a token) is refused with EINVAL; only the
//    endpoint-wide flag (every connection from that address) can be changed;
//  - userspace PM: the same command is accepted, and the peer (even one on the in-kernel PM)
//    receives MP_PRIO (its sub_priority event says backup) — the lever SteeringController uses.
import t from 'tap';
import { Topology, netnsUnavailable } from '../helpers/hosts.js';
import { Agent, type AgentError } from './netlink-agent.js';

const why = await netnsUnavailable();

t.test('per-connection backup flags: refused by the in-kernel PM, accepted by the userspace PM (needs root + MPTCP kernel)', { skip: why === false ? false : why, timeout: 90_000 }, async (t) => {
  const topo = new Topology(`tpmf${process.pid % 100000}`);
  t.teardown(() => topo.destroy());
  const a = await topo.host('a');
  const b = await topo.host('b');
  await topo.link(a, 'p1', b, 'q1', { a: ['10.75.1.1/24'], b: ['10.75.1.2/24'] });
  await topo.link(a, 'p2', b, 'q2', { a: ['10.75.2.1/24'], b: ['10.75.2.2/24'] });
  await a.sourceRoute('10.75.2.1', 'p2', '10.75.2.2', 12);
  await a.mptcpLimits(8, 8);
  await b.mptcpLimits(8, 8);
  await a.mptcpEndpoint('10.75.2.1', 'p2', ['subflow']);
  const A = new Agent(a);
  const B = new Agent(b);
  t.teardown(() => {
    A.close();
    B.close();
  });
  for (const X of [A, B]) {
    await X.call('pm.open');
    await X.call('pm.subscribe');
  }
  const port = await B.call<number>('sock.listen', '0.0.0.0', 0);

  // 1. in-kernel PM: the kernel adds the second subflow itself; per-connection flags refused
  await A.call('sock.connect', '10.75.1.2', port, '10.75.1.1');
  const j1 = await A.waitEvent((e) => e.event === 'mptcp' && e.data.type === 'sub_established' && e.data.saddr === '10.75.2.1');
  const token1 = j1.data.token as number;
  const err = await A.call('pm.setSubflowFlags', token1, { address: '10.75.2.1', port: j1.data.sport }, { address: j1.data.daddr, port: j1.data.dport }, ['backup'])
    .then(() => undefined, (e: AgentError) => e);
  t.equal(err?.errno, 22, 'in-kernel PM: SET_FLAGS with a token → EINVAL');
  // the endpoint-wide flag is the only lever there (all connections at once)
  await A.call('pm.setEndpointFlags', { address: '10.75.2.1', flags: ['backup'] });
  const pr1 = await B.waitEvent((e) => e.event === 'mptcp' && e.data.type === 'sub_priority' && e.data.daddr === '10.75.2.1');
  t.equal(pr1.data.backup, true, 'endpoint-wide backup reaches the peer as MP_PRIO');
  await A.call('pm.flushEndpoints');

  // 2. userspace PM (chosen per namespace, for connections made from now on)
  await a.sysctl('net.mptcp.path_manager', 'userspace');
  A.events.length = 0;
  B.events.length = 0;
  await A.call('sock.connect', '10.75.1.2', port, '10.75.1.1');
  const c2 = await A.waitEvent((e) => e.event === 'mptcp' && e.data.type === 'established');
  const token2 = c2.data.token as number;
  await A.call('pm.subflowCreate', token2, { address: '10.75.2.1', id: 2 }, { address: '10.75.1.2', port });
  const j2 = await A.waitEvent((e) => e.event === 'mptcp' && e.data.type === 'sub_established' && e.data.token === token2 && e.data.saddr === '10.75.2.1');
  await A.call('pm.setSubflowFlags', token2, { address: '10.75.2.1', port: j2.data.sport }, { address: j2.data.daddr, port: j2.data.dport }, ['backup']);
  t.pass('userspace PM: SET_FLAGS with a token accepted');
  const pr2 = await B.waitEvent((e) => e.event === 'mptcp' && e.data.type === 'sub_priority' && e.data.daddr === '10.75.2.1' && e.data.dport === j2.data.sport);
  t.equal(pr2.data.backup, true, 'the peer (in-kernel PM) receives MP_PRIO backup');
  await A.call('pm.setSubflowFlags', token2, { address: '10.75.2.1', port: j2.data.sport }, { address: j2.data.daddr, port: j2.data.dport }, []);
  await B.waitEvent((e) => e.event === 'mptcp' && e.data.type === 'sub_priority' && e.data.dport === j2.data.sport && e.data.backup !== true);
  t.pass('and the flag clears again');
  // a subflow that does not exist: EINVAL as well (why the controller does not give up at once)
  const gone = await A.call('pm.setSubflowFlags', token2, { address: '10.75.2.1', port: 1 }, { address: '10.75.1.2', port }, ['backup']).then(() => undefined, (e: AgentError) => e);
  t.equal(gone?.errno, 22, 'userspace PM: no such subflow → EINVAL too');
});

import { EventEmitter } from 'node:events';
import { PmService, SteeringController, type PathsLike, type PmBackend } from '../src/services/pm/index.js';
import type { MptcpEvent } from '../src/protocols/mptcp-pm/index.js';
import type { PathView } from '../src/services/paths/index.js';

/**
 * The path manager's own CPU per M-session, without the kernel (not a bench group: a probe for
 * docs/relay.md). The cell's PmService and SteeringController wired as src/wiring/pm.ts wires
 * them (userspace PM, a steering policy on every connection, a subflow policy that admits),
 * fed synthetic mptcp_pm events of M-UE sessions to the cell: created, established,
 * sub_established (a join over the other radio), sub_closed, closed, with CONCURRENT sessions
 * open at a time; the fake backend answers SET_FLAGS at once. Prints µs of main-thread CPU per
 * session (the events' handling, the steering's reconcile per subflow event and the promise
 * jobs it makes), median of ROUNDS.
 *
 *   node dist/bench/pm-events-cost.js [SESSIONS=20000] [CONCURRENT=64,1000] [ROUNDS=5]
 */
const [total = 20000, concList = '64,1000', rounds = 5] = [Number(process.argv[2] ?? 20000), process.argv[3] ?? '64,1000', Number(process.argv[4] ?? 5)];

const paths: PathView[] = [
  { name: 'cell', access: 'cellular', interface: 'ran0', ifindex: 5, state: 'up', since: '', addresses: ['10.71.0.1'], table: 21, routing: 'installed', signal: { quality: 'unknown' } },
  { name: 'wifi', access: 'wlan', interface: 'wap0', ifindex: 6, state: 'up', since: '', addresses: ['10.72.0.1'], table: 22, routing: 'installed', signal: { quality: 'unknown' } },
] as PathView[];

class Paths extends EventEmitter implements PathsLike {
  list(): PathView[] {
    return paths;
  }
  byAddress(a: string): PathView | undefined {
    return paths.find((p) => p.addresses.includes(a));
  }
}

class Pm extends EventEmitter implements PmBackend {
  flags = 0;
  async limits() {
    return { subflows: 8, addAddrAccepted: 8 };
  }
  async setLimits() {}
  async endpoints() {
    return [];
  }
  async addEndpoint() {}
  async deleteEndpoint() {}
  async setEndpointFlags() {}
  subscribe() {}
  async setSubflowFlags() {
    this.flags++;
  }
}

async function round(concurrent: number): Promise<number> {
  const pm = new Pm();
  const svc = new PmService({
    pm,
    paths: new Paths(),
    manageEndpoints: false,
    label: ({ daddr, serverSide }) => (serverSide ? { access: daddr.startsWith('10.71.') ? 'cellular' : 'wlan' } : undefined),
    admitSubflow: () => true,
  });
  await svc.start();
  const steer = new SteeringController({
    sessions: svc,
    backend: { setSubflowFlags: () => pm.setSubflowFlags() },
    policy: () => ({ mode: 'active-standby', ratio: { cellular: 0, wlan: 100 }, preferred: 'wlan' }),
    intervalMs: 3_600_000, // ticks off: the events' cost alone
  });
  steer.start();
  const ev = (e: MptcpEvent): void => void pm.emit('event', e);
  const open = (i: number): void => {
    const token = 1000 + i;
    const port = 10000 + (i % 50000);
    const c = { token, family: 4 as const, saddr: '10.71.0.1', daddr: '10.71.1.2', sport: 9000, dport: port, serverSide: true };
    ev({ type: 'created', ...c });
    ev({ type: 'established', ...c });
    ev({ type: 'sub_established', token, family: 4, locId: 1, remId: 2, saddr: '10.72.0.1', daddr: '10.72.1.2', sport: 9000, dport: port, backup: false });
  };
  const close = (i: number): void => {
    const token = 1000 + i;
    const port = 10000 + (i % 50000);
    ev({ type: 'sub_closed', token, family: 4, locId: 1, remId: 2, saddr: '10.72.0.1', daddr: '10.72.1.2', sport: 9000, dport: port, backup: false });
    ev({ type: 'closed', token });
  };
  const c0 = process.cpuUsage();
  for (let i = 0; i < concurrent; i++) open(i);
  for (let i = concurrent; i < total + concurrent; i++) {
    close(i - concurrent);
    open(i);
    if (i % 64 === 0) await new Promise((r) => setImmediate(r)); // let the promise jobs run, as the event loop would
  }
  for (let i = total; i < total + concurrent; i++) close(i);
  await new Promise((r) => setImmediate(r));
  const c = process.cpuUsage(c0);
  steer.stop();
  svc.stop();
  return (c.user + c.system) / total;
}

for (const conc of concList.split(',').map(Number)) {
  const us: number[] = [];
  for (let r = 0; r < rounds; r++) us.push(await round(conc));
  us.sort((a, b) => a - b);
  process.stdout.write(`${conc} concurrent: ${us[us.length >> 1]!.toFixed(1)} µs per M-session (${us.map((x) => x.toFixed(1)).join(', ')})\n`);
}

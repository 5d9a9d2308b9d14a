import { Topology, type Host } from '../helpers/hosts.js';
import { Agent } from './netlink-agent.js';

// The steering tests' topology (pm-ratio, pm-smallest-delay): a sender `cell` under the
// userspace path manager and a receiver `srv`, joined by a cellular and a WLAN link of the given
// shapes; the sender's Agent runs PmService + SteeringController with `policy`.

interface Diag { saddr: string; daddr: string; bytesReceived: number }

export interface SteerRig { C: Agent; S: Agent; cell: Host; port: number; cellAddr: string; wlanAddr: string; dst: string }

export async function steerRig(
  t: { teardown(f: () => unknown): void },
  prefix: string,
  net: number,
  policy: unknown,
  shape: { cellular: { rateMbit: number; delayMs?: number }; wlan: { rateMbit: number; delayMs?: number } } = { cellular: { rateMbit: 20 }, wlan: { rateMbit: 30 } },
): Promise<SteerRig> {
  // the pid: two runs of one file at once (other worktrees on this host) must not share namespaces
  const topo = new Topology(`${prefix}${process.pid % 100000}`);
  t.teardown(() => topo.destroy());
  const cell = await topo.host('cell');
  const srv = await topo.host('srv');
  await topo.link(cell, 'wwan0', srv, 'r0', { a: [`10.${net}.1.1/24`], b: [`10.${net}.1.2/24`], ...shape.cellular });
  await topo.link(cell, 'wlan0', srv, 'r1', { a: [`10.${net}.2.1/24`], b: [`10.${net}.2.2/24`], ...shape.wlan });
  await srv.mptcpLimits(8, 8);
  await cell.sysctl('net.mptcp.path_manager', 'userspace');
  // keep little unsent data queued on each subflow, so a backup flag takes effect within
  // a fraction of a second instead of after the subflow's send buffer drained (about 1 s)
  await cell.sysctl('net.ipv4.tcp_notsent_lowat', 16384);
  const C = new Agent(cell);
  const S = new Agent(srv);
  t.teardown(() => {
    C.close();
    S.close();
  });
  const port = await S.call<number>('bulk.sink', '0.0.0.0', 0);
  await C.call('stack.steer', [
    { name: 'cell', access: 'cellular', interface: 'wwan0', gateway4: `10.${net}.1.2`, table: 221 },
    { name: 'wifi', access: 'wlan', interface: 'wlan0', gateway4: `10.${net}.2.2`, table: 222 },
  ], policy);
  return { C, S, cell, port, cellAddr: `10.${net}.1.1`, wlanAddr: `10.${net}.2.1`, dst: `10.${net}.1.2` };
}

/** Bytes the receiver got, per access (by the sender's address). */
export async function received(S: Agent, cellAddr: string): Promise<{ cell: number; wlan: number; at: number }> {
  const list = await S.call<Diag[]>('diag.subflows');
  const out = { cell: 0, wlan: 0, at: Date.now() };
  for (const d of list) {
    if (d.daddr === cellAddr) out.cell += d.bytesReceived;
    else out.wlan += d.bytesReceived;
  }
  return out;
}

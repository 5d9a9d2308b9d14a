/**
 * Runs inside a benchmark namespace (bench/pm.ts), driven over line-delimited JSON
 * (src/sim/rpc.ts). Drives the real netlink stack,
 * PmService and SteeringController, and makes traffic.
 */
import net from 'node:net';
import { openNetlinkStack, type NetlinkStack } from '../src/drivers/netlink/stack.js';
import { SockDiag } from '../src/drivers/netlink/sock-diag.js';
import { createConnectSocket, createListenSocket } from '../src/drivers/sockets/index.js';
import { PathsService, type UplinkConfig } from '../src/services/paths/index.js';
import { PmService, SteeringController, type SteerPolicy } from '../src/services/pm/index.js';
import { serveRpc } from '../src/sim/rpc.js';
import { logToStderr } from '../src/core/logger.js';

logToStderr(); // stdout is the RPC channel (BENCH_CELL_LOG keeps these logs)

let stack: NetlinkStack | undefined;
let pmsvc: PmService | undefined;
let steer: SteeringController | undefined;
const diag = new SockDiag();
const bulk: net.Socket[] = [];
const marks: { linkDown: number[]; synced: number[] } = { linkDown: [], synced: [] };

async function getStack(): Promise<NetlinkStack> {
  stack ??= await openNetlinkStack();
  return stack;
}

const ops: Record<string, (...a: never[]) => unknown> = {
  async sink(port: number) {
    const fd = createListenSocket({ host: '0.0.0.0', port, mptcp: true });
    const server = net.createServer((c) => {
      c.on('error', () => undefined);
      c.resume();
    });
    await new Promise<void>((r) => server.listen({ fd }, r));
    return (server.address() as net.AddressInfo).port;
  },
  async diag() {
    return (await diag.subflows()).map((d) => ({ daddr: d.daddr, saddr: d.saddr, bytesReceived: d.bytesReceived }));
  },
  async bulk(host: string, port: number, n: number, locals: string[]) {
    const chunk = Buffer.alloc(128 << 10, 3);
    for (let i = 0; i < n; i++) {
      const fd = createConnectSocket({ family: 4, mptcp: true, localAddress: locals[i % locals.length]! });
      const s = new net.Socket({ fd, readable: true, writable: true });
      s.on('error', () => undefined);
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.connect(port, host, () => resolve());
      });
      const pump = (): void => {
        while (!s.destroyed && s.write(chunk));
      };
      s.on('drain', pump);
      pump();
      bulk.push(s);
    }
    return bulk.length;
  },
  /** One connection that sends a byte (so it becomes fully established) and stays open. */
  async connect(host: string, port: number, local: string) {
    const fd = createConnectSocket({ family: 4, mptcp: true, localAddress: local });
    const s = new net.Socket({ fd, readable: true, writable: true });
    s.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.connect(port, host, () => resolve());
    });
    s.write('x');
    bulk.push(s);
    return true;
  },
  stop() {
    for (const s of bulk.splice(0)) s.destroy();
    return true;
  },
  /** Userspace PM: subflows on every up path; steered by `policy` unless it is null. */
  async steer(uplinks: UplinkConfig[], policy: SteerPolicy | null) {
    const st = await getStack();
    const paths = new PathsService({ uplinks, net: st.rtnl, routing: st.routing, sampleMs: 0 });
    pmsvc = new PmService({
      pm: st.pm!, paths, manageEndpoints: false,
      planSubflows: (sess, up) => up.flatMap((p) => p.addresses.filter((a) => a !== sess.saddr && !a.includes(':')).map((address) => ({ path: p, address }))),
    });
    await paths.start();
    await pmsvc.start();
    if (policy !== null) {
      steer = new SteeringController({ sessions: pmsvc, backend: st.pm!, paths, counters: () => diag.subflows(), policy: () => policy });
      steer.start();
    }
    return true;
  },
  /** Userspace PM on the accepting side: at most `max` subflows per connection. */
  async enforce(uplinks: UplinkConfig[], max: number) {
    const st = await getStack();
    const paths = new PathsService({ uplinks, net: st.rtnl, sampleMs: 0 });
    pmsvc = new PmService({
      pm: st.pm!, paths, manageEndpoints: false,
      admitSubflow: (sess) => (sess.subflows.filter((f) => f.state === 'established').length <= max ? true : `subflow limit ${max}`),
    });
    await paths.start();
    await pmsvc.start();
    return true;
  },
  /** In-kernel PM with endpoints kept by PmService; records link-down and endpoint-deleted times. */
  async kernelpm(uplinks: UplinkConfig[]) {
    const st = await getStack();
    const paths = new PathsService({ uplinks, net: st.rtnl, routing: st.routing, sampleMs: 0 });
    pmsvc = new PmService({ pm: st.pm!, paths, limits: { subflows: 4, addAddrAccepted: 4 } });
    st.rtnl.on('link', (e) => {
      if (e.link.up === false) marks.linkDown.push(Date.now());
    });
    pmsvc.on('synced', (e) => {
      if (e.deleted > 0) marks.synced.push(Date.now());
    });
    await paths.start();
    await pmsvc.start();
    return true;
  },
  marks() {
    return marks;
  },
  'pm.stats'() {
    return pmsvc?.stats();
  },
  'steer.stats'() {
    return steer?.stats();
  },
  /** Round trip of a no-op mptcp_pm request (GET_LIMITS), ms, each of n. */
  async rtt(n: number) {
    const st = await getStack();
    const r: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = process.hrtime.bigint();
      await st.pm!.limits();
      r.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    return r;
  },
};

serveRpc((op) => ops[op] as ((...a: unknown[]) => unknown) | undefined);

/**
 * Runs INSIDE a test namespace (started with `ip netns exec` by test/kernel/netlink-*.test.ts
 * and pm-*.test.ts): reads one JSON command per line on stdin, runs it against duocell's netlink
 * drivers in this namespace, and writes one JSON reply per line ({ id, ok } or { id, error }).
 * Notifications (mptcp_pm events, link changes) are written as { event } lines.
 */
import net from 'node:net';
import { MptcpPm } from '../../src/drivers/netlink/mptcp-pm.js';
import { Rtnl } from '../../src/drivers/netlink/rtnetlink.js';
import { RoutingKeeper } from '../../src/drivers/netlink/uplink-routing.js';
import { WlanDriver } from '../../src/drivers/wlan/index.js';
import { openNetlinkStack } from '../../src/drivers/netlink/stack.js';
import { SockDiag } from '../../src/drivers/netlink/sock-diag.js';
import { PathsService, type UplinkConfig } from '../../src/services/paths/index.js';
import { PmService, SteeringController, type SteerPolicy } from '../../src/services/pm/index.js';
import { createConnectSocket, createListenSocket } from '../../src/drivers/sockets/index.js';
import { serveRpc } from '../../src/sim/rpc.js';

type Handler = (...args: unknown[]) => unknown;
const targets: Record<string, Record<string, unknown>> = {};
const sockets = new Map<number, net.Socket>();
const bulk: net.Socket[] = [];
let nextSock = 1;

// events (mptcp_pm, links, subflows) go out as { event, data } lines: see src/sim/rpc.ts
const write = (o: unknown): void => emit(o);
let emit: (o: unknown) => void = () => undefined;

const local: Record<string, Handler> = {
  async 'pm.open'() {
    const pm = await MptcpPm.open();
    targets.pm = pm as unknown as Record<string, unknown>;
    pm.on('event', (e) => write({ event: 'mptcp', data: e }));
    return pm.family;
  },
  'rtnl.open'() {
    const rtnl = Rtnl.open();
    targets.rtnl = rtnl as unknown as Record<string, unknown>;
    rtnl.subscribe();
    rtnl.on('link', (e) => write({ event: 'link', data: { op: e.op, ...e.link } }));
    const keeper = new RoutingKeeper(rtnl);
    targets.keeper = keeper as unknown as Record<string, unknown>;
    keeper.on('changed', (c) => write({ event: 'routing', data: c as unknown as Record<string, unknown> }));
    return true;
  },
  async 'wlan.start'(ifname) {
    const d = new WlanDriver({ ifname: ifname as string, rtnl: targets.rtnl as unknown as Rtnl });
    targets.wlan = d as unknown as Record<string, unknown>;
    d.on('state', (s) => write({ event: 'wlan', data: s as unknown as Record<string, unknown> }));
    return d.start();
  },
  async 'stack.start'(uplinks) {
    const ups = uplinks as UplinkConfig[];
    const stack = await openNetlinkStack({ wlanInterfaces: ups.filter((u) => u.access === 'wlan').map((u) => u.interface) });
    const wlan = [...stack.wlan.values()][0];
    const paths = new PathsService({ uplinks: ups, net: stack.rtnl, routing: stack.routing, ...(wlan === undefined ? {} : { wlan }), sampleMs: 0 });
    const diag = new SockDiag();
    const pm = new PmService({ pm: stack.pm!, paths, limits: { subflows: 4, addAddrAccepted: 4 }, counters: () => diag.subflows() });
    targets.paths = paths as unknown as Record<string, unknown>;
    targets.pmsvc = pm as unknown as Record<string, unknown>;
    paths.on('event', (e) => write({ event: 'path', data: { type: e.type, name: e.path.name, state: e.path.state, at: Date.now() } }));
    pm.on('subflow', (e) => write({ event: 'subflow', data: { type: e.type, ...e.subflow, at: Date.now() } }));
    pm.on('synced', (e) => write({ event: 'synced', data: { ...e, at: Date.now() } }));
    stack.rtnl.on('link', (e) => write({ event: 'rtlink', data: { name: e.link.name, up: e.link.up, at: Date.now() } }));
    await paths.start();
    await pm.start();
    return paths.list();
  },
  /** Userspace-PM side: paths + PmService with data-described hooks (max subflows, plan all paths). */
  async 'stack.userspace'(uplinks, opts) {
    const o = opts as { maxSubflows?: number; plan?: boolean; routing?: boolean };
    const ups = uplinks as UplinkConfig[];
    const stack = await openNetlinkStack();
    const paths = new PathsService({ uplinks: ups, net: stack.rtnl, ...(o.routing === false ? {} : { routing: stack.routing }), sampleMs: 0 });
    const pm = new PmService({
      pm: stack.pm!, paths, manageEndpoints: false,
      ...(o.maxSubflows === undefined ? {} : { admitSubflow: (sess) => (sess.subflows.filter((f) => f.state === 'established').length <= o.maxSubflows! ? true : `subflow limit ${o.maxSubflows}`) }),
      ...(o.plan === true ? { planSubflows: (sess, up) => up.flatMap((p) => p.addresses.filter((a) => a !== sess.saddr && !a.includes(':')).map((address) => ({ path: p, address }))) } : {}),
    });
    targets.paths = paths as unknown as Record<string, unknown>;
    targets.pmsvc = pm as unknown as Record<string, unknown>;
    pm.on('subflow', (e) => write({ event: 'subflow', data: { type: e.type, ...e.subflow, at: Date.now() } }));
    await paths.start();
    await pm.start();
    return paths.list();
  },
  /**
   * Userspace PM + steering (pm-ratio tests): PmService opens a subflow on every other up path
   * of each connection, the SteeringController flags them by the given policy.
   */
  async 'stack.steer'(uplinks, policy, opts) {
    const o = (opts ?? {}) as { intervalMs?: number; windowMs?: number; deadbandPp?: number; settleMs?: number; lookaheadMs?: number };
    const ups = uplinks as UplinkConfig[];
    const stack = await openNetlinkStack();
    const paths = new PathsService({ uplinks: ups, net: stack.rtnl, routing: stack.routing, sampleMs: 0 });
    const pm = new PmService({
      pm: stack.pm!, paths, manageEndpoints: false,
      planSubflows: (sess, up) => up.flatMap((p) => p.addresses.filter((a) => a !== sess.saddr && !a.includes(':')).map((address) => ({ path: p, address }))),
    });
    const diag = new SockDiag();
    const steer = new SteeringController({
      sessions: pm, backend: stack.pm!, paths, counters: () => diag.subflows(), policy: () => policy as SteerPolicy, ...o,
    });
    targets.paths = paths as unknown as Record<string, unknown>;
    targets.pmsvc = pm as unknown as Record<string, unknown>;
    targets.steer = steer as unknown as Record<string, unknown>;
    paths.on('event', (e) => write({ event: 'path', data: { type: e.type, name: e.path.name, state: e.path.state, at: Date.now() } }));
    steer.on('failover', (e) => write({ event: 'failover', data: { ...e, at: Date.now() } }));
    await paths.start();
    await pm.start();
    steer.start();
    return paths.list();
  },
  'diag.subflows'() {
    const diag = (targets.diag ??= new SockDiag() as unknown as Record<string, unknown>) as unknown as SockDiag;
    return diag.subflows();
  },
  /** An MPTCP listener that discards what it receives; returns its port. */
  async 'bulk.sink'(host, port) {
    const fd = createListenSocket({ host: host as string, port: port as number, mptcp: true });
    const server = net.createServer((c) => {
      c.on('error', () => undefined);
      c.resume();
    });
    await new Promise<void>((r) => server.listen({ fd }, r));
    return (server.address() as net.AddressInfo).port;
  },
  /** Open n MPTCP connections (local addresses taken in turn) that send as fast as they can. */
  async 'bulk.start'(host, port, n, localAddresses) {
    const locals = (localAddresses ?? [undefined]) as Array<string | undefined>;
    const chunk = Buffer.alloc(128 << 10, 5);
    for (let i = 0; i < (n as number); i++) {
      const la = locals[i % locals.length];
      const fd = createConnectSocket({ family: 4, mptcp: true, ...(la === undefined ? {} : { localAddress: la }) });
      const s = new net.Socket({ fd, readable: true, writable: true });
      s.on('error', () => undefined);
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.connect(port as number, host as string, () => resolve());
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
  /** One MPTCP connection that sends at about `mbit` Mbit/s (application-limited). */
  async 'paced.start'(host, port, mbit, localAddress) {
    const fd = createConnectSocket({ family: 4, mptcp: true, ...(localAddress === undefined ? {} : { localAddress: localAddress as string }) });
    const s = new net.Socket({ fd, readable: true, writable: true });
    s.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.connect(port as number, host as string, () => resolve());
    });
    const chunk = Buffer.alloc(Math.max(1, Math.round(((mbit as number) * 1e6) / 8 / 20)), 9);
    const timer = setInterval(() => {
      if (s.destroyed) clearInterval(timer);
      else s.write(chunk);
    }, 50);
    bulk.push(s);
    return bulk.length;
  },
  'bulk.stop'() {
    for (const s of bulk.splice(0)) s.destroy();
    return true;
  },
  'keeper.stats'() {
    return { restores: (targets.keeper as unknown as RoutingKeeper).restores };
  },
  async 'sock.listen'(host, port) {
    const fd = createListenSocket({ host: host as string, port: port as number, mptcp: true });
    const server = net.createServer((c) => {
      c.on('error', () => undefined);
      c.pipe(c);
    });
    await new Promise<void>((r) => server.listen({ fd }, r));
    return (server.address() as net.AddressInfo).port;
  },
  async 'sock.connect'(host, port, localAddress) {
    const family = (host as string).includes(':') ? 6 : 4;
    const fd = createConnectSocket({ family, mptcp: true, ...(localAddress === undefined ? {} : { localAddress: localAddress as string }) });
    const s = new net.Socket({ fd, readable: true, writable: true });
    s.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.connect(port as number, host as string, () => resolve());
    });
    // one byte each way makes the MPTCP connection fully established (ESTABLISHED event)
    s.write('x');
    await new Promise<void>((resolve) => s.once('data', () => resolve()));
    const id = nextSock++;
    sockets.set(id, s);
    return { id, localAddress: s.localAddress, localPort: s.localPort };
  },
  async 'sock.send'(id, n) {
    const s = sockets.get(id as number)!;
    let got = 0;
    const done = new Promise<void>((resolve) => {
      const onData = (d: Buffer): void => {
        got += d.length;
        if (got >= (n as number)) {
          s.off('data', onData);
          resolve();
        }
      };
      s.on('data', onData);
    });
    s.write(Buffer.alloc(n as number, 7));
    await done;
    return got;
  },
  'sock.close'(id) {
    sockets.get(id as number)?.destroy();
    sockets.delete(id as number);
    return true;
  },
  exit() {
    setImmediate(() => process.exit(0));
    return true;
  },
};

emit = serveRpc((op) => {
  const fn = local[op];
  if (fn !== undefined) return fn;
  const [target, method] = op.split('.') as [string, string];
  const obj = targets[target];
  const m = obj?.[method];
  return typeof m === 'function' ? (m as Handler).bind(obj) : undefined;
});

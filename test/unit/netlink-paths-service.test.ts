import { EventEmitter } from 'node:events';
import t from 'tap';
import { PathsService, type CellularState, type NetAddress, type NetLink, type NetSource, type PathEvent, type RoutingBackend, type WlanSource, type WlanSourceState } from '../../src/services/paths/index.js';
import type { Rtnl } from '../../src/drivers/netlink/rtnetlink.js';
import type { RoutingKeeper } from '../../src/drivers/netlink/uplink-routing.js';
import type { WlanDriver } from '../../src/drivers/wlan/index.js';

// the real drivers satisfy the service's contracts (compile-time check)
export const contracts = (r: Rtnl, k: RoutingKeeper, w: WlanDriver): [NetSource, RoutingBackend, WlanSource] => [r, k, w];

class FakeNet extends EventEmitter implements NetSource {
  links_: NetLink[] = [];
  addrs: NetAddress[] = [];
  async links(): Promise<NetLink[]> {
    return this.links_;
  }
  async addresses(): Promise<NetAddress[]> {
    return this.addrs;
  }
  link(l: NetLink, op: 'new' | 'del' = 'new'): void {
    this.links_ = this.links_.filter((x) => x.index !== l.index);
    if (op === 'new') this.links_.push(l);
    this.emit('link', { op, link: l });
  }
  addr(a: NetAddress, op: 'new' | 'del' = 'new'): void {
    this.addrs = this.addrs.filter((x) => x.address !== a.address);
    if (op === 'new') this.addrs.push(a);
    this.emit('address', { op, address: a });
  }
}

class FakeRouting implements RoutingBackend {
  specs: Array<Record<string, unknown>> = [];
  deleted: string[] = [];
  fail = false;
  async set(spec: Record<string, unknown>): Promise<void> {
    if (this.fail) throw new Error('EPERM');
    this.specs.push(spec);
  }
  async delete(name: string): Promise<void> {
    this.deleted.push(name);
  }
}

class Source<S> extends EventEmitter {
  constructor(public state: S) {
    super();
  }
  set(s: S): void {
    this.state = s;
    this.emit('state', s);
  }
}

const tick = () => new Promise((r) => setTimeout(r, 10));
const wwan: NetLink = { index: 5, name: 'wwan0', up: true };
const wlan: NetLink = { index: 6, name: 'wlan0', up: true };

function setup() {
  const net = new FakeNet();
  const routing = new FakeRouting();
  const cellular = new Source<CellularState>({ connected: false, reason: 'searching' });
  const wl = new Source<WlanSourceState>({ present: true, up: true, quality: 'unknown' });
  let now = 1_000_000;
  let counters = { rxBytes: 0, txBytes: 0 };
  const svc = new PathsService({
    uplinks: [{ name: 'cell', access: 'cellular', interface: 'wwan0' }, { name: 'wifi', access: 'wlan', interface: 'wlan0', gateway4: '192.168.8.1', table: 210 }],
    net, routing, cellular, wlan: wl as unknown as WlanSource, sampleMs: 0, now: () => now,
    counters: async (ifname) => (ifname === 'wlan0' ? counters : undefined),
    rtt: async (p) => (p.name === 'wifi' ? 12.5 : undefined),
  });
  const events: PathEvent[] = [];
  svc.on('event', (e) => events.push(e));
  return { net, routing, cellular, wl, svc, events, advance: (ms: number) => (now += ms), setCounters: (c: typeof counters) => (counters = c) };
}

t.test('a cellular path comes up only with link, data session and a global address', async (t) => {
  const { net, routing, cellular, svc, events } = setup();
  await svc.start();
  t.match(svc.get('cell'), { state: 'absent', reason: 'interface absent', table: 100 });
  net.link(wwan);
  await tick();
  t.match(svc.get('cell'), { state: 'down', reason: 'searching' });
  cellular.set({ connected: true, gateway4: '10.64.0.1', signal: { rsrpDbm: -95, rsrqDb: -11, sinrDb: 8 } });
  await tick();
  t.match(svc.get('cell'), { state: 'down', reason: 'no global address' });
  net.addr({ family: 6, index: 5, address: 'fe80::1', prefixLen: 64, scope: 253 });
  net.addr({ family: 4, index: 5, address: '10.64.0.7', prefixLen: 30, scope: 0 });
  await tick();
  const up = svc.get('cell');
  t.match(up, { state: 'up', addresses: ['10.64.0.7'], gateway4: '10.64.0.1', routing: 'installed', signal: { quality: 'known', dbm: -95, sinrDb: 8 } });
  t.equal(up.reason, undefined);
  t.match(routing.specs.at(-1), { name: 'cell', ifindex: 5, table: 100, addresses: ['10.64.0.7'], prefixes: ['10.64.0.7/30'], gateway4: '10.64.0.1' });
  t.ok(events.some((e) => e.type === 'path-up' && e.path.name === 'cell'));
  t.equal(svc.byAddress('10.64.0.7')?.access, 'cellular', 'subflow labelling by local address');
  t.equal(svc.byAddress('192.0.2.1'), undefined);

  // registration lost → data session drops → path down; routing kept for the return
  cellular.set({ connected: false, reason: 'registration lost' });
  await tick();
  t.match(svc.get('cell'), { state: 'down', reason: 'registration lost', routing: 'pending' });
  t.equal(events.at(-1)?.type, 'path-down');
  const n = routing.specs.length;
  cellular.set({ connected: true, gateway4: '10.64.0.1' });
  await tick();
  t.equal(svc.get('cell').state, 'up');
  t.equal(routing.specs.length, n + 1, 're-installed (reconciled) before path-up is announced');

  // a new address (the modem got another IP) re-installs routing
  net.addr({ family: 4, index: 5, address: '10.64.0.7', prefixLen: 30, scope: 0 }, 'del');
  net.addr({ family: 4, index: 5, address: '10.64.9.9', prefixLen: 30, scope: 0 });
  await tick();
  t.match(routing.specs.at(-1), { addresses: ['10.64.9.9'] });

  // the interface vanishes (USB unplug): absent, routing deleted
  net.link(wwan, 'del');
  await tick();
  t.match(svc.get('cell'), { state: 'absent' });
  t.same(routing.deleted, ['cell']);
  svc.stop();
});

t.test('a WLAN path follows link and radio, reports quality, throughput and RTT', async (t) => {
  const { net, wl, svc, events, advance, setCounters } = setup();
  net.links_ = [wlan];
  net.addrs = [{ family: 4, index: 6, address: '192.168.8.20', prefixLen: 24, scope: 0 }, { family: 6, index: 6, address: '2001:db8::20', prefixLen: 64, scope: 0 }];
  await svc.start();
  t.match(svc.get('wifi'), { state: 'up', table: 210, gateway4: '192.168.8.1', signal: { quality: 'unknown' }, addresses: ['192.168.8.20', '2001:db8::20'] });
  wl.set({ present: true, up: true, quality: 'known', signalDbm: -61, ssid: 'backhaul', bssid: '02:00:00:00:00:01', txBitrateMbps: 433.3 });
  await tick();
  t.match(svc.get('wifi').signal, { quality: 'known', dbm: -61, ssid: 'backhaul', bitrateMbps: 433.3 });
  const changed = events.filter((e) => e.type === 'path-changed').at(-1);
  t.match(changed, { fields: ['signal'] });
  net.link({ ...wlan, up: false });
  await tick();
  t.match(svc.get('wifi'), { state: 'down', reason: 'link down' });
  net.link(wlan);
  wl.set({ present: true, up: false, quality: 'known', reason: 'disassociated' });
  await tick();
  t.match(svc.get('wifi'), { state: 'down', reason: 'disassociated' });
  wl.set({ present: true, up: true, quality: 'known' });
  await tick();
  await svc.sample();
  setCounters({ rxBytes: 1_000_000, txBytes: 250_000 });
  advance(2000);
  await svc.sample();
  t.same(svc.get('wifi').throughput, { rxBps: 4_000_000, txBps: 1_000_000 });
  t.equal(svc.get('wifi').rttMs, 12.5);
  setCounters({ rxBytes: 10, txBytes: 10 }); // counter reset (interface re-created): no negative rate
  advance(1000);
  await svc.sample();
  t.same(svc.get('wifi').throughput, { rxBps: 4_000_000, txBps: 1_000_000 });
  svc.stop();
});

t.test('routing failure is reported on the path, not thrown', async (t) => {
  const { net, routing, svc } = setup();
  routing.fail = true;
  net.links_ = [wlan];
  net.addrs = [{ family: 4, index: 6, address: '192.168.8.20', prefixLen: 24, scope: 0 }];
  await svc.start();
  t.match(svc.get('wifi'), { state: 'up', routing: 'failed', reason: /routing: EPERM/ });
  t.throws(() => svc.get('nope'), { code: 'DC_PATH_UNKNOWN' });
  t.throws(() => new PathsService({ uplinks: [{ name: 'a', access: 'wlan', interface: 'x' }, { name: 'a', access: 'wlan', interface: 'y' }], net }), { code: 'DC_CONFIG_INVALID' });
  svc.stop();
});

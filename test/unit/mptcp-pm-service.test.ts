import { EventEmitter } from 'node:events';
import t from 'tap';
import type { SockDiag } from '../../src/drivers/netlink/sock-diag.js';
import { PmService, type PmServiceOptions, type EndpointFlag, type PathsLike, type PmBackend, type PmEndpoint } from '../../src/services/pm/index.js';
import type { MptcpEvent } from '../../src/protocols/mptcp-pm/index.js';
import type { PathEvent, PathView } from '../../src/services/paths/index.js';
import type { PathsService } from '../../src/services/paths/index.js';
import type { MptcpPm } from '../../src/drivers/netlink/mptcp-pm.js';
import { EVENTS } from '../fixtures/mptcp-pm/events.js';
import { parseEvent } from '../../src/protocols/mptcp-pm/index.js';

// the real driver and paths service satisfy the service's contracts (compile-time check)
export const contracts = (pm: MptcpPm, paths: PathsService, diag: SockDiag): [PmBackend, PathsLike, PmServiceOptions['counters']] => [pm, paths, () => diag.subflows()];

class FakePm extends EventEmitter implements PmBackend {
  eps: PmEndpoint[] = [];
  lim = { subflows: 2, addAddrAccepted: 0 };
  log: string[] = [];
  subscribed = false;
  async limits() {
    return this.lim;
  }
  async setLimits(l: { subflows?: number; addAddrAccepted?: number }) {
    this.lim = { ...this.lim, ...l };
    this.log.push(`limits ${l.subflows}/${l.addAddrAccepted}`);
  }
  async endpoints() {
    return this.eps.map((e) => ({ ...e }));
  }
  async addEndpoint(e: { address: string; id?: number; flags?: readonly EndpointFlag[]; ifIndex?: number }) {
    this.eps.push({ id: e.id!, address: e.address, flags: [...(e.flags ?? [])], ...(e.ifIndex === undefined ? {} : { ifIndex: e.ifIndex }) });
    this.log.push(`add ${e.id} ${e.address} ${(e.flags ?? []).join(',')}`);
  }
  async deleteEndpoint(id: number) {
    this.eps = this.eps.filter((e) => e.id !== id);
    this.log.push(`del ${id}`);
  }
  async setEndpointFlags(e: { id?: number; flags: readonly EndpointFlag[] }) {
    const ep = this.eps.find((x) => x.id === e.id)!;
    this.eps = this.eps.map((x) => (x === ep ? { ...x, flags: [...e.flags] } : x));
    this.log.push(`flags ${e.id} ${e.flags.join(',')}`);
  }
  subscribe() {
    this.subscribed = true;
  }
}

class FakePaths extends EventEmitter implements PathsLike {
  paths: PathView[] = [];
  list() {
    return this.paths;
  }
  byAddress(a: string) {
    return this.paths.find((p) => p.addresses.includes(a));
  }
  set(p: PathView, type: PathEvent['type']) {
    this.paths = [...this.paths.filter((x) => x.name !== p.name), p];
    this.emit('event', type === 'path-changed' ? { type, path: p, fields: ['addresses'] } : { type, path: p });
  }
}

const view = (name: string, access: 'cellular' | 'wlan', addresses: string[], state: 'up' | 'down', ifindex: number): PathView => ({
  name, access, interface: name, ifindex, state, since: '', addresses, table: 100, routing: 'installed', signal: { quality: 'unknown' },
});

const settle = () => new Promise((r) => setTimeout(r, 10));

t.test('endpoints follow the paths that are up; limits held; foreign endpoints untouched', async (t) => {
  const pm = new FakePm();
  pm.eps = [{ id: 50, address: '192.0.2.99', flags: ['signal'] }];
  const paths = new FakePaths();
  paths.paths = [view('cell', 'cellular', ['10.1.1.1'], 'up', 5), view('wifi', 'wlan', ['10.1.2.1', 'fd00:2::1'], 'up', 6)];
  const svc = new PmService({ pm, paths, limits: { subflows: 4, addAddrAccepted: 2 }, flags: (p) => (p.access === 'cellular' ? ['subflow', 'backup'] : ['subflow']) });
  await svc.start();
  t.ok(pm.subscribed);
  t.same(pm.lim, { subflows: 4, addAddrAccepted: 2 });
  t.same(pm.log.slice(1), ['add 1 10.1.1.1 subflow,backup', 'add 2 10.1.2.1 subflow', 'add 3 fd00:2::1 subflow']);
  t.match(pm.eps.find((e) => e.id === 1), { ifIndex: 5 });
  t.same(svc.endpoints(), { '10.1.1.1': 1, '10.1.2.1': 2, 'fd00:2::1': 3 });

  pm.log = [];
  paths.set(view('wifi', 'wlan', ['10.1.2.1', 'fd00:2::1'], 'down', 6), 'path-down');
  await settle();
  t.same(pm.log, ['del 2', 'del 3'], 'a path going down loses its endpoints at once');
  t.ok(svc.stats().lastReactionMs !== undefined, 'reaction time measured');
  t.ok(pm.eps.some((e) => e.id === 50), 'foreign endpoint kept');

  pm.log = [];
  paths.set(view('wifi', 'wlan', ['10.1.2.7'], 'up', 6), 'path-up');
  await settle();
  t.same(pm.log, ['add 2 10.1.2.7 subflow'], 'back up with its new address');

  // someone changed our endpoint's flags behind our back: restored on the next sync
  pm.eps = pm.eps.map((e) => (e.id === 1 ? { ...e, flags: ['subflow'] } : e));
  pm.log = [];
  await svc.sync();
  t.same(pm.log, ['flags 1 subflow,backup']);
  // and one deleted behind our back comes back
  pm.eps = pm.eps.filter((e) => e.id !== 2);
  pm.log = [];
  pm.emit('lost', new Error('ENOBUFS'));
  await settle();
  t.same(pm.log, ['add 2 10.1.2.7 subflow']);
  t.equal(svc.stats().endpointDeletes, 2);
  svc.stop();
});

t.test('userspace mode: endpoints and limits are left alone', async (t) => {
  const pm = new FakePm();
  const paths = new FakePaths();
  paths.paths = [view('cell', 'cellular', ['10.1.1.1'], 'up', 5)];
  const svc = new PmService({ pm, paths, manageEndpoints: false });
  await svc.start();
  t.same(pm.log, []);
  svc.stop();
});

t.test('sync failures are DC_PM_SYNC and counted', async (t) => {
  const pm = new FakePm();
  pm.addEndpoint = async () => {
    throw Object.assign(new Error('kernel said EPERM'), { errno: 1 });
  };
  const paths = new FakePaths();
  paths.paths = [view('cell', 'cellular', ['10.1.1.1'], 'up', 5)];
  const svc = new PmService({ pm, paths });
  await t.rejects(svc.start(), { code: 'DC_PM_SYNC' });
  t.equal(svc.stats().syncFailures, 1);
  svc.stop();
});

t.test('sessions and subflows from real kernel events, labelled with access types', async (t) => {
  const pm = new FakePm();
  const paths = new FakePaths();
  paths.paths = [view('cell', 'cellular', ['10.1.1.1'], 'up', 5), view('wifi', 'wlan', ['10.1.2.1'], 'up', 6)];
  let counters: Array<{ token: number; saddr: string; sport: number; daddr: string; dport: number; bytesSent: number; bytesReceived: number; rttMs: number }> = [];
  const svc = new PmService({ pm, paths, manageEndpoints: false, counters: async () => counters });
  await svc.start();
  const subflowEvents: string[] = [];
  svc.on('subflow', (e) => subflowEvents.push(`${e.type} ${e.subflow.access} ${e.subflow.saddr}`));
  const client = EVENTS.filter((e) => e.side === 'client' && (e.expect as { family?: number }).family !== 6 && !e.name.includes('IPv6'));
  const parsed = client.map((e) => parseEvent(Buffer.from(e.hex.replace(/\s+/g, ''), 'hex')) as MptcpEvent);
  const closeAt = parsed.findIndex((e) => e.type === 'closed');
  for (const e of parsed.slice(0, closeAt)) pm.emit('event', e);
  const [s] = svc.sessions();
  t.match(s, { state: 'established', saddr: '10.1.1.1', daddr: '10.1.1.2', serverSide: false });
  t.same(Object.values(s!.announced), [], 'the ADD_ADDR was later removed');
  const byState = s!.subflows.map((f) => `${f.state} ${f.access} ${f.saddr}>${f.daddr}`).sort();
  t.same(byState, ['closed wlan 10.1.2.1>10.1.2.2', 'established cellular 10.1.1.1>10.1.1.2', 'established wlan 10.1.2.1>10.1.1.2']);
  t.same(subflowEvents, ['opened cellular 10.1.1.1', 'opened wlan 10.1.2.1', 'opened wlan 10.1.2.1', 'closed wlan 10.1.2.1']);
  // per-subflow counters (sock_diag) merged by token and 4-tuple; totals per access type
  const live = svc.sessions()[0]!.subflows.filter((f) => f.state === 'established');
  counters = live.map((f, i) => ({ token: f.token, saddr: f.saddr, sport: f.sport, daddr: f.daddr, dport: f.dport, bytesSent: 1000 * (i + 1), bytesReceived: 10, rttMs: 10 * (i + 1) }));
  counters.push({ token: 424242, saddr: '1.1.1.1', sport: 1, daddr: '2.2.2.2', dport: 2, bytesSent: 5, bytesReceived: 5, rttMs: 1 });
  t.equal(await svc.refreshCounters(), 2);
  const totals = svc.accessTotals();
  t.equal(totals.cellular!.subflows + totals.wlan!.subflows, 2);
  t.equal(totals.cellular!.bytesSent + totals.wlan!.bytesSent, 3000);
  t.ok(svc.sessions()[0]!.subflows.some((f) => f.bytesSent === 2000 && f.rttMs === 20));
  const probe = svc.rttProbe();
  const rttCell = await probe({ addresses: ['10.1.1.1'] });
  const rttWifi = await probe({ addresses: ['10.1.2.1'] });
  t.same([rttCell, rttWifi].sort(), [10, 20], 'RTT per path from its subflows');
  t.equal(await probe({ addresses: ['192.0.2.1'] }), undefined);
  pm.emit('event', parsed[closeAt]!);
  t.same(svc.sessions(), []);
  const st = svc.stats();
  t.same(st.subflowsOpened, { cellular: 1, wlan: 2 });
  t.same(st.subflowsClosed, { wlan: 2, cellular: 1 });
  t.equal(st.events.sub_established, 2);
  // an unknown local address is labelled unknown; events for unknown tokens are ignored
  pm.emit('event', { type: 'created', token: 9, saddr: '172.16.0.1', daddr: '10.1.1.2', sport: 1, dport: 2, family: 4 });
  t.equal(svc.session(9)?.subflows[0]?.access, 'unknown');
  pm.emit('event', { type: 'sub_established', token: 77, saddr: '10.1.2.1', daddr: '10.1.1.2', sport: 3, dport: 2 });
  t.equal(svc.sessions().length, 1);
  svc.stop();
});

t.test('userspace PM: admission destroys refused subflows; planning opens subflows over other paths', async (t) => {
  const pm = new FakePm() as FakePm & { destroyed: string[]; created: string[] };
  pm.destroyed = [];
  pm.created = [];
  (pm as unknown as PmBackend).subflowDestroy = async (token, l, r) => {
    pm.destroyed.push(`${token} ${l.address}:${l.port} ${r.address}:${r.port}`);
  };
  (pm as unknown as PmBackend).subflowCreate = async (token, l, r) => {
    pm.created.push(`${token} ${l.address}#${l.id}@${l.ifIndex} ${r.address}:${r.port}`);
  };
  const paths = new FakePaths();
  paths.paths = [view('cell', 'cellular', ['10.1.1.1'], 'up', 5), view('wifi', 'wlan', ['10.1.2.1'], 'down', 6)];
  const svc = new PmService({
    pm, paths, manageEndpoints: false,
    admitSubflow: (s, f) => (f.access === 'unknown' ? 'outside allowed networks' : s.subflows.filter((x) => x.state === 'established').length <= 2),
    planSubflows: (s, up) => up.flatMap((p) => p.addresses.filter((a) => a !== s.saddr).map((address) => ({ path: p, address }))),
  });
  await svc.start();
  pm.emit('event', { type: 'created', token: 1, saddr: '10.1.1.1', daddr: '203.0.113.5', sport: 4000, dport: 443, family: 4 });
  pm.emit('event', { type: 'established', token: 1, saddr: '10.1.1.1', daddr: '203.0.113.5', sport: 4000, dport: 443, family: 4 });
  await settle();
  t.same(pm.created, [], 'no other path is up yet');
  paths.set(view('wifi', 'wlan', ['10.1.2.1'], 'up', 6), 'path-up');
  await settle();
  t.same(pm.created, ['1 10.1.2.1#1@6 203.0.113.5:443'], 'a path coming up gets a subflow on the live connection');
  pm.emit('event', { type: 'sub_established', token: 1, saddr: '10.1.2.1', daddr: '203.0.113.5', sport: 4001, dport: 443, locId: 1, remId: 0, backup: false });
  // a join from a third-party network (server side: remote address unknown to our paths is fine;
  // here the local address is unknown) is refused and destroyed
  pm.emit('event', { type: 'sub_established', token: 1, saddr: '172.16.9.9', daddr: '203.0.113.5', sport: 4002, dport: 443, locId: 9, remId: 0, backup: false });
  await settle();
  t.same(pm.destroyed, ['1 172.16.9.9:4002 203.0.113.5:443']);
  // a third established subflow exceeds the limit of 2
  pm.emit('event', { type: 'sub_established', token: 1, saddr: '10.1.1.1', daddr: '203.0.113.5', sport: 4003, dport: 443, locId: 0, remId: 0, backup: false });
  await settle();
  t.equal(pm.destroyed.length, 2, 'the subflow beyond the limit is destroyed too');
  t.equal(pm.destroyed[1], '1 10.1.1.1:4003 203.0.113.5:443');
  const st = svc.stats();
  t.same(st.subflowsRefused, { 'outside allowed networks': 1, refused: 1 });
  t.equal(st.subflowsCreated, 1);
  t.ok(st.lastEnforceMs !== undefined);
  svc.stop();
});

t.test('userspace PM: a peer with the C flag is joined only on what it announces, one create per address at a time', async (t) => {
  const pm = new FakePm() as FakePm & { created: string[] };
  pm.created = [];
  (pm as unknown as PmBackend).subflowCreate = async (token, l, r) => {
    pm.created.push(`${token} ${l.address} ${r.address}:${r.port}`);
  };
  const paths = new FakePaths();
  paths.paths = [view('cell', 'cellular', ['10.21.0.2'], 'up', 5), view('wifi', 'wlan', ['10.22.0.2'], 'up', 6)];
  const svc = new PmService({
    pm, paths, manageEndpoints: false,
    planSubflows: (s, up) => {
      const ann = Object.values(s.announced).at(-1);
      return up.flatMap((p) => p.addresses.filter((a) => a !== s.saddr).map((address) => ({ path: p, address, ...(ann === undefined ? {} : { remote: { address: ann, port: 5125 } }) })));
    },
  });
  await svc.start();
  const conn = { token: 4, saddr: '10.21.0.2', daddr: '10.20.0.1', sport: 4000, dport: 5124, family: 4 as const, flags: 1 };
  pm.emit('event', { type: 'created', ...conn });
  pm.emit('event', { type: 'established', ...conn });
  await settle();
  t.equal(svc.session(4)?.denyJoinInitial, true, 'the C flag is seen');
  t.same(pm.created, [], 'no join towards the initial address and port');
  pm.emit('event', { type: 'announced', token: 4, remId: 2, daddr: '10.22.0.1', dport: 5125 });
  await settle();
  pm.emit('event', { type: 'announced', token: 4, remId: 1, daddr: '10.21.0.1', dport: 5125 });
  await settle();
  t.same(pm.created, ['4 10.22.0.2 10.22.0.1:5125'], 'one join to the announced address; none again while it is in flight');
  t.same(svc.session(4)?.announcedPorts, { 1: 5125, 2: 5125 });
  pm.emit('event', { type: 'sub_closed', token: 4, saddr: '10.22.0.2', daddr: '10.22.0.1', sport: 4001, dport: 5125, locId: 1, remId: 2, error: 111 });
  pm.emit('event', { type: 'announced', token: 4, remId: 3, daddr: '10.22.0.9', dport: 5125 });
  await settle();
  t.equal(pm.created.length, 2, 'after the attempt failed, a new announcement gets a new join');
  svc.stop();
});

t.test('userspace PM: a refused join is planned again (another announced address), at most 3 times per pair', async (t) => {
  const pm = new FakePm() as FakePm & { created: string[] };
  pm.created = [];
  (pm as unknown as PmBackend).subflowCreate = async (token, l, r) => {
    pm.created.push(`${l.address}>${r.address}:${r.port}`);
  };
  const paths = new FakePaths();
  paths.paths = [view('cell', 'cellular', ['10.21.0.2'], 'up', 5), view('wifi', 'wlan', ['10.22.0.2'], 'up', 6)];
  const svc = new PmService({
    pm, paths, manageEndpoints: false,
    planSubflows: (s, up) => {
      const ann = Object.values(s.announced).at(-1);
      return up.flatMap((p) => p.addresses.filter((a) => a !== s.saddr).map((address) => ({ path: p, address, ...(ann === undefined ? {} : { remote: { address: ann, port: 5125 } }) })));
    },
  });
  await svc.start();
  // a kernel that does not report the C flag: the first join goes to the initial address
  const conn = { token: 5, saddr: '10.21.0.2', daddr: '10.20.0.1', sport: 4000, dport: 5124, family: 4 as const };
  pm.emit('event', { type: 'created', ...conn });
  pm.emit('event', { type: 'established', ...conn });
  await settle();
  pm.emit('event', { type: 'announced', token: 5, remId: 2, daddr: '10.22.0.1', dport: 5125 });
  await settle();
  t.same(pm.created, ['10.22.0.2>10.20.0.1:5124'], 'the announcement arrives while the first join is in flight');
  const refused = { token: 5, saddr: '10.22.0.2', daddr: '10.20.0.1', sport: 4001, dport: 5124, locId: 1, remId: 0, error: 104 };
  pm.emit('event', { type: 'sub_closed', ...refused });
  await settle();
  t.same(pm.created, ['10.22.0.2>10.20.0.1:5124', '10.22.0.2>10.22.0.1:5125'], 'refused: joined again, on the announced address');
  for (let i = 0; i < 4; i++) {
    pm.emit('event', { type: 'sub_closed', token: 5, saddr: '10.22.0.2', daddr: '10.22.0.1', sport: 4002 + i, dport: 5125, locId: 1, remId: 2, error: 111 });
    await settle();
  }
  t.equal(pm.created.filter((c) => c === '10.22.0.2>10.22.0.1:5125').length, 3, 'a pair the peer keeps refusing is given up after 3 tries');
  svc.stop();
});

t.test('one handler per event type: each type does its own part, listener events are only counted', async (t) => {
  const pm = new FakePm();
  const paths = new FakePaths();
  const svc = new PmService({ pm, paths, manageEndpoints: false, now: () => 0 });
  await svc.start();
  t.teardown(() => svc.stop());
  const seen: string[] = [];
  svc.on('session', (e) => seen.push(`session ${e.type} ${e.token}`));
  svc.on('subflow', (e) => seen.push(`subflow ${e.type} ${e.subflow.saddr} backup=${e.subflow.backup} ${e.subflow.state}`));
  const conn = { token: 7, family: 4 as const, saddr: '10.1.1.1', daddr: '10.9.9.9', sport: 4000, dport: 443 };
  const sub = { token: 7, family: 4 as const, saddr: '10.2.2.2', daddr: '10.9.9.9', sport: 4001, dport: 443, locId: 1, remId: 0, backup: false };
  const ev = (e: MptcpEvent): void => void pm.emit('event', e);
  ev({ type: 'sub_established', ...sub, token: 99 });
  t.same(seen, [], 'a subflow of a connection from before the subscription is ignored');
  ev({ type: 'created', ...conn });
  ev({ type: 'created', ...conn });
  t.same(seen, ['session opened 7', 'subflow opened 10.1.1.1 backup=false established'], 'created opens the session and its initial subflow once');
  ev({ type: 'established', ...conn });
  ev({ type: 'established', ...conn });
  t.same(seen.slice(2), ['session established 7'], 'established once');
  ev({ type: 'announced', token: 7, remId: 3, family: 4, daddr: '10.9.9.10', dport: 5125 });
  t.same(svc.session(7)?.announcedPorts, { 3: 5125 });
  ev({ type: 'removed', token: 7, remId: 3 });
  t.same(svc.session(7)?.announced, {}, 'removed forgets the announcement');
  ev({ type: 'sub_established', ...sub });
  ev({ type: 'sub_priority', ...sub, backup: true });
  ev({ type: 'sub_closed', ...sub, error: 104 });
  t.same(seen.slice(3), [
    'subflow opened 10.2.2.2 backup=false established',
    'subflow priority 10.2.2.2 backup=true established',
    'subflow closed 10.2.2.2 backup=false closed',
  ]);
  t.equal(svc.session(7)?.subflows.find((f) => f.saddr === '10.2.2.2')?.error, 104);
  ev({ type: 'listener_created', family: 4, saddr: '0.0.0.0', sport: 443 });
  ev({ type: 'closed', token: 7 });
  t.same(seen.slice(6), ['session closed 7']);
  t.equal(svc.sessions().length, 0);
  const st = svc.stats();
  t.same(st.events, { sub_established: 2, created: 2, established: 2, announced: 1, removed: 1, sub_priority: 1, sub_closed: 1, listener_created: 1, closed: 1 });
  t.equal(st.subflowErrors, 1);
  t.same(st.subflowsOpened, { unknown: 2 });
});

// Per-radio address ids for M-UE sessions (board mueRadioAddresses): which cell addresses a
// connection accepted over one radio is told about (wiring/pm.ts radioAnnouncer), and that the
// pm service announces them once, at once, for connections the box accepted only.
import t from 'tap';
import type os from 'node:os';
import { PmService, type PathsLike } from '../../src/services/pm/index.js';
import type { PmConnectionView } from '../../src/services/pm/types.js';
import { radioAnnouncer } from '../../src/wiring/pm.js';
import { LocalAddresses } from '../../src/services/proxy/index.js';
import { FakePm, pmEvent } from '../helpers/pm-fakes.js';

const paths: PathsLike = { list: () => [], byAddress: () => undefined, on: () => undefined, off: () => undefined };

const nic = (address: string, cidr: string): os.NetworkInterfaceInfo =>
  (address.includes(':')
    ? { address, cidr, netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '00:00:00:00:00:00', internal: false, scopeid: 0 }
    : { address, cidr, netmask: '255.255.255.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: false });
const ifs = {
  ran0: [nic('10.71.1.1', '10.71.1.1/24'), nic('2001:db8:1::1', '2001:db8:1::1/64'), nic('fe80::1', 'fe80::1/64')],
  wap0: [nic('10.71.2.1', '10.71.2.1/24'), nic('2001:db8:2::1', '2001:db8:2::1/64')],
  lan0: [nic('192.168.1.1', '192.168.1.1/24')],
};
const view = (daddr: string): PmConnectionView => ({
  token: 1, family: 6, saddr: '::ffff:a47:1', daddr, sport: 9000, dport: 40000, serverSide: true, denyJoinInitial: false,
  state: 'established', since: '', subflows: [], announced: {}, announcedPorts: {},
});

t.test('radioAnnouncer: the cell\'s address on every other radio, id = 1 + its index in lan.interfaces', async (t) => {
  const a = radioAnnouncer({ lan: { interfaces: ['ran0', 'wap0'] }, accessNetworks: [] }, () => ifs);
  t.same(a(view('::ffff:a47:102')), [{ address: '10.71.2.1', id: 2 }], 'over cellular (hex-mapped spelling): the WLAN address');
  t.same(a(view('10.71.2.2')), [{ address: '10.71.1.1', id: 1 }], 'over WLAN: the cellular address');
  t.same(a(view('2001:db8:2::99')), [{ address: '2001:db8:1::1', id: 1 }], 'an IPv6 M-UE: the other radio\'s IPv6 address (never link-local)');
  t.same(a(view('192.168.1.50')), [], 'not from a radio of lan.interfaces: nothing');
  t.same(radioAnnouncer({ lan: { interfaces: ['ran0', 'wap0'] }, accessNetworks: [] }, () => ({ ran0: ifs.ran0 }))(view('10.71.1.2')), [], 'the other radio has no address (down): nothing');
  const acc = radioAnnouncer({ lan: { interfaces: ['lan0', 'ran0', 'wap0'] }, accessNetworks: [{ prefix: '10.71.1.0/24', access: 'cellular' }, { prefix: '10.71.2.0/24', access: 'wlan' }] }, () => ifs);
  t.same(acc(view('10.71.1.2')), [{ address: '10.71.2.1', id: 3 }], 'with access networks: only addresses inside them (not the wired LAN\'s), ids by lan.interfaces index');
});

t.test('radioAnnouncer over the LocalAddresses snapshot: no interface dump per connection, an address event seen at once', async (t) => {
  let reads = 0;
  let table: NodeJS.Dict<os.NetworkInterfaceInfo[]> = ifs;
  const now = 0; // the clock stands still: only refresh() (an rtnetlink address event) reads again
  const local = new LocalAddresses(() => (reads++, table), 1000, () => now, 250);
  local.refresh();
  const a = radioAnnouncer({ lan: { interfaces: ['ran0', 'wap0'] }, accessNetworks: [] }, local.interfaces);
  for (let i = 0; i < 50; i++) t.same(a(view('10.71.1.2')), [{ address: '10.71.2.1', id: 2 }]);
  t.equal(reads, 1, '50 established connections, the one read of the last address event');
  table = { ...ifs, wap0: [nic('10.71.2.7', '10.71.2.7/24')] };
  t.same(a(view('10.71.1.2')), [{ address: '10.71.2.1', id: 2 }], 'before the event: the snapshot');
  local.refresh(); // the WLAN radio's address changed: main.ts refreshes on the event
  t.same(a(view('10.71.1.2')), [{ address: '10.71.2.7', id: 2 }], 'after the event: the new address');
  t.equal(reads, 2);
});

t.test('PmService: announceOnAccept is asked once per accepted connection and each address announced', async (t) => {
  const pm = new FakePm();
  const sent: string[] = [];
  const asked: number[] = [];
  Object.assign(pm, { announce: async (token: number, a: { address: string; id: number }) => { sent.push(`${token}:${a.address}#${a.id}`); if (a.id === 9) throw new Error('EINVAL'); } });
  const svc = new PmService({ pm, paths, manageEndpoints: false, announceOnAccept: (s) => { asked.push(s.token); return [{ address: '10.71.2.1', id: 2 }, { address: '10.71.9.1', id: 9 }]; } });
  await svc.start();
  const ends = { token: 7, saddr: '::ffff:10.71.0.1', daddr: '::ffff:10.71.1.2', sport: 9000, dport: 41000, serverSide: true };
  pm.emit('event', pmEvent(1, ends)); // created
  t.same(sent, [], 'nothing before the connection is established');
  pm.emit('event', pmEvent(2, ends)); // established
  pm.emit('event', pmEvent(2, ends)); // a repeat changes nothing
  await new Promise((r) => setImmediate(r));
  t.same(asked, [7]);
  t.same(sent, ['7:10.71.2.1#2', '7:10.71.9.1#9'], 'both sent; a refusal is only logged');
  pm.emit('event', pmEvent(2, { ...ends, token: 8, serverSide: false })); // the box's own connection
  await new Promise((r) => setImmediate(r));
  t.same(asked, [7], 'a connection the box made is not asked about');
  svc.stop();
});

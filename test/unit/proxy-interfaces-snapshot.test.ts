// Per-session readers of the interfaces (an MPTCP upstream's source addresses, subflow access
// labels) use one snapshot, refreshed on address events and at most snapshotMaxAgeMs old: read
// per session, os.networkInterfaces() (two rtnetlink dumps) cost both Convert proxies about a
// millisecond of main thread per connection (docs/convert.md, "Where the time goes").
import t from 'tap';
import type os from 'node:os';
import { LocalAddresses, accessLabeler, listenerSpecs } from '../../src/services/proxy/index.js';
import type { BoardProfile } from '../../src/core/board.js';

const nic = (address: string): os.NetworkInterfaceInfo => ({ address, netmask: '255.255.255.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: false, cidr: `${address}/24` });

t.test('LocalAddresses.interfaces: one read per age, a refresh reads again', async (t) => {
  let reads = 0;
  let ifs: NodeJS.Dict<os.NetworkInterfaceInfo[]> = { wlan0: [nic('10.0.0.2')] };
  let now = 0;
  const local = new LocalAddresses(() => (reads++, ifs), 1000, () => now, 250);
  for (let i = 0; i < 100; i++) local.interfaces();
  t.equal(reads, 1, '100 sessions, one read');
  ifs = { wlan0: [nic('10.0.0.3')] };
  local.refresh(); // an rtnetlink address event
  t.equal(reads, 2);
  t.equal(local.interfaces()['wlan0']?.[0]?.address, '10.0.0.3', 'the event\'s change seen at once');
  now = 251;
  local.interfaces();
  t.equal(reads, 3, 'older than the age: read again');
  t.ok(local.has('10.0.0.3') || local.size > 0, 'the filter keys come from the same read');
});

t.test('listenerSpecs: an MPTCP upstream reads its source addresses from the given snapshot', async (t) => {
  let reads = 0;
  const board = {
    uplinks: [{ name: 'up-b', access: 'wlan', interface: 'wlan0', table: 22 }],
    listeners: [{ kind: 'transparent', host: '::', port: 15001, mptcp: true, upstream: 'mptcp' }],
  } as unknown as BoardProfile;
  const [spec] = listenerSpecs(board, { interfaces: () => (reads++, { wlan0: [nic('10.22.0.2')], lan0: [nic('10.13.0.1')] }) });
  t.same(spec!.upstream!.localAddresses, ['10.22.0.2'], 'the uplink\'s address only');
  t.equal(reads, 1);
  // A board without uplinks (a concentrator) labels without reading the interfaces at all.
  let labelReads = 0;
  const label = accessLabeler({ accessNetworks: [], uplinks: [] } as never, () => (labelReads++, {}));
  t.equal(label('10.1.2.3'), 'unknown');
  t.equal(labelReads, 0);
});

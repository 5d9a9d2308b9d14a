// An MPTCP upstream's candidate source addresses (the uplinks' addresses) come from an interface
// table that is read again only on refresh (an rtnetlink address event) or once it is older than
// maxAgeMs, not from a getifaddrs dump per connection (docs/relay.md, "The cell's CPU per
// connection"), and still follow the uplinks' addresses as they come and go.
import t from 'tap';
import type { BoardProfile } from '../../src/core/board.js';
import { LocalAddresses, accessLabeler, listenerSpecs, uplinkAddresses, uplinkSources } from '../../src/services/proxy/index.js';

type Ifs = Record<string, Array<{ address: string; family: 'IPv4' | 'IPv6'; internal: boolean }>>;
const v4 = (address: string): { address: string; family: 'IPv4'; internal: false } => ({ address, family: 'IPv4', internal: false });
const v6 = (address: string): { address: string; family: 'IPv6'; internal: false } => ({ address, family: 'IPv6', internal: false });

const board = {
  uplinks: [
    { name: 'up-a', access: 'cellular', interface: 'wwan0' },
    { name: 'up-b', access: 'wlan', interface: 'wlan0' },
  ],
  accessNetworks: [],
  listeners: [
    { kind: 'transparent', host: '::', port: 7001, mptcp: true, upstream: 'mptcp' },
    { kind: 'transparent', host: '::', port: 7002, mptcp: true, upstream: 'tcp' },
  ],
} as unknown as BoardProfile;

function fakeTable(initial: Ifs): { local: LocalAddresses; set(i: Ifs): void; reads: () => number; advance(ms: number): void } {
  let ifs = initial;
  let reads = 0;
  let now = 0;
  const local = new LocalAddresses(() => {
    reads++;
    return ifs as never;
  }, 1000, () => now, 1000);
  return { local, set: (i) => void (ifs = i), reads: () => reads, advance: (ms) => void (now += ms) };
}

t.test('an MPTCP upstream reads the table once, then follows refreshes and age', async (t) => {
  const f = fakeTable({ lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true }], wwan0: [v4('10.1.0.2'), v6('fe80::1'), v6('2001:db8:1::2')], wlan0: [v4('10.2.0.2')], lan0: [v4('192.168.1.1')] });
  const specs = listenerSpecs(board, { interfaces: () => f.local.interfaces() });
  const up = specs[0]!.upstream!;
  t.equal(up.mptcp, true);
  t.same(specs[1]!.upstream, { mptcp: false }, 'a TCP upstream has no source list');
  const first = up.localAddresses;
  t.same(first, ['10.1.0.2', '2001:db8:1::2', '10.2.0.2'], 'the uplinks only, no loopback, no link-local, no LAN');
  for (let i = 0; i < 1000; i++) t.equal(up.localAddresses, first, 'the same list for every connection until the table changes');
  t.equal(f.reads(), 1, 'one read of the interfaces for 1,001 connections');

  f.set({ wwan0: [v4('10.1.0.9')], wlan0: [v4('10.2.0.2')] });
  t.same(up.localAddresses, ['10.1.0.2', '2001:db8:1::2', '10.2.0.2'], 'no event and young: the table as it was');
  f.local.refresh(); // what main.ts does on each rtnetlink address event
  t.same(up.localAddresses, ['10.1.0.9', '10.2.0.2'], 'an address event: the new address at the next connection');
  t.equal(f.reads(), 2);

  f.set({ wlan0: [v4('10.2.0.2')] });
  f.advance(999);
  t.same(up.localAddresses, ['10.1.0.9', '10.2.0.2']);
  f.advance(2);
  t.same(up.localAddresses, ['10.2.0.2'], 'without an event, at most maxAgeMs late: a removed uplink address is no longer offered');
  t.equal(f.reads(), 3);
});

t.test('without a table provider each connection reads the interfaces as before', async (t) => {
  const specs = listenerSpecs(board);
  const a = specs[0]!.upstream!.localAddresses;
  t.ok(Array.isArray(a), 'a list (this host has no wwan0/wlan0, so usually empty)');
  t.same(a, uplinkAddresses(board), 'the same as reading them now');
});

t.test('uplinkSources recomputes only for a new table object', async (t) => {
  let table: Ifs = { wwan0: [v4('10.1.0.2')] };
  const get = uplinkSources(board, () => table as never);
  const a = get();
  t.equal(get(), a);
  table = { ...table };
  t.not(get(), a, 'a new table object: computed again');
  t.same(get(), a, 'with the same content');
});

t.test("the access labeller's fallback reads the given table", async (t) => {
  const f = fakeTable({ wwan0: [v4('10.1.0.2')], wlan0: [v4('10.2.0.2')] });
  const label = accessLabeler(board, () => f.local.interfaces());
  t.equal(label('10.1.0.2'), 'cellular');
  t.equal(label('10.2.0.2'), 'wlan');
  t.equal(label('10.3.0.2'), 'unknown');
  t.equal(f.reads(), 1, 'three labels, one read');
  f.set({ wlan0: [v4('10.3.0.2')] });
  f.local.refresh();
  t.equal(label('10.3.0.2'), 'wlan', 'follows a refresh');
});

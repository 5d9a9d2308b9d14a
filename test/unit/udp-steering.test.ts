import t from 'tap';
import { EventEmitter } from 'node:events';
import { buildUdpRuleset, QUIC_REJECT_LIMIT } from '../../src/services/udp/ruleset.js';
import { UdpSteering, type UdpPolicy, type UdpSteerBackend } from '../../src/services/udp/steering.js';
import type { PathEvent, PathView } from '../../src/services/paths/types.js';

const pv = (name: 'cellular' | 'wlan', state: 'up' | 'down', table: number): PathView => ({
  name, access: name, interface: name === 'cellular' ? 'wwan0' : 'wlan0', state, since: '', addresses: [], table, routing: 'installed', signal: { quality: 'unknown' },
});

function world(policy: Partial<UdpPolicy> = {}, subs: Array<{ key: string; prefixes: string[]; policy: Partial<UdpPolicy> }> = [], more: Partial<UdpSteerBackend> = {}) {
  const paths = new Map([['cellular', pv('cellular', 'up', 201)], ['wlan', pv('wlan', 'up', 202)]]);
  const ev = new EventEmitter<{ event: [PathEvent] }>();
  const pol = new EventEmitter();
  const applied: string[] = [];
  const deleted: Array<{ mark: number; source?: string }> = [];
  const rules: unknown[] = [];
  const backend: UdpSteerBackend = {
    apply: async (text) => void applied.push(text),
    ensureMarkRules: async (r) => void rules.push(...r),
    removeMarkRules: async () => undefined,
    deleteTable: async () => undefined,
    deleteFlows: async (f) => (deleted.push({ mark: f.mark, ...(f.source === undefined ? {} : { source: f.source }) }), 3),
    ...more,
  };
  const base: UdpPolicy = { mode: 'active-standby', preferred: 'wlan', ratio: { cellular: 50, wlan: 50 }, allowed: ['cellular', 'wlan'] };
  let fallback = { ...base, ...policy };
  let groups = subs.map((s) => ({ key: s.key, prefixes: s.prefixes, policy: { ...base, ...s.policy } }));
  const rtts: Record<string, { median?: number; min?: number }> = {};
  const s = new UdpSteering({
    lanInterfaces: ['lan0'],
    lanPrefixes: ['192.168.77.0/24'],
    paths: { list: () => [...paths.values()], on: (e, cb) => ev.on(e, cb), off: (e, cb) => ev.off(e, cb) },
    policy: { groups: () => groups, fallback: () => fallback, onChange: (f) => pol.on('change', f) },
    backend,
    rtt: (n) => rtts[n],
    recheckMs: 0,
  });
  const setPath = (name: 'cellular' | 'wlan', state: 'up' | 'down'): void => {
    const p = pv(name, state, name === 'cellular' ? 201 : 202);
    paths.set(name, p);
    ev.emit('event', { type: state === 'up' ? 'path-up' : 'path-down', path: p });
  };
  return {
    s, applied, deleted, rules, rtts, setPath,
    setPolicy: (p: Partial<UdpPolicy>) => {
      fallback = { ...fallback, ...p };
      pol.emit('change');
    },
    setGroups: (g: typeof groups) => {
      groups = g;
      pol.emit('change');
    },
    last: () => applied[applied.length - 1] ?? '',
  };
}

t.test('ruleset: one uplink, a numgen split, longest prefix first, NAT per uplink; bad input refused', async (t) => {
  const text = buildUdpRuleset({
    table: 'duocell_udp', lanInterfaces: ['lan0'], mask: 0xf00,
    uplinks: [{ name: 'cellular', interface: 'wwan0', mark: 0x100 }, { name: 'wlan', interface: 'wlan0', mark: 0x200 }],
    groups: [
      { prefixes: ['192.168.77.0/24'], decision: { kind: 'split', shares: [{ uplink: 'cellular', pct: 30 }, { uplink: 'wlan', pct: 70 }] } },
      { prefixes: ['192.168.77.9'], decision: { kind: 'uplink', uplink: 'cellular' } },
    ],
    fallback: { kind: 'none' },
    perSourceFlows: 64,
  });
  t.match(text, /ct mark set numgen inc mod 10 map \{ 0-2 : 0x100, 3-9 : 0x200 \}/, '30:70 as round robin over 10');
  t.ok(text.indexOf('ip saddr 192.168.77.9/32') < text.indexOf('ip saddr 192.168.77.0/24'), 'the device before its network');
  t.match(text, /ct mark & 0xf00 == 0x100 oifname "wwan0" masquerade/);
  t.match(text, /ct count over 64 \} counter name capped update @capdrops4 \{ ip saddr counter \} log/, 'refusals counted in total and per device');
  t.match(text, /add @flows6 \{ ip6 saddr ct count over 64 \} counter name capped update @capdrops6 \{ ip6 saddr counter \} log/);
  const cfg = { table: 'duocell_udp', lanInterfaces: ['lan0'], mask: 0xf00, uplinks: [{ name: 'a', interface: 'a0', mark: 0x100 }], groups: [], fallback: { kind: 'none' as const } };
  t.throws(() => buildUdpRuleset({ ...cfg, lanInterfaces: ['lan0"; flush ruleset'] }), { code: 'DC_CONFIG_INVALID' });
  t.throws(() => buildUdpRuleset({ ...cfg, groups: [{ prefixes: ['300.1.1.1'], decision: { kind: 'none' } }] }), { code: 'DC_CONFIG_INVALID' });
  t.throws(() => buildUdpRuleset({ ...cfg, uplinks: [{ name: 'a', interface: 'a0', mark: 0x1000 }] }), { code: 'DC_CONFIG_INVALID' }, 'mark outside the mask');
  t.throws(() => buildUdpRuleset({ ...cfg, fallback: { kind: 'split', shares: [{ uplink: 'a', pct: 60 }] } }), { code: 'DC_CONFIG_INVALID' }, 'shares ≠ 100');
  t.throws(() => buildUdpRuleset({ ...cfg, fallback: { kind: 'uplink', uplink: 'zz' } }), { code: 'DC_CONFIG_INVALID' });
});

t.test('active-standby: the preferred uplink; when it goes down, the standby and its flows are deleted', async (t) => {
  const w = world();
  await w.s.start();
  t.equal(w.rules.length, 2, 'one fwmark rule per uplink');
  t.match(w.last(), /chain d0 \{\n    ct mark set 0x200/, 'new flows → wlan (0x200)');
  w.setPath('wlan', 'down');
  await w.s.reconcile('test');
  t.match(w.last(), /ct mark set 0x100/, 'new flows → cellular');
  t.notMatch(w.last(), /ct mark set 0x200/);
  t.same(w.deleted, [{ mark: 0x200 }], "the dead uplink's flows are deleted once");
  t.equal(w.s.status().flowsMoved, 3);
  w.setPath('wlan', 'up');
  await w.s.reconcile('test');
  t.match(w.last(), /ct mark set 0x200/, 'back on the preferred for new flows');
  t.equal(w.deleted.length, 1, 'flows on the survivor stay where they are');
  await w.s.stop();
});

t.test('load-balancing splits by the ratio; one uplink left → all of it; nothing up → untouched', async (t) => {
  const w = world({ mode: 'load-balancing', ratio: { cellular: 25, wlan: 75 } });
  await w.s.start();
  t.match(w.last(), /numgen inc mod 4 map \{ 0 : 0x100, 1-3 : 0x200 \}/);
  w.setPath('cellular', 'down');
  await w.s.reconcile('test');
  t.match(w.last(), /ct mark set 0x200/);
  t.same(w.deleted, [{ mark: 0x100 }]);
  w.setPath('wlan', 'down');
  await w.s.reconcile('test');
  t.match(w.last(), /chain d0 \{\n    return/);
  await w.s.stop();
});

t.test('policy: an access leaving a subscriber\'s policy moves only that subscriber\'s flows', async (t) => {
  const w = world({}, [{ key: 'phone', prefixes: ['192.168.77.9'], policy: { mode: 'active-standby', preferred: 'wlan' } }]);
  await w.s.start();
  w.setGroups([{ key: 'phone', prefixes: ['192.168.77.9'], policy: { mode: 'active-standby', preferred: 'wlan', ratio: { cellular: 50, wlan: 50 }, allowed: ['cellular'] } }]);
  await w.s.reconcile('test');
  t.same(w.deleted, [{ mark: 0x200, source: '192.168.77.9' }], 'by source, not all flows');
  t.match(w.last(), /ip saddr 192.168.77.9\/32 goto d\d/);
  await w.s.stop();
});

t.test('smallest-delay follows the measured RTT, with hysteresis; priority leaves a queueing preferred path', async (t) => {
  const w = world({ mode: 'smallest-delay', preferred: 'cellular' });
  w.rtts.cellular = { median: 40, min: 38 };
  w.rtts.wlan = { median: 8, min: 7 };
  await w.s.start();
  t.match(w.last(), /ct mark set 0x200/, '8 ms beats 40 ms');
  w.rtts.cellular = { median: 7.5, min: 7 };
  await w.s.reconcile('test');
  t.match(w.last(), /ct mark set 0x200/, 'a 0.5 ms edge is noise: no switch');
  w.rtts.cellular = { median: 3, min: 3 };
  await w.s.reconcile('test');
  t.match(w.last(), /ct mark set 0x100/, 'clearly better: switch');
  t.equal(w.deleted.length, 0, 'existing flows are not moved by smallest-delay choices');
  w.setPolicy({ mode: 'priority', preferred: 'wlan' });
  w.rtts.wlan = { median: 30, min: 8 };
  await w.s.reconcile('test');
  t.match(w.last(), /ct mark set 0x100/, 'wlan queues (30 ms vs 8 ms floor): new flows → cellular');
  w.rtts.wlan = { median: 9, min: 8 };
  await w.s.reconcile('test');
  t.match(w.last(), /ct mark set 0x200/);
  await w.s.stop();
});

t.test('quic: block answers UDP/443 of the blocking group with port-unreachable; a device allowed inside a blocking network is let through', async (t) => {
  const { buildUdpRuleset: build } = await import('../../src/services/udp/ruleset.js');
  const base = { table: 'duocell_udp', lanInterfaces: ['lan0'], uplinks: [{ name: 'cellular', interface: 'wwan0', mark: 0x100 }, { name: 'wlan', interface: 'wlan0', mark: 0x200 }], mask: 0xf00 };
  const none = build({ ...base, groups: [], fallback: { kind: 'uplink', uplink: 'wlan' } });
  t.notMatch(none, /reject/, 'nothing blocked by default');
  const r = build({ ...base, groups: [{ prefixes: ['192.168.77.0/24'], decision: { kind: 'none' }, quic: 'block' }, { prefixes: ['192.168.77.9'], decision: { kind: 'none' }, quic: 'allow' }], fallback: { kind: 'none' } });
  t.match(r, /iifname \{ "lan0" \} udp dport 443 jump quic/);
  const lines = r.split('\n').map((l) => l.trim());
  const allow = lines.indexOf('ip saddr 192.168.77.9/32 return');
  // the uplink mark is cleared before the reject: with fwmark_reflect = 1 the ICMP error would take it and leave by the uplink
  const block = lines.indexOf('ip saddr 192.168.77.0/24 goto quic_reject');
  t.ok(allow > 0 && block > allow, 'the device (longer prefix) is decided before its network');
  t.ok(lines.includes('counter name quic_blocked meta mark set meta mark & 0xfffff0ff reject with icmpx type port-unreachable'), 'the uplink mark is cleared before the reject');
  const all = build({ ...base, groups: [], fallback: { kind: 'none' }, fallbackQuic: 'block' });
  t.match(all, /chain quic \{\n {4}goto quic_reject\n {2}\}/, 'the default policy blocks every other source');
  t.throws(() => build({ ...base, groups: [], fallback: { kind: 'none' }, fallbackQuic: 'maybe' as 'block' }), { code: 'DC_CONFIG_INVALID' });
});

t.test('quic: block — the ICMP errors are limited per source and in total, sent only for forwarded LAN UDP/443, and nothing else changes', async (t) => {
  const base = { table: 'duocell_udp', lanInterfaces: ['lan0', 'lan1'], lanPrefixes: ['192.168.77.0/24', 'fd00:77::/64'], uplinks: [{ name: 'wlan', interface: 'wlan0', mark: 0x200 }], mask: 0xf00 };
  const groups = [{ prefixes: ['192.168.77.0/24', 'fd00:77::/64'], decision: { kind: 'uplink' as const, uplink: 'wlan' } }];
  const allowed = buildUdpRuleset({ ...base, groups, fallback: { kind: 'none' } });
  const blocked = buildUdpRuleset({ ...base, groups: groups.map((g) => ({ ...g, quic: 'block' as const })), fallback: { kind: 'none' } });
  const chain = (r: string, name: string): string[] => {
    const from = r.indexOf(`  chain ${name} {`);
    return from < 0 ? [] : r.slice(from, r.indexOf('\n  }', from)).split('\n').slice(1).map((l) => l.trim());
  };
  const { perSource: s, total: all } = QUIC_REJECT_LIMIT;
  t.same(chain(blocked, 'quic_reject'), [
    `meta nfproto ipv4 update @quic_src4 { ip saddr limit rate over ${s.perSecond}/second burst ${s.burst} packets } counter name quic_limited drop`,
    `meta nfproto ipv6 update @quic_src6 { ip6 saddr limit rate over ${s.perSecond}/second burst ${s.burst} packets } counter name quic_limited drop`,
    `limit rate over ${all.perSecond}/second burst ${all.burst} packets counter name quic_limited drop`,
    'counter name quic_blocked meta mark set meta mark & 0xfffff0ff reject with icmpx type port-unreachable',
  ], 'over the per-source or the total limit: dropped and counted; under both: rejected (icmpx: IPv4 and IPv6 alike)');
  t.ok(s.perSecond <= 1 && s.burst <= 6, 'per source no more than the kernel\'s default ICMP budget per destination (1/s, burst 6)');
  t.match(blocked, /set quic_src4 \{ type ipv4_addr; size 65536; flags dynamic,timeout; timeout 1m; \}/, 'the per-source buckets are bounded and expire');
  t.match(blocked, /set quic_src6 \{ type ipv6_addr; size 65536; flags dynamic,timeout; timeout 1m; \}/);
  t.same(chain(blocked, 'forward'), ['type filter hook forward priority filter; policy accept;', 'iifname { "lan0", "lan1" } udp dport 443 jump quic'], 'only UDP/443 forwarded from a LAN interface: the errors go back to a LAN device');
  t.equal(blocked.match(/ reject /g)?.length, 1, 'one reject statement, in the chain only chain forward reaches');
  t.notMatch(blocked, /hook (input|output)/, 'the box\'s own ports are untouched (no input or output hook)');
  t.notMatch(blocked, /policy drop|accept$/m, 'no chain policy changes and no rule accepts anything');
  // everything else is the same text as without the block
  const strip = (r: string): string => r.replace(/\n {2}counter quic_limited \{ \}/, '').replace(/\n {2}chain forward \{[\s\S]*?\n {2}chain quic_reject \{[\s\S]*?\n {2}\}/, '');
  t.equal(strip(blocked), strip(allowed), 'the rest of the ruleset is unchanged by quic: block');
  t.notMatch(allowed, /quic_reject|quic_src/, 'nothing of it without a block');
});

t.test('counters: per-device cap drops, QUIC rejects and QUIC over the reject limits add up across ruleset swaps (a new table starts at 0)', async (t) => {
  const none = world();
  await none.s.start();
  t.same(await none.s.counters(), { capDrops: {}, quicBlocked: 0, quicLimited: 0 }, 'a backend without counters: none');
  await none.s.stop();

  let live: { counters: Record<string, number>; sets: Record<string, Record<string, number>> } = { counters: { quic_blocked: 4, quic_limited: 7, capped: 6 }, sets: { capdrops4: { '192.168.77.66': 5 }, capdrops6: { 'fd00:77::66': 1 } } };
  const tables: string[] = [];
  const w = world({}, [], {
    counters: async (table) => {
      tables.push(table);
      return structuredClone(live);
    },
    apply: async () => {
      live = { counters: { quic_blocked: 0, quic_limited: 0, capped: 0 }, sets: { capdrops4: {}, capdrops6: {} } }; // nft made the table anew
    },
  });
  await w.s.start();
  t.same(await w.s.counters(), { capDrops: {}, quicBlocked: 0, quicLimited: 0 }, 'the first table starts at 0');
  live = { counters: { quic_blocked: 4, quic_limited: 7, capped: 6 }, sets: { capdrops4: { '192.168.77.66': 5 }, capdrops6: { 'fd00:77::66': 1 } } };
  t.same(await w.s.counters(), { capDrops: { '192.168.77.66': 5, 'fd00:77::66': 1 }, quicBlocked: 4, quicLimited: 7 }, 'v4 and v6 devices, and QUIC');
  t.ok(tables.length > 0 && tables.every((x) => x === 'duocell_udp'), 'the steering table is read');
  w.setPath('wlan', 'down'); // a new ruleset replaces the table: its counts are kept
  await w.s.reconcile('test');
  t.same(await w.s.counters(), { capDrops: { '192.168.77.66': 5, 'fd00:77::66': 1 }, quicBlocked: 4, quicLimited: 7 }, 'kept over the swap');
  live = { counters: { quic_blocked: 2, quic_limited: 1 }, sets: { capdrops4: { '192.168.77.66': 1, '192.168.77.67': 3 } } };
  t.same(await w.s.counters(), { capDrops: { '192.168.77.66': 6, 'fd00:77::66': 1, '192.168.77.67': 3 }, quicBlocked: 6, quicLimited: 8 }, 'and added to');
  await w.s.stop();
});

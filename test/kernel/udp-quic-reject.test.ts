// Needs root, network namespaces and nft (runs in CI as root).
// quic: block in the kernel, IPv4 and IPv6: the product's UDP ruleset (services/udp/ruleset.ts,
// loaded with nft -f as the product's backend does) answers a blocked device's UDP/443 with ICMP
// port-unreachable, which its connected UDP socket reports as ECONNREFUSED after that one datagram;
// and the ruleset's own limits hold (QUIC_REJECT_LIMIT): per source, and in total. For the limit
// parts the kernel's own ICMP limiter is switched off in the cell's namespace (icmp_ratelimit 0),
// so that what is measured is the ruleset's limit, which no sysctl loosens. What is over the limit
// reaches the API and /metrics as quicLimited (duocell_udp_quic_limited_total): read here as the
// product reads it (nft -j list table → parseTableCounters → udpCounters).
//
//   lan [lan0]──[lan0] cell [up0]──[up0] srv (nothing listens on UDP/443)
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Topology, netnsUnavailable, sh } from '../helpers/hosts.js';
import { parseTableCounters } from '../../src/drivers/nft/counters.js';
import { buildUdpRuleset, QUIC_REJECT_LIMIT } from '../../src/services/udp/ruleset.js';
import { udpCounters } from '../../src/services/udp/steering.js';

const why = (await netnsUnavailable()) || ((await sh('nft', ['--version'], { allowFail: true })) === '' ? 'nft is not installed' : false);

const N = 186;
const SRV4 = `10.${N}.3.2`;
const SRV6 = `fd86:${N}:3::2`;
/** Extra LAN sources for the total limit: more than total.burst / perSource.burst of them. */
const SOURCES = Array.from({ length: 30 }, (_, i) => `10.${N}.4.${10 + i}`);

/**
 * In the LAN namespace. `connected FAMILY HOST`: a connected UDP socket (as browsers' QUIC stacks
 * use) sends one 1200-byte datagram to HOST:443 and waits 10 s for a socket error; prints
 * {code, ms} (ms from the send). `burst FAMILY HOST N SRC…`: from each source address, N datagrams
 * on an unconnected socket, as fast as they go; prints {sent, ms} (ms from the first send to the last).
 */
const CLIENT = `
import dgram from 'node:dgram';
const [mode, fam, host, ...rest] = process.argv.slice(1);
const now = () => Number(process.hrtime.bigint()) / 1e6;
const out = (o) => { process.stdout.write(JSON.stringify(o) + '\\n'); process.exit(0); };
if (mode === 'connected') {
  const s = dgram.createSocket(fam);
  let t0 = 0;
  s.once('error', (e) => out({ code: e.code, ms: now() - t0 }));
  s.connect(443, host, () => {
    t0 = now();
    s.send(Buffer.alloc(1200));
    setTimeout(() => out({ code: 'none', ms: now() - t0 }), 10000);
  });
} else {
  const [n, ...srcs] = rest;
  const socks = await Promise.all(srcs.map((a) => new Promise((r) => { const s = dgram.createSocket(fam); s.bind(0, a, () => r(s)); })));
  const t0 = now();
  let left = socks.length * Number(n);
  for (let i = 0; i < Number(n); i++) for (const s of socks) s.send(Buffer.alloc(1200), 443, host, () => { if (--left === 0) out({ sent: socks.length * Number(n), ms: now() - t0 }); });
}
`;

t.test('quic: block — UDP/443 from a blocked device gets ICMP port-unreachable at once (IPv4, IPv6), and the reject limits hold (needs root)', { skip: why === false ? false : why, timeout: 120_000 }, async (t) => {
  const topo = new Topology(`qfr${process.pid % 10000}`);
  t.teardown(() => topo.destroy());
  const lan = await topo.host('lan');
  const cell = await topo.host('cell', { forward: true });
  const srv = await topo.host('srv');
  await topo.link(lan, 'lan0', cell, 'lan0', { a: [`10.${N}.4.2/24`, `fd86:${N}:4::2/64`, ...SOURCES.map((a) => `${a}/24`)], b: [`10.${N}.4.1/24`, `fd86:${N}:4::1/64`] });
  await topo.link(cell, 'up0', srv, 'up0', { a: [`10.${N}.3.1/24`, `fd86:${N}:3::1/64`], b: [`${SRV4}/24`, `${SRV6}/64`] });
  await lan.route('default', `10.${N}.4.1`);
  await lan.route('default', `fd86:${N}:4::1`);
  await srv.route('default', `10.${N}.3.1`);
  await srv.route('default', `fd86:${N}:3::1`);

  const ruleset = buildUdpRuleset({
    table: 'duocell_udp',
    lanInterfaces: ['lan0'],
    lanPrefixes: [`10.${N}.4.0/24`, `fd86:${N}:4::/64`],
    uplinks: [{ name: 'wlan', interface: 'up0', mark: 0x200 }],
    mask: 0xf00,
    groups: [{ prefixes: [`10.${N}.4.0/24`, `fd86:${N}:4::/64`], decision: { kind: 'uplink', uplink: 'wlan' }, quic: 'block' }],
    fallback: { kind: 'none' },
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qfr-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const nft = async (h: typeof lan, text: string): Promise<void> => {
    const f = path.join(dir, `${h.ns}.nft`);
    fs.writeFileSync(f, text);
    await h.exec('nft', ['-f', f]);
  };
  await nft(cell, ruleset);
  // the ICMP errors the LAN namespace receives, counted there
  await nft(
    lan,
    'table inet qfr_seen {\n  counter v4 { }\n  counter v6 { }\n  chain input {\n    type filter hook input priority filter; policy accept;\n    icmp type destination-unreachable icmp code port-unreachable counter name v4\n    icmpv6 type destination-unreachable icmpv6 code port-unreachable counter name v6\n  }\n}\n',
  );
  const counter = async (h: typeof lan, table: string, name: string): Promise<number> => Number(/packets (\d+)/.exec(await h.exec('nft', ['list', 'counter', 'inet', table, name]))?.[1] ?? NaN);
  const seen = async (): Promise<{ v4: number; v6: number }> => ({ v4: await counter(lan, 'qfr_seen', 'v4'), v6: await counter(lan, 'qfr_seen', 'v6') });
  const cellCounts = async (): Promise<{ blocked: number; limited: number }> => ({ blocked: await counter(cell, 'duocell_udp', 'quic_blocked'), limited: await counter(cell, 'duocell_udp', 'quic_limited') });
  // as the product reads the live table for GET /api/v1/udp and /metrics (drivers/nft tableCounters)
  const exposed = async (): Promise<{ quicBlocked: number; quicLimited: number }> => udpCounters(parseTableCounters(await cell.exec('nft', ['-j', 'list', 'table', 'inet', 'duocell_udp'])));
  const client = async (...args: string[]): Promise<{ code?: string; ms: number; sent?: number }> => JSON.parse((await lan.exec(process.execPath, ['--input-type=module', '-e', CLIENT, ...args])).trim()) as { code?: string; ms: number; sent?: number };

  // 1. one datagram, the kernel's own limiter as shipped: the error comes back for it
  for (const [fam, host] of [['udp4', SRV4], ['udp6', SRV6]] as const) {
    const r = await client('connected', fam, host);
    t.equal(r.code, 'ECONNREFUSED', `${fam}: the connected socket reports ECONNREFUSED after its one datagram (${r.ms.toFixed(1)} ms; it would have waited 10 s)`);
  }
  t.same(await seen(), { v4: 1, v6: 1 }, 'one ICMP port-unreachable per family reached the device');
  t.same(await cellCounts(), { blocked: 2, limited: 0 }, 'the cell counted two rejects and nothing over the limit');
  t.match(await exposed(), { quicBlocked: 2, quicLimited: 0 }, 'exposed: quicBlocked 2, quicLimited 0');

  // 2. the limits, with the kernel's own ICMP limiter out of the way in the cell
  await cell.sysctl('net.ipv4.icmp_ratelimit', 0);
  await cell.sysctl('net.ipv6.icmp.ratelimit', 0);
  await cell.sysctl('net.ipv4.icmp_msgs_per_sec', 100000);
  await cell.sysctl('net.ipv4.icmp_msgs_burst', 100000);
  const { perSource: per, total } = QUIC_REJECT_LIMIT;
  // allowed in ms from a full bucket: the burst plus the rate over the time, plus one for the edge
  const allowed = (l: { perSecond: number; burst: number }, ms: number, already = 0): number => l.burst + Math.ceil((l.perSecond * ms) / 1000) + 1 - already;

  // per source: 100 datagrams from one device (v4; its bucket already spent one) and from another (v6)
  const before = await seen();
  const c0 = await cellCounts();
  const b4 = await client('burst', 'udp4', SRV4, '100', `10.${N}.4.2`);
  const b6 = await client('burst', 'udp6', SRV6, '100', `fd86:${N}:4::2`);
  await new Promise((r) => setTimeout(r, 300));
  const after = await seen();
  const c1 = await cellCounts();
  const got4 = after.v4 - before.v4;
  const got6 = after.v6 - before.v6;
  t.comment(`per source: 100 datagrams in ${b4.ms.toFixed(1)} ms (v4) / ${b6.ms.toFixed(1)} ms (v6) → ${got4} / ${got6} ICMP errors`);
  t.ok(got4 >= 1 && got4 <= allowed(per, b4.ms + 300), `IPv4: ${got4} errors for 100 datagrams, within the per-source limit (${per.perSecond}/s, burst ${per.burst})`);
  t.ok(got6 >= 1 && got6 <= allowed(per, b6.ms + 300), `IPv6: ${got6} errors for 100 datagrams, within the per-source limit`);
  t.equal(c1.blocked - c0.blocked, got4 + got6, 'every reject the cell counted reached the device');
  t.equal(c1.limited - c0.limited, 200 - got4 - got6, 'the rest was dropped and counted as over the limit');
  const e1 = await exposed();
  t.ok(e1.quicLimited > 0, `exposed quicLimited moved when the per-source limit bit: 0 → ${e1.quicLimited}`);
  t.match(e1, { quicBlocked: c1.blocked, quicLimited: c1.limited }, 'exposed counters are the table\'s');

  // total: 30 other devices, 5 datagrams each, each under its own limit
  const tb = await client('burst', 'udp4', SRV4, '5', ...SOURCES);
  await new Promise((r) => setTimeout(r, 300));
  const gotAll = (await seen()).v4 - after.v4;
  const c2 = await cellCounts();
  t.comment(`total: ${tb.sent} datagrams from ${SOURCES.length} sources in ${tb.ms.toFixed(1)} ms → ${gotAll} ICMP errors`);
  t.ok(5 <= per.burst, 'each source stays within its own burst');
  t.ok(gotAll <= allowed(total, tb.ms + 300), `${gotAll} errors for ${tb.sent} datagrams: within the total limit (${total.perSecond}/s, burst ${total.burst})`);
  if (allowed(total, tb.ms + 300) < (tb.sent ?? 0)) t.ok(c2.limited - c1.limited >= 1, `the total limit dropped ${c2.limited - c1.limited} (sent in ${tb.ms.toFixed(0)} ms)`);
  else t.comment(`sending took ${tb.ms.toFixed(0)} ms: too slow to exceed the total limit (machine under load); its bound was still checked`);
  t.equal(c2.blocked - c1.blocked, gotAll, 'every reject counted reached a device');
  t.match(await exposed(), { quicBlocked: c2.blocked, quicLimited: c2.limited }, 'exposed counters after the total limit');
});

import { DuocellError } from '../../core/errors.js';
import { formatIPv4Number, ipFamily, mappedIPv4, parsePrefix } from '../../core/net.js';

/**
 * The UDP steering ruleset: each new UDP flow from the LAN gets an uplink (ATSSS-LL style, per
 * flow), built from validated values only.
 *
 *  prerouting (mangle + 1, after the TCP intercept table)
 *    ├─ UDP from a LAN interface whose flow has no uplink mark yet ─► choose
 *    │     ├─ to the box itself, broadcast, multicast, a LAN prefix → untouched
 *    │     ├─ over the per-source flow cap                       → counted (per device), logged, dropped
 *    │     └─ source prefix (longest first) ─► its group's chain ─► ct mark = uplink's mark
 *    │          one uplink:   ct mark set M
 *    │          split:        ct mark set numgen inc mod 2 map { 0 : M1, 1 : M2 }  (50:50; 25:75 → mod 4)
 *    └─ UDP from a LAN interface with an uplink ct mark ─► meta mark = ct mark (every packet)
 *  routing: `ip rule fwmark M/MASK lookup <the uplink's table>` (drivers/nft ensureMarkRules)
 *  postrouting (srcnat): UDP with ct mark M out of the uplink's interface ─► masquerade
 *
 * Only a flow's first packet chooses; a flow keeps its uplink (and its NAT binding) for its
 * life. Moving flows off an uplink = deleting their conntrack entries (services/udp/steering.ts):
 * the next packet is NEW again, chooses again, and is NATed out of the survivor.
 */

export interface UdpUplink {
  name: string;
  interface: string;
  /** Its fwmark / ct mark (inside `mask`, non-zero). */
  mark: number;
}

/** Where a group's new flows go: one uplink, a split in percent by flows, or nowhere (main routing). */
export type UdpDecision =
  | { kind: 'uplink'; uplink: string }
  | { kind: 'split'; shares: Array<{ uplink: string; pct: number }> }
  | { kind: 'none' };

export interface UdpGroup {
  /** Source addresses or prefixes of the group's devices. */
  prefixes: string[];
  decision: UdpDecision;
  /** `block`: the group's UDP/443 (QUIC) is answered with ICMP port-unreachable (browsers fall back to TCP). */
  quic?: 'allow' | 'block';
}

export interface UdpRulesetConfig {
  table: string;
  lanInterfaces: string[];
  /** Destinations never steered (the LAN's own prefixes). */
  lanPrefixes?: string[];
  uplinks: UdpUplink[];
  mask: number;
  groups: UdpGroup[];
  /** Sources that match no group. */
  fallback: UdpDecision;
  /** QUIC for sources that match no group. */
  fallbackQuic?: 'allow' | 'block';
  /** New UDP flows one source may hold at once before the excess is dropped (0: no cap). */
  perSourceFlows?: number;
}

const IFNAME = /^[A-Za-z0-9_.:-]{1,15}$/;
const TABLE = /^[a-z][a-z0-9_]{0,30}$/;
const bad = (what: string): never => {
  throw new DuocellError('DC_CONFIG_INVALID', `udp steering: ${what}`);
};
const hex = (n: number): string => `0x${n.toString(16)}`;

function checkDecision(d: UdpDecision, names: Set<string>): void {
  if (d.kind === 'none') return;
  if (d.kind === 'uplink') {
    if (!names.has(d.uplink)) bad(`unknown uplink ${JSON.stringify(d.uplink)}`);
    return;
  }
  if (d.kind !== 'split' || d.shares.length === 0) bad('a split needs shares');
  let sum = 0;
  for (const s of d.shares) {
    if (!names.has(s.uplink)) bad(`unknown uplink ${JSON.stringify(s.uplink)}`);
    if (!Number.isInteger(s.pct) || s.pct < 0 || s.pct > 100) bad('a share must be an integer percent');
    sum += s.pct;
  }
  if (sum !== 100) bad(`shares must add up to 100, not ${sum}`);
}

/** A prefix in canonical text, with its family and length (for ordering), or a coded error. */
function prefixOf(s: string): { text: string; v6: boolean; len: number } {
  const withLen = s.includes('/') ? s : `${s}/${ipFamily(s) === 6 ? 128 : 32}`;
  const p = parsePrefix(withLen);
  if (p === undefined) return bad(`bad address or prefix ${JSON.stringify(s)}`);
  const [addr, len] = withLen.split('/') as [string, string];
  // an IPv4-mapped prefix (::ffff:10.0.0.0/104, ::ffff:a00:0/104) names IPv4 devices: the
  // ruleset sees their packets as IPv4, so it gets the IPv4 prefix
  const v4 = p.family === 6 && p.bits >= 96 ? mappedIPv4(addr) : undefined;
  if (v4 !== undefined) return { text: `${formatIPv4Number(v4)}/${p.bits - 96}`, v6: false, len: p.bits - 96 };
  return { text: `${addr}/${len}`, v6: ipFamily(addr) === 6, len: Number(len) };
}

export function validateUdpSteering(c: UdpRulesetConfig): void {
  if (!TABLE.test(c.table)) bad(`bad table name ${JSON.stringify(c.table)}`);
  if (c.lanInterfaces.length === 0) bad('no LAN interface');
  for (const i of [...c.lanInterfaces, ...c.uplinks.map((u) => u.interface)]) if (!IFNAME.test(i)) bad(`bad interface name ${JSON.stringify(i)}`);
  if (!Number.isInteger(c.mask) || c.mask <= 0 || c.mask > 0x7fffffff) bad('mask must be a positive integer');
  const names = new Set<string>();
  const marks = new Set<number>();
  for (const u of c.uplinks) {
    if (names.has(u.name)) bad(`two uplinks named ${u.name}`);
    if (!Number.isInteger(u.mark) || u.mark <= 0 || (u.mark & ~c.mask) !== 0 || marks.has(u.mark)) bad(`uplink ${u.name}: mark must be distinct, non-zero and inside the mask`);
    names.add(u.name);
    marks.add(u.mark);
  }
  for (const g of c.groups) {
    g.prefixes.forEach(prefixOf);
    checkDecision(g.decision, names);
  }
  for (const p of c.lanPrefixes ?? []) prefixOf(p);
  checkDecision(c.fallback, names);
  for (const q of [c.fallbackQuic, ...c.groups.map((g) => g.quic)]) if (q !== undefined && q !== 'allow' && q !== 'block') bad('quic must be allow or block');
  if (c.perSourceFlows !== undefined && (!Number.isInteger(c.perSourceFlows) || c.perSourceFlows < 0 || c.perSourceFlows > 10_000_000)) bad('perSourceFlows must be an integer ≥ 0');
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

function decisionChain(d: UdpDecision, marks: Map<string, number>): string[] {
  if (d.kind === 'none') return ['    return'];
  if (d.kind === 'uplink') return [`    ct mark set ${hex(marks.get(d.uplink)!)}`];
  // Round robin over the ratio reduced to lowest terms (50:50 → mod 2 { 0, 1 }): a counter over
  // 100 slots would hand out blocks of 50 flows, not a split.
  const shares = d.shares.filter((s) => s.pct > 0);
  if (shares.length === 1) return [`    ct mark set ${hex(marks.get(shares[0]!.uplink)!)}`];
  const g = shares.reduce((acc, s) => gcd(acc, s.pct), 0);
  const parts: string[] = [];
  let from = 0;
  for (const s of shares) {
    const n = s.pct / g;
    parts.push(`${n === 1 ? from : `${from}-${from + n - 1}`} : ${hex(marks.get(s.uplink)!)}`);
    from += n;
  }
  return [`    ct mark set numgen inc mod ${from} map { ${parts.join(', ')} }`];
}

/**
 * How many ICMP errors `quic: block` sends. An ICMP error is never larger than the datagram that
 * caused it, but a LAN device could still aim it at another (forged source): per source at most the
 * kernel's own default budget per destination (net.ipv4.icmp_ratelimit 1000 ms, burst 6), written
 * here so that no sysctl loosens it, and all sources together a bounded total. Over either limit the
 * datagram is dropped silently and counted (`quic_limited`): that client waits for its own timeout.
 */
export const QUIC_REJECT_LIMIT = { perSource: { perSecond: 1, burst: 6 }, total: { perSecond: 100, burst: 50 } } as const;

/** The chain every blocked UDP/443 datagram goes to: the limits, then the reject (see QUIC_REJECT_LIMIT). */
function quicReject(mask: number): string[] {
  const { perSource: s, total: t } = QUIC_REJECT_LIMIT;
  const per = `limit rate over ${s.perSecond}/second burst ${s.burst} packets`;
  return [
    // one token bucket per source address, forgotten a minute after its last datagram; a full set
    // (65,536 sources) adds no one, and the total limit still holds
    '  set quic_src4 { type ipv4_addr; size 65536; flags dynamic,timeout; timeout 1m; }',
    '  set quic_src6 { type ipv6_addr; size 65536; flags dynamic,timeout; timeout 1m; }',
    '  chain quic_reject {',
    `    meta nfproto ipv4 update @quic_src4 { ip saddr ${per} } counter name quic_limited drop`,
    `    meta nfproto ipv6 update @quic_src6 { ip6 saddr ${per} } counter name quic_limited drop`,
    `    limit rate over ${t.perSecond}/second burst ${t.burst} packets counter name quic_limited drop`,
    // The uplink mark (set in prerouting) is cleared first: with net.ipv4/ipv6.fwmark_reflect = 1, as
    // the box ships (systemd/60-duocell.conf), the ICMP error takes the packet's mark, whose rule
    // routed it out of the uplink instead of back to the device (test/kernel/udp-quic-fallback.test.ts).
    // The error goes to the datagram's source, which came in on a LAN interface (chain forward).
    `    counter name quic_blocked meta mark set meta mark & ${hex(~mask >>> 0)} reject with icmpx type port-unreachable`,
    '  }',
  ];
}

export function buildUdpRuleset(c: UdpRulesetConfig): string {
  validateUdpSteering(c);
  const marks = new Map(c.uplinks.map((u) => [u.name, u.mark]));
  const m = hex(c.mask);
  const ifs = c.lanInterfaces.map((i) => `"${i}"`).join(', ');
  const L: string[] = [];
  L.push(`add table inet ${c.table}`, `delete table inet ${c.table}`, `table inet ${c.table} {`);
  const cap = c.perSourceFlows ?? 0;
  L.push('  counter quic_blocked { }', '  counter quic_limited { }');
  // capped: all refusals; capdrops4/6: refusals per device (nft -j list table: one counter per address)
  if (cap > 0) L.push('  set flows4 { type ipv4_addr; flags dynamic; }', '  set flows6 { type ipv6_addr; flags dynamic; }', '  counter capped { }', '  set capdrops4 { type ipv4_addr; size 65536; flags dynamic; }', '  set capdrops6 { type ipv6_addr; size 65536; flags dynamic; }');
  L.push('  chain prerouting {', '    type filter hook prerouting priority mangle + 1; policy accept;');
  // a flow without an uplink yet (not `ct state new`: a UDP flow stays NEW until the peer replies)
  L.push(`    iifname { ${ifs} } meta l4proto udp ct mark & ${m} == 0 jump choose`);
  // (nft cannot merge two registers: the whole meta mark is set; UDP from the LAN carries no other mark)
  L.push(`    iifname { ${ifs} } meta l4proto udp ct mark & ${m} != 0 meta mark set ct mark`);
  L.push('  }');
  // decisions: one chain per distinct decision
  const chains = new Map<string, string>();
  const chainOf = (d: UdpDecision): string => {
    const key = JSON.stringify(d);
    let n = chains.get(key);
    if (n === undefined) {
      n = `d${chains.size}`;
      chains.set(key, n);
    }
    return n;
  };
  L.push('  chain choose {');
  L.push('    fib daddr type { local, broadcast, multicast } return');
  const lan = (c.lanPrefixes ?? []).map(prefixOf);
  const lan4 = lan.filter((p) => !p.v6).map((p) => p.text);
  const lan6 = lan.filter((p) => p.v6).map((p) => p.text);
  if (lan4.length > 0) L.push(`    ip daddr { ${lan4.join(', ')} } return`);
  if (lan6.length > 0) L.push(`    ip6 daddr { ${lan6.join(', ')} } return`);
  if (cap > 0) {
    L.push(`    meta nfproto ipv4 add @flows4 { ip saddr ct count over ${cap} } counter name capped update @capdrops4 { ip saddr counter } log prefix "duocell udp flow cap: " level warn drop`);
    L.push(`    meta nfproto ipv6 add @flows6 { ip6 saddr ct count over ${cap} } counter name capped update @capdrops6 { ip6 saddr counter } log prefix "duocell udp flow cap: " level warn drop`);
  }
  // longest prefix first: a device's own entry wins over its network's
  const rules = c.groups
    .flatMap((g) => g.prefixes.map((p) => ({ p: prefixOf(p), chain: chainOf(g.decision) })))
    .sort((a, b) => b.p.len - a.p.len);
  const seen = new Set<string>();
  for (const r of rules) {
    if (seen.has(r.p.text)) continue;
    seen.add(r.p.text);
    L.push(`    ${r.p.v6 ? 'ip6' : 'ip'} saddr ${r.p.text} goto ${r.chain}`);
  }
  L.push(`    goto ${chainOf(c.fallback)}`);
  L.push('  }');
  for (const [key, name] of chains) {
    L.push(`  chain ${name} {`, ...decisionChain(JSON.parse(key) as UdpDecision, marks), '  }');
  }
  // QUIC block: UDP/443 of a blocking group answered at once with ICMP port-unreachable (reject is
  // allowed in forward only: the box's own ports are never touched); longest prefix first, so a
  // device's own choice wins over its network's
  const quic = c.groups
    .flatMap((g) => g.prefixes.map((p) => ({ p: prefixOf(p), block: g.quic === 'block' })))
    .sort((a, b) => b.p.len - a.p.len);
  if (c.fallbackQuic === 'block' || quic.some((q) => q.block)) {
    L.push('  chain forward {', '    type filter hook forward priority filter; policy accept;');
    L.push(`    iifname { ${ifs} } udp dport 443 jump quic`);
    L.push('  }', '  chain quic {');
    const done = new Set<string>();
    for (const q of quic) {
      if (done.has(q.p.text)) continue;
      done.add(q.p.text);
      L.push(`    ${q.p.v6 ? 'ip6' : 'ip'} saddr ${q.p.text} ${q.block ? 'goto quic_reject' : 'return'}`);
    }
    if (c.fallbackQuic === 'block') L.push('    goto quic_reject');
    L.push('  }', ...quicReject(c.mask));
  }
  L.push('  chain postrouting {', '    type nat hook postrouting priority srcnat; policy accept;');
  for (const u of c.uplinks) L.push(`    meta l4proto udp ct mark & ${m} == ${hex(u.mark)} oifname "${u.interface}" masquerade`);
  L.push('  }');
  L.push('}');
  return L.join('\n') + '\n';
}

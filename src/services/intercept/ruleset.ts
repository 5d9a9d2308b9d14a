import { ipFamily } from '../../core/net.js';
import { DuocellError } from '../../core/errors.js';

/**
 * The steering ruleset, built from validated values only (ports are integers, interface names
 * match a strict pattern, addresses parse): nothing a user typed is pasted into nft text.
 *
 *  prerouting (mangle)
 *    ├─ packets of intercepted connections (ct mark) → meta mark → delivered locally
 *    └─ SYN (no ACK) from a LAN interface ─► intercept
 *         ├─ port not in the liveness set       → untouched (duocell hung or gone)
 *         ├─ to one of the box's own addresses  → untouched (the box's own sockets answer, the
 *         │                                       proxy never relays into the box itself)
 *         ├─ TCP-MD5 (19) or TCP-AO (29) option → untouched (accept)
 *         ├─ destination in the M-server set    → untouched (end to end MPTCP)
 *         └─ dport P and (MPTCP option | claimed) ─► tp_P
 *              ├─ over the SYN rate or per-source limit → untouched
 *              └─ tproxy to :P, then mark + ct mark
 *
 * Fail-open: if no socket listens on :P (duocell died), `tproxy` finds none and the rule stops
 * there — the marks after it are never set, so the SYN is forwarded as if duocell did not exist.
 * Fail-open when hung: a stopped (SIGSTOP) or wedged duocell still owns its sockets, so the set
 * `alive` holds each intercepted port with a short timeout (`livenessMs`) that the running event
 * loop renews (services/intercept/index.ts, one add/delete/add transaction over nfnetlink:
 * drivers/nft/elements.ts); when renewals stop, the elements expire and new SYNs
 * pass untouched until they resume.
 */

export interface InterceptPort {
  port: number;
  /** 'mptcp': only SYNs carrying the MPTCP option (M-UEs); 'all': plain TCP too (N-UE pooling). */
  claim: 'mptcp' | 'all';
}

export interface InterceptConfig {
  table: string;
  lanInterfaces: string[];
  ports: InterceptPort[];
  mark: number;
  /** Intercepted SYNs per second (all sources) before the excess passes untouched. */
  synRate: number;
  synBurst: number;
  /** Concurrent intercepted connections per source address before the excess passes untouched. */
  perSourceMax: number;
  /** Interception lapses this long after the last liveness renewal (ms); 0: no liveness set. */
  livenessMs?: number;
  /** Static M-server entries to bypass (besides what detection adds at run time). */
  bypass?: Array<{ address: string; port: number }>;
}

/** The liveness set's name (renewed by Intercept while the event loop runs). */
export const ALIVE_SET = 'alive';

const IFNAME = /^[A-Za-z0-9_.:-]{1,15}$/;
const TABLE = /^[a-z][a-z0-9_]{0,30}$/;

function int(x: number, lo: number, hi: number, what: string): number {
  if (!Number.isInteger(x) || x < lo || x > hi) throw new DuocellError('DC_CONFIG_INVALID', `steering: ${what} must be an integer ${lo}..${hi}`);
  return x;
}

export function validateIntercept(c: InterceptConfig): InterceptConfig {
  if (!TABLE.test(c.table)) throw new DuocellError('DC_CONFIG_INVALID', `steering: bad table name ${JSON.stringify(c.table)}`);
  if (c.lanInterfaces.length === 0) throw new DuocellError('DC_CONFIG_INVALID', 'steering: no LAN interface to intercept on');
  for (const i of c.lanInterfaces) if (!IFNAME.test(i)) throw new DuocellError('DC_CONFIG_INVALID', `steering: bad interface name ${JSON.stringify(i)}`);
  for (const p of c.ports) {
    int(p.port, 1, 65535, 'port');
    if (p.claim !== 'mptcp' && p.claim !== 'all') throw new DuocellError('DC_CONFIG_INVALID', 'steering: claim must be mptcp|all');
  }
  int(c.mark, 1, 0x7fffffff, 'mark');
  int(c.synRate, 1, 10_000_000, 'synRate');
  int(c.synBurst, 1, 10_000_000, 'synBurst');
  int(c.perSourceMax, 1, 10_000_000, 'perSourceMax');
  if (c.livenessMs !== undefined && c.livenessMs !== 0) int(c.livenessMs, 300, 3_600_000, 'livenessMs');
  for (const b of c.bypass ?? []) {
    if (ipFamily(b.address) === 0) throw new DuocellError('DC_CONFIG_INVALID', `steering: bad bypass address ${JSON.stringify(b.address)}`);
    int(b.port, 1, 65535, 'bypass port');
  }
  return c;
}

export function buildRuleset(cIn: InterceptConfig): string {
  const c = validateIntercept(cIn);
  const m = `0x${c.mark.toString(16)}`;
  const ifs = c.lanInterfaces.map((i) => `"${i}"`).join(', ');
  const lines: string[] = [];
  // "add table" + "delete table" + full definition: one transaction that replaces the old table.
  lines.push(`add table inet ${c.table}`, `delete table inet ${c.table}`, `table inet ${c.table} {`);
  const b4 = (c.bypass ?? []).filter((b) => ipFamily(b.address) === 4).map((b) => `${b.address} . ${b.port}`);
  const b6 = (c.bypass ?? []).filter((b) => ipFamily(b.address) === 6).map((b) => `${b.address} . ${b.port}`);
  lines.push(`  set mservers4 { type ipv4_addr . inet_service; flags timeout; ${b4.length > 0 ? `elements = { ${b4.join(', ')} }; ` : ''}}`);
  lines.push(`  set mservers6 { type ipv6_addr . inet_service; flags timeout; ${b6.length > 0 ? `elements = { ${b6.join(', ')} }; ` : ''}}`);
  const live = c.livenessMs ?? 0;
  if (live > 0) {
    // Elements start present: interception begins as soon as the table exists, and lapses unless renewed.
    const ports = [...new Set(c.ports.map((p) => p.port))];
    lines.push(`  set ${ALIVE_SET} { type inet_service; flags timeout; elements = { ${ports.map((p) => `${p} timeout ${live}ms`).join(', ')} }; }`);
  }
  lines.push(`  set persrc4 { type ipv4_addr; flags dynamic; }`, `  set persrc6 { type ipv6_addr; flags dynamic; }`);
  lines.push(`  chain prerouting {`, `    type filter hook prerouting priority mangle; policy accept;`);
  lines.push(`    meta l4proto tcp ct mark & ${m} == ${m} meta mark set meta mark | ${m} accept`);
  lines.push(`    iifname { ${ifs} } tcp flags & (syn | ack) == syn goto intercept`);
  lines.push(`  }`);
  lines.push(`  chain intercept {`);
  if (live > 0) lines.push(`    tcp dport != @${ALIVE_SET} accept`);
  // the box's own addresses are answered by its own sockets (the page on 443, say), never relayed
  lines.push(`    fib daddr type local accept`);
  lines.push(`    tcp option md5sig exists accept`, `    tcp option 29 exists accept`);
  lines.push(`    ip daddr . tcp dport @mservers4 accept`, `    ip6 daddr . tcp dport @mservers6 accept`);
  for (const p of c.ports) {
    lines.push(`    tcp dport ${p.port} ${p.claim === 'mptcp' ? 'tcp option mptcp exists ' : ''}jump tp_${p.port}`);
  }
  lines.push(`  }`);
  for (const p of c.ports) {
    lines.push(`  chain tp_${p.port} {`);
    lines.push(`    limit rate over ${c.synRate}/second burst ${c.synBurst} packets accept`);
    lines.push(`    meta nfproto ipv4 add @persrc4 { ip saddr ct count over ${c.perSourceMax} } accept`);
    lines.push(`    meta nfproto ipv6 add @persrc6 { ip6 saddr ct count over ${c.perSourceMax} } accept`);
    lines.push(`    meta nfproto ipv4 meta l4proto tcp tproxy ip to :${p.port} meta mark set meta mark | ${m} ct mark set ct mark | ${m} accept`);
    lines.push(`    meta nfproto ipv6 meta l4proto tcp tproxy ip6 to :${p.port} meta mark set meta mark | ${m} ct mark set ct mark | ${m} accept`);
    lines.push(`  }`);
  }
  lines.push(`}`);
  return lines.join('\n') + '\n';
}

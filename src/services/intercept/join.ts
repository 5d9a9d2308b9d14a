import { ipFamily } from '../../core/net.js';
import { DuocellError } from '../../core/errors.js';

/**
 * The join DNAT (docs/relay.md "Upload handover: whose time it is"): a cell with the userspace
 * path manager rewrites the destination of an M-UE's MP_JOIN SYN that comes in on a LAN radio for
 * an explicit MPTCP listener's address to that radio's own address (`redirect`: the incoming
 * interface's primary address of the family, port kept). The M-UE still joins the service
 * address as every stack does (no ADD_ADDR, no C flag); the cell's kernel sees the join arrive at
 * the radio's address and gives it a local address id of its own (mptcp_userspace_pm_get_local_id),
 * which the M-UE reads from the MP_JOIN SYN-ACK as the subflow's remote id. Conntrack undoes the
 * rewrite on the replies, so the M-UE sees the service address answer.
 *
 * What it buys: the initial subflow alone keeps id 0, so when the initial subflow's radio dies the
 * handover's REMOVE_ADDR id 0 (services/pm/withdraw.ts) closes only that subflow at the M-UE,
 * which reinjects at once instead of waiting for its stale timers.
 *
 *  prerouting (nat, dstnat; after the intercept table's mangle chain)
 *    └─ from a LAN radio that has an address of the family, to listener address:port (a wildcard
 *       listener: any local address), SYN without ACK, MPTCP option subtype 1 (MP_JOIN) ─► redirect
 *
 * Only MP_JOIN SYNs match: no other packet is NATed (conntrack keeps a null binding for the rest).
 * Transparent listeners are never matched: their joins go to the intercepted server's address, not
 * to a local one, and the join DNAT names only explicit listeners' local addresses (docs/relay.md).
 * A radio without an address of the family is left out: `redirect` drops what it cannot rewrite.
 */
export interface JoinDnatConfig {
  table: string;
  /** LAN radios and the address families they have an address of (at start). */
  radios: Array<{ name: string; families: Array<4 | 6> }>;
  /** Explicit MPTCP listeners; a wildcard host ('0.0.0.0', '::') matches any local address of its family ('::' both). */
  listeners: Array<{ host: string; port: number }>;
}

const IFNAME = /^[A-Za-z0-9_.:-]{1,15}$/;
const TABLE = /^[a-z][a-z0-9_]{0,30}$/;

export function validateJoinDnat(c: JoinDnatConfig): JoinDnatConfig {
  if (!TABLE.test(c.table)) throw new DuocellError('DC_CONFIG_INVALID', `join DNAT: bad table name ${JSON.stringify(c.table)}`);
  for (const r of c.radios) if (!IFNAME.test(r.name)) throw new DuocellError('DC_CONFIG_INVALID', `join DNAT: bad interface name ${JSON.stringify(r.name)}`);
  for (const l of c.listeners) {
    if (ipFamily(l.host) === 0) throw new DuocellError('DC_CONFIG_INVALID', `join DNAT: bad listener address ${JSON.stringify(l.host)}`);
    if (!Number.isInteger(l.port) || l.port < 1 || l.port > 65535) throw new DuocellError('DC_CONFIG_INVALID', 'join DNAT: port must be an integer 1..65535');
  }
  return c;
}

/** The rule lines (empty when nothing can match). */
function rules(c: JoinDnatConfig): string[] {
  const out: string[] = [];
  const join = 'tcp flags & (syn | ack) == syn tcp option mptcp subtype 1 redirect';
  for (const l of c.listeners) {
    const fam = ipFamily(l.host);
    const any = l.host === '0.0.0.0' || l.host === '::';
    // '::' takes IPv4 too (a dual-stack socket) unless the host disables it: match both.
    const fams: Array<4 | 6> = l.host === '::' ? [4, 6] : [fam as 4 | 6];
    for (const f of fams) {
      const ifs = c.radios.filter((r) => r.families.includes(f)).map((r) => `"${r.name}"`);
      if (ifs.length === 0) continue;
      const dst = any ? 'fib daddr type local' : `${f === 4 ? 'ip' : 'ip6'} daddr ${l.host}`;
      out.push(`    iifname { ${ifs.join(', ')} } meta nfproto ${f === 4 ? 'ipv4' : 'ipv6'} ${dst} tcp dport ${l.port} ${join}`);
    }
  }
  return [...new Set(out)];
}

/** The table's text (one transaction that replaces an old one), or undefined when no rule applies. */
export function buildJoinDnat(cIn: JoinDnatConfig): string | undefined {
  const c = validateJoinDnat(cIn);
  const rs = rules(c);
  if (rs.length === 0) return undefined;
  return [
    `add table inet ${c.table}`,
    `delete table inet ${c.table}`,
    `table inet ${c.table} {`,
    `  chain prerouting {`,
    `    type nat hook prerouting priority dstnat; policy accept;`,
    ...rs,
    `  }`,
    `}`,
  ].join('\n') + '\n';
}

import { DuocellError } from '../../core/errors.js';
import { canonicalAddress, ipFamily, parsePrefix } from '../../core/net.js';

/**
 * The BIRD 2 configuration of one concentrator of an anycast pool, from its board profile
 * (`anycast.protocol` and `anycast.bird`): what `duocell anycast bird-config` prints, what the
 * simulated pool (src/sim/pool.ts) and the pool tests run. Pure: text out, no I/O.
 *
 *   router id ROUTER_ID;
 *   protocol device                      interfaces (scan time)
 *   protocol bfd                         timers of the sessions BGP asks for (interval × multiplier)
 *   protocol static PROTOCOL disabled    the anycast prefix(es) via "lo": duocell enables it
 *                                        (announce) while it can serve, disables it (withdraw)
 *                                        on stop; the unit's ExecStopPost disables it too
 *   protocol bgp NAME (one per neighbor) bfd on; import none; export only PROTOCOL's routes
 *
 * One address family per instance: the prefixes and the neighbors are all IPv4 or all IPv6
 * (the BGP channel carries the family of its session).
 */

export interface BirdNeighbor {
  /** The edge router's address. */
  address: string;
  as: number;
  /** This host's address toward it (default: BIRD picks). */
  local?: string;
  /** The BGP protocol's name (default `edge`, or `edge1`… with several neighbors). */
  name?: string;
}

export interface BirdProfile {
  /** BIRD's router id: an IPv4 address unique in the pool (usually the host's own). */
  routerId: string;
  localAs: number;
  /** The pool's shared address(es), e.g. "192.0.2.80/32". */
  prefixes: string[];
  neighbors: BirdNeighbor[];
  /** BFD timers; false: no BFD (not recommended: then only the BGP hold time notices a dead host). Default 100 ms × 3. */
  bfd?: { intervalMs: number; multiplier: number } | false;
  /** BGP timers in seconds (defaults 9 / 3 / 5). */
  holdTime?: number;
  keepaliveTime?: number;
  connectRetryTime?: number;
  /** How often BIRD rescans interfaces, seconds (default 10). */
  scanTime?: number;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

function bad(where: string, msg: string): never {
  throw new DuocellError('DC_CONFIG_INVALID', `${where}: ${msg}`);
}

const isInt = (v: unknown, lo: number, hi: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;
const asn = (v: unknown, where: string): number => (isInt(v, 1, 4294967295) ? v : bad(where, 'expected an AS number 1–4294967295'));

/** Check a raw profile (board JSON or CLI flags); a typed copy with addresses in canonical form. */
export function birdProfile(raw: unknown, where = 'anycast.bird'): BirdProfile {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad(where, 'expected an object');
  const r = raw as Record<string, unknown>;
  const known = ['routerId', 'localAs', 'prefixes', 'neighbors', 'bfd', 'holdTime', 'keepaliveTime', 'connectRetryTime', 'scanTime'];
  for (const k of Object.keys(r)) if (!known.includes(k)) bad(`${where}.${k}`, 'unknown field');
  const routerId = typeof r.routerId === 'string' && ipFamily(r.routerId) === 4 ? canonicalAddress(r.routerId)! : bad(`${where}.routerId`, 'expected an IPv4 address');
  const localAs = asn(r.localAs, `${where}.localAs`);
  if (!Array.isArray(r.prefixes) || r.prefixes.length === 0 || r.prefixes.length > 64) bad(`${where}.prefixes`, 'expected 1–64 prefixes (the anycast address as ADDRESS/32 or /128)');
  const prefixes = (r.prefixes as unknown[]).map((p, i) => {
    const pp = typeof p === 'string' && p.includes('/') ? parsePrefix(p) : undefined;
    if (pp === undefined) bad(`${where}.prefixes[${i}]`, `${JSON.stringify(p)} is not a prefix (ADDRESS/LENGTH)`);
    const addr = canonicalAddress((p as string).slice(0, (p as string).indexOf('/')))!;
    if (parsePrefix(addr)!.value !== pp.value) bad(`${where}.prefixes[${i}]`, `${p} has bits set beyond its length`);
    return `${addr}/${pp.bits}`;
  });
  const family = ipFamily(prefixes[0]!.slice(0, prefixes[0]!.indexOf('/')));
  if (prefixes.some((p) => ipFamily(p.slice(0, p.indexOf('/'))) !== family)) bad(`${where}.prefixes`, 'IPv4 and IPv6 prefixes together: one family per instance');
  if (!Array.isArray(r.neighbors) || r.neighbors.length === 0 || r.neighbors.length > 16) bad(`${where}.neighbors`, 'expected 1–16 neighbors');
  const raws = r.neighbors as unknown[];
  const neighbors = raws.map((n, i): BirdNeighbor => {
    const w = `${where}.neighbors[${i}]`;
    if (typeof n !== 'object' || n === null) bad(w, 'expected {address, as, local?, name?}');
    const o = n as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!['address', 'as', 'local', 'name'].includes(k)) bad(`${w}.${k}`, 'unknown field');
    if (typeof o.address !== 'string' || ipFamily(o.address) !== family) bad(`${w}.address`, `expected an IPv${family} address (the prefixes' family)`);
    if (o.local !== undefined && (typeof o.local !== 'string' || ipFamily(o.local) !== family)) bad(`${w}.local`, `expected an IPv${family} address`);
    if (o.name !== undefined && (typeof o.name !== 'string' || !NAME.test(o.name))) bad(`${w}.name`, 'expected a BIRD protocol name');
    return {
      address: canonicalAddress(o.address)!,
      as: asn(o.as, `${w}.as`),
      ...(typeof o.local === 'string' ? { local: canonicalAddress(o.local)! } : {}),
      name: typeof o.name === 'string' ? o.name : raws.length === 1 ? 'edge' : `edge${i + 1}`,
    };
  });
  if (new Set(neighbors.map((n) => n.name)).size !== neighbors.length) bad(`${where}.neighbors`, 'duplicate protocol names');
  let bfd: BirdProfile['bfd'] = { intervalMs: 100, multiplier: 3 };
  if (r.bfd === false) bfd = false;
  else if (r.bfd !== undefined) {
    const b = r.bfd as Record<string, unknown>;
    if (typeof b !== 'object' || b === null || !isInt(b.intervalMs, 10, 60_000) || !isInt(b.multiplier, 1, 255)) bad(`${where}.bfd`, 'expected {intervalMs: 10–60000, multiplier: 1–255} or false');
    bfd = { intervalMs: b.intervalMs as number, multiplier: b.multiplier as number };
  }
  const secs = (k: string, lo: number, hi: number): number | undefined => (r[k] === undefined ? undefined : isInt(r[k], lo, hi) ? r[k] : bad(`${where}.${k}`, `expected whole seconds ${lo}–${hi}`));
  const holdTime = secs('holdTime', 3, 65535);
  const keepaliveTime = secs('keepaliveTime', 1, 65535);
  const connectRetryTime = secs('connectRetryTime', 1, 65535);
  const scanTime = secs('scanTime', 1, 3600);
  if (holdTime !== undefined && keepaliveTime !== undefined && keepaliveTime >= holdTime) bad(`${where}.keepaliveTime`, 'must be below holdTime');
  return {
    routerId,
    localAs,
    prefixes,
    neighbors,
    bfd,
    ...(holdTime === undefined ? {} : { holdTime }),
    ...(keepaliveTime === undefined ? {} : { keepaliveTime }),
    ...(connectRetryTime === undefined ? {} : { connectRetryTime }),
    ...(scanTime === undefined ? {} : { scanTime }),
  };
}

/**
 * The configuration text. `protocol` is the board's `anycast.protocol`: the name duocell and the
 * unit's ExecStopPost enable / disable. `title` goes into the header comment.
 */
export function birdConfig(protocol: string, raw: BirdProfile, title = 'a duocell concentrator'): string {
  if (!NAME.test(protocol)) bad('anycast.protocol', 'expected a BIRD protocol name');
  const p = birdProfile(raw);
  if (p.neighbors.some((n) => n.name === protocol)) bad('anycast.bird.neighbors', `a neighbor's protocol is named ${protocol}, the announcement's name`);
  const fam = p.prefixes[0]!.includes(':') ? 'ipv6' : 'ipv4';
  const timers = [
    `hold time ${p.holdTime ?? 9};`,
    `keepalive time ${p.keepaliveTime ?? 3};`,
    `connect retry time ${p.connectRetryTime ?? 5};`,
  ].join(' ');
  const lines = [
    `# BIRD 2 configuration of ${title.replace(/[\r\n]+/g, ' ')}.`,
    '# Written by `duocell anycast bird-config`: change the board profile and write it again.',
    `# duocell enables protocol ${protocol} (announces the pool's address) while it can serve and`,
    '# disables it (withdraws) first when it stops; the unit\'s ExecStopPost disables it however',
    '# duocell ended. Check: bird -p -c FILE',
    `router id ${p.routerId};`,
    `protocol device { scan time ${p.scanTime ?? 10}; }`,
    ...(p.bfd === false ? [] : [`protocol bfd { interface "*" { min rx interval ${p.bfd!.intervalMs} ms; min tx interval ${p.bfd!.intervalMs} ms; multiplier ${p.bfd!.multiplier}; }; }`]),
    `protocol static ${protocol} { disabled; ${fam}; ${p.prefixes.map((x) => `route ${x} via "lo";`).join(' ')} }`,
    ...p.neighbors.map(
      (n) =>
        `protocol bgp ${n.name} { ${n.local === undefined ? 'local' : `local ${n.local}`} as ${p.localAs}; neighbor ${n.address} as ${n.as}; ${p.bfd === false ? '' : 'bfd on; '}${timers} ${fam} { import none; export where proto = "${protocol}"; }; }`,
    ),
    '',
  ];
  return lines.join('\n');
}

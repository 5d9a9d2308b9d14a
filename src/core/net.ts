import net from 'node:net';

/**
 * Address helpers shared by every layer: parsing, prefixes, IPv4-mapped IPv6. Pure.
 *
 * This is the one place where numeric address text is read and written:
 * - parseIPv4Number / parseIPv6Groups are strict (no leading zeros in IPv4 octets, no zone ids,
 *   no hostnames, at most one `::`, an embedded dotted quad only in the last 32 bits) and
 *   allocation-light (no regular expressions, no node:net);
 * - formatIPv4Number / formatIPv6Groups write the canonical text (RFC 5952 for IPv6: lower
 *   case, no leading zeros, the longest run of two or more zero groups as `::`, the first on a
 *   tie).
 * Other layers keep their own representation (store: 32-bit words, protocols: 16 bytes) and
 * convert from and to the 16-bit groups used here.
 */

/** 4 or 6 for a numeric address (an IPv6 zone id allowed), else 0 (as node:net's isIP). Never throws. */
export function ipFamily(address: string): 0 | 4 | 6 {
  return typeof address === 'string' ? (net.isIP(address) as 0 | 4 | 6) : 0;
}

/** An IPv6 text without its zone id (`fe80::1%eth0` → `fe80::1`); an empty zone (`fe80::1%`) is left for the parser to refuse. */
function withoutZone(s: string): string {
  const zone = s.indexOf('%');
  return zone === -1 || zone === s.length - 1 ? s : s.slice(0, zone);
}

/**
 * The IPv4 address (as a 32-bit number) that an IPv4-mapped IPv6 address carries, in any of its
 * spellings (`::ffff:10.71.0.1`, `::ffff:a47:1` as the netlink codec writes it,
 * `0:0:0:0:0:ffff:a47:1`, `::FFFF:0A47:0001`, with a zone id, which is ignored); undefined for
 * anything else (an IPv4 address, another IPv6 address, not an address). Only ::ffff:0:0/96
 * is IPv4-mapped: IPv4-compatible `::a.b.c.d` and NAT64 `64:ff9b::/96` stay IPv6.
 */
export function mappedIPv4(address: string): number | undefined {
  if (typeof address !== 'string' || address.indexOf(':') === -1) return undefined;
  const g = parseIPv6Groups(withoutZone(address));
  if (g === undefined || g[0] !== 0 || g[1] !== 0 || g[2] !== 0 || g[3] !== 0 || g[4] !== 0 || g[5] !== 0xffff) return undefined;
  return ((g[6]! << 16) | g[7]!) >>> 0;
}

/**
 * The family of the address a text names, by value: 4 for IPv4 and for IPv4-mapped IPv6 in any
 * spelling, 6 for other IPv6 (a zone id allowed), 0 for anything else. (ipFamily gives the
 * family of the text: 6 for `::ffff:a47:1`, as node:net and a dual-stack socket see it.)
 */
export function addressFamily(address: string): 0 | 4 | 6 {
  const f = ipFamily(address);
  return f === 6 && mappedIPv4(address) !== undefined ? 4 : f;
}

/**
 * The dotted IPv4 address of an IPv4-mapped IPv6 address in any spelling (see mappedIPv4):
 * `::ffff:a47:1` → `10.71.0.1`; anything else is returned unchanged (an IPv4 address, another
 * IPv6 address, text that is not an address). Never throws.
 */
export function unmapV4(address: string): string {
  const v4 = mappedIPv4(address);
  return v4 === undefined ? address : formatIPv4Number(v4);
}

/** host:port text with brackets for IPv6. */
export function hostPort(address: string, port: number): string {
  return net.isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
}

/** Parse `host:port` / `[v6]:port`. */
export function parseHostPort(s: string): { host: string; port: number } | undefined {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(s) ?? /^([^:]+):(\d{1,5})$/.exec(s);
  if (m === null) return undefined;
  const port = Number(m[2]);
  if (port > 65535) return undefined;
  return { host: m[1]!, port };
}

/** A strict dotted-quad IPv4 address as an unsigned 32-bit number; undefined if it is not one. */
export function parseIPv4Number(s: string): number | undefined {
  let acc = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return undefined; // leading zero ("01") is ambiguous (octal)
      part = part * 10 + (c - 48);
      if (part > 255) return undefined;
      digits++;
    } else if (c === 46) {
      if (digits === 0 || dots === 3) return undefined;
      acc = acc * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else {
      return undefined;
    }
  }
  if (digits === 0 || dots !== 3) return undefined;
  return (acc * 256 + part) >>> 0;
}

/** Dotted-quad text of an unsigned 32-bit IPv4 address. */
export function formatIPv4Number(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/**
 * A strict numeric IPv6 address (no zone id, no prefix) as its eight 16-bit groups, most
 * significant first; undefined if it is not one. `::ffff:192.0.2.1` is accepted (the dotted
 * quad fills the last two groups) and stays IPv6 here: callers decide what IPv4-mapped means.
 */
export function parseIPv6Groups(s: string): number[] | undefined {
  if (s.length < 2 || s.length > 45) return undefined;
  const groups: number[] = [];
  let gap = -1;
  let i = 0;
  if (s.charCodeAt(0) === 58) {
    if (s.charCodeAt(1) !== 58) return undefined; // a single leading colon
    gap = 0;
    i = 2;
    if (s.length === 2) return [0, 0, 0, 0, 0, 0, 0, 0];
  }
  while (i < s.length) {
    // one group, or an embedded IPv4 address at the end
    let j = i;
    let v = 0;
    while (j < s.length && j - i < 5) {
      const c = s.charCodeAt(j);
      let d: number;
      if (c >= 48 && c <= 57) d = c - 48;
      else if (c >= 97 && c <= 102) d = c - 87;
      else if (c >= 65 && c <= 70) d = c - 55;
      else break;
      v = v * 16 + d;
      j++;
    }
    if (j < s.length && s.charCodeAt(j) === 46) {
      const v4 = groups.length > 6 ? undefined : parseIPv4Number(s.slice(i));
      if (v4 === undefined) return undefined;
      groups.push(v4 >>> 16, v4 & 0xffff);
      break;
    }
    if (j === i || j - i > 4) return undefined;
    groups.push(v);
    if (j === s.length) break;
    if (s.charCodeAt(j) !== 58) return undefined;
    if (j + 1 < s.length && s.charCodeAt(j + 1) === 58) {
      if (gap !== -1) return undefined;
      gap = groups.length;
      i = j + 2;
    } else {
      i = j + 1;
      if (i === s.length) return undefined; // a trailing single colon
    }
  }
  if (gap === -1) return groups.length === 8 ? groups : undefined;
  if (groups.length > 7) return undefined; // `::` stands for at least one zero group
  groups.splice(gap, 0, ...new Array<number>(8 - groups.length).fill(0));
  return groups;
}

/** RFC 5952 text of eight 16-bit groups, all in hex (an IPv4-mapped address is not given its dotted form here). */
export function formatIPv6Groups(g: ArrayLike<number>): string {
  let best = -1;
  let bestLen = 1; // a single zero group is not compressed (RFC 5952 4.2.2)
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === best) {
      out += '::';
      i += bestLen - 1;
      continue;
    }
    if (i > 0 && i !== best + bestLen) out += ':';
    out += g[i]!.toString(16);
  }
  return out;
}

/**
 * One text per numeric address: IPv4 dotted (also an IPv4-mapped IPv6 address, in any
 * spelling), IPv6 in RFC 5952 form; undefined if `s` is not a numeric address (a zone id
 * included). Never throws.
 */
export function canonicalAddress(s: string): string | undefined {
  if (typeof s !== 'string') return undefined;
  const v4 = parseIPv4Number(s);
  if (v4 !== undefined) return formatIPv4Number(v4);
  const g = parseIPv6Groups(s);
  if (g === undefined) return undefined;
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) return formatIPv4Number(((g[6]! << 16) | g[7]!) >>> 0);
  return formatIPv6Groups(g);
}

/**
 * The key to compare or index an address by: its canonical text (canonicalAddress), or the text
 * itself when it is not a numeric address (a hostname, a zoned IPv6 address: `fe80::1%eth0`),
 * so two spellings of one address share a key and nothing is lost. An IPv4-mapped address is
 * keyed by its IPv4 address even with a zone id (which means nothing for IPv4). Never throws.
 */
export function addressKey(s: string): string {
  return canonicalAddress(unmapV4(s)) ?? s;
}

/** Do two texts name the same address (`10.71.0.1`, `::ffff:a47:1`, `::FFFF:10.71.0.1`…)? */
export function sameAddress(a: string, b: string): boolean {
  return a === b || addressKey(a) === addressKey(b);
}

/**
 * The value of a numeric address, IPv4-mapped IPv6 addresses (any spelling) as IPv4; an IPv6
 * zone id is ignored. undefined if `a` is not a numeric address.
 */
function addressValue(a: string): { family: 4 | 6; value: bigint } | undefined {
  if (typeof a !== 'string') return undefined;
  const v4 = parseIPv4Number(a) ?? mappedIPv4(a);
  if (v4 !== undefined) return { family: 4, value: BigInt(v4) };
  const g = parseIPv6Groups(withoutZone(a));
  if (g === undefined) return undefined;
  let acc = 0n;
  for (const x of g) acc = (acc << 16n) | BigInt(x);
  return { family: 6, value: acc };
}

const maskOf = (bits: number, max: number): bigint => (bits <= 0 ? 0n : ((1n << BigInt(bits)) - 1n) << BigInt(max - bits));
/** ::ffff:0:0 — the IPv4-mapped range ::ffff:0:0/96. */
const MAPPED = 0xffffn << 32n;

export interface Prefix {
  family: 4 | 6;
  bits: number;
  value: bigint;
  text: string;
}

/**
 * Parse `10.0.0.0/8`, `fd00::/8`, or a bare address (host prefix); undefined if invalid (one `/`
 * at most, a decimal length within the family's). An IPv6 prefix keeps its family even inside
 * the IPv4-mapped range (`::ffff:10.0.0.0/104`): prefixContains gives it the same meaning as the
 * IPv4 prefix. Never throws.
 */
export function parsePrefix(text: string): Prefix | undefined {
  if (typeof text !== 'string') return undefined;
  const slash = text.indexOf('/');
  const addr = slash === -1 ? text : text.slice(0, slash);
  const len = slash === -1 ? undefined : text.slice(slash + 1);
  if (len !== undefined && !/^\d{1,3}$/.test(len)) return undefined;
  let fam: 4 | 6;
  let v: bigint;
  const v4 = parseIPv4Number(addr);
  if (v4 !== undefined) {
    fam = 4;
    v = BigInt(v4);
  } else {
    const g = addr.indexOf(':') === -1 ? undefined : parseIPv6Groups(withoutZone(addr));
    if (g === undefined) return undefined;
    fam = 6;
    v = 0n;
    for (const x of g) v = (v << 16n) | BigInt(x);
  }
  const max = fam === 4 ? 32 : 128;
  const bits = len === undefined ? max : Number(len);
  if (bits > max) return undefined;
  return { family: fam, bits, value: v & maskOf(bits, max), text };
}

/**
 * Does `prefix` contain `address`? By value, not spelling: an IPv4-mapped IPv6 address, in any
 * spelling, is its IPv4 address, so it matches IPv4 prefixes (`10.0.0.0/8` contains
 * `::ffff:a00:1`). An IPv6 prefix inside the mapped range (`::ffff:0:0/96` or longer) matches
 * the IPv4 addresses it maps, in either form; a shorter IPv6 prefix (`::/0`, `::/64`) never
 * matches an IPv4 address, mapped or not: it names IPv6 space. false for text that is not a
 * numeric address. Never throws.
 */
export function prefixContains(prefix: Prefix, address: string): boolean {
  const a = addressValue(address);
  if (a === undefined || prefix === null || typeof prefix !== 'object') return false;
  if (prefix.family === 4) {
    if (a.family !== 4) return false;
    const m = maskOf(prefix.bits, 32);
    return (a.value & m) === (prefix.value & m);
  }
  if (prefix.family !== 6) return false;
  if (a.family === 4 && prefix.bits < 96) return false;
  const v = a.family === 4 ? MAPPED | a.value : a.value;
  const m = maskOf(prefix.bits, 128);
  return (v & m) === (prefix.value & m);
}

/** How many leading bits two addresses of the same family share (-1: different families or not addresses); IPv4-mapped counts as IPv4. */
export function commonPrefixBits(a: string, b: string): number {
  const x = addressValue(a);
  const y = addressValue(b);
  if (x === undefined || y === undefined || x.family !== y.family) return -1;
  const max = x.family === 4 ? 32 : 128;
  const diff = x.value ^ y.value;
  return diff === 0n ? max : max - diff.toString(2).length;
}

/** A prefix's length counted in IPv6 space (an IPv4 /n is the mapped /96+n), to rank matches of both families. */
const rank = (p: Prefix): number => (p.family === 4 ? p.bits + 96 : p.bits);

/** Longest-prefix match over a list of (prefix, value); IPv4 and IPv4-mapped prefixes rank together. */
export function longestMatch<T>(table: ReadonlyArray<{ prefix: Prefix; value: T }>, address: string): T | undefined {
  let best: { prefix: Prefix; value: T } | undefined;
  for (const e of table) {
    if (prefixContains(e.prefix, address) && (best === undefined || rank(e.prefix) > rank(best.prefix))) best = e;
  }
  return best?.value;
}

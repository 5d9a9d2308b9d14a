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

/** 4 or 6 for a numeric address (an IPv6 zone id allowed), else 0 (as node:net's isIP). */
export function ipFamily(address: string): 0 | 4 | 6 {
  return net.isIP(address) as 0 | 4 | 6;
}

/** `::ffff:10.0.0.1` → `10.0.0.1`; anything else unchanged. */
export function unmapV4(address: string): string {
  return address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
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
 * spelling), IPv6 in RFC 5952 form; undefined if `s` is not a numeric address.
 */
export function canonicalAddress(s: string): string | undefined {
  const v4 = parseIPv4Number(s);
  if (v4 !== undefined) return formatIPv4Number(v4);
  const g = parseIPv6Groups(s);
  if (g === undefined) return undefined;
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) return formatIPv4Number(((g[6]! << 16) | g[7]!) >>> 0);
  return formatIPv6Groups(g);
}

/**
 * The value of an address of family `fam` (as net.isIP reported it, which also allows an IPv6
 * zone id: ignored here); undefined if the strict parsers disagree.
 */
function toBigInt(fam: number, a: string): bigint | undefined {
  if (fam === 4) {
    const v = parseIPv4Number(a);
    return v === undefined ? undefined : BigInt(v);
  }
  const zone = a.indexOf('%');
  const g = parseIPv6Groups(zone === -1 ? a : a.slice(0, zone));
  if (g === undefined) return undefined;
  let acc = 0n;
  for (const x of g) acc = (acc << 16n) | BigInt(x);
  return acc;
}

export interface Prefix {
  family: 4 | 6;
  bits: number;
  value: bigint;
  text: string;
}

/** Parse `10.0.0.0/8`, `fd00::/8`, or a bare address (host prefix). undefined if invalid. */
export function parsePrefix(text: string): Prefix | undefined {
  const [addr, len] = text.split('/');
  if (addr === undefined) return undefined;
  const fam = net.isIP(addr);
  if (fam === 0) return undefined;
  const max = fam === 4 ? 32 : 128;
  const bits = len === undefined ? max : Number(len);
  if (!Number.isInteger(bits) || bits < 0 || bits > max || (len !== undefined && !/^\d+$/.test(len))) return undefined;
  const v = toBigInt(fam, addr);
  if (v === undefined) return undefined;
  const mask = bits === 0 ? 0n : ((1n << BigInt(bits)) - 1n) << BigInt(max - bits);
  return { family: fam as 4 | 6, bits, value: v & mask, text };
}

/** Does `prefix` contain `address`? IPv4-mapped IPv6 addresses match IPv4 prefixes. */
export function prefixContains(prefix: Prefix, address: string): boolean {
  const a = unmapV4(address);
  const fam = net.isIP(a);
  if (fam !== prefix.family) return false;
  const max = fam === 4 ? 32 : 128;
  const v = toBigInt(fam, a);
  if (v === undefined) return false;
  const mask = prefix.bits === 0 ? 0n : ((1n << BigInt(prefix.bits)) - 1n) << BigInt(max - prefix.bits);
  return (v & mask) === prefix.value;
}

/** How many leading bits two addresses of the same family share (-1: different families or not addresses). */
export function commonPrefixBits(a: string, b: string): number {
  const x = unmapV4(a);
  const y = unmapV4(b);
  const fam = net.isIP(x);
  if (fam === 0 || fam !== net.isIP(y)) return -1;
  const max = fam === 4 ? 32 : 128;
  const vx = toBigInt(fam, x);
  const vy = toBigInt(fam, y);
  if (vx === undefined || vy === undefined) return -1;
  const diff = vx ^ vy;
  return diff === 0n ? max : max - diff.toString(2).length;
}

/** Longest-prefix match over a list of (prefix, value). */
export function longestMatch<T>(table: ReadonlyArray<{ prefix: Prefix; value: T }>, address: string): T | undefined {
  let best: { prefix: Prefix; value: T } | undefined;
  for (const e of table) {
    if (prefixContains(e.prefix, address) && (best === undefined || e.prefix.bits > best.prefix.bits)) best = e;
  }
  return best?.value;
}

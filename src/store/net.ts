/**
 * Address, prefix and MAC parsing for the store: strict, allocation-light, no node:net.
 * Address text is read and written by core/net.ts; this module keeps the store's representation.
 *
 * IPv4 is held as one unsigned 32-bit number; IPv6 as four of them (most significant first).
 * Canonical text forms are what the store keeps, so equal prefixes compare equal as strings:
 *   IPv4  `192.0.2.0/24`  (host bits cleared)
 *   IPv6  `2001:db8::/32` (RFC 5952: lower case, longest zero run compressed, host bits cleared)
 *   MAC   `02:00:00:aa:bb:cc`
 * An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, as dual-stack sockets report it) parses as
 * the IPv4 address it carries.
 */

import { formatIPv4Number, formatIPv6Groups, parseIPv4Number, parseIPv6Groups } from '../core/net.js';

export type Family = 4 | 6;

export interface ParsedAddr {
  family: Family;
  /** IPv4: [n]; IPv6: [w0, w1, w2, w3]. Unsigned 32-bit words. */
  words: number[];
}

export interface ParsedPrefix extends ParsedAddr {
  len: number;
}

/** Eight 16-bit groups (core's IPv6 form) packed as four 32-bit words. */
function parseV6Words(s: string): number[] | undefined {
  const g = parseIPv6Groups(s);
  if (g === undefined) return undefined;
  return [
    ((g[0]! << 16) | g[1]!) >>> 0,
    ((g[2]! << 16) | g[3]!) >>> 0,
    ((g[4]! << 16) | g[5]!) >>> 0,
    ((g[6]! << 16) | g[7]!) >>> 0,
  ];
}

/** Parse a numeric IPv4 or IPv6 address (no zone id, no prefix); undefined if it is not one. */
export function parseAddr(s: string): ParsedAddr | undefined {
  if (typeof s !== 'string') return undefined;
  const a = parseAddrNoMap(s);
  if (a === undefined || a.family === 4) return a;
  const w = a.words;
  if (w[0] === 0 && w[1] === 0 && w[2] === 0xffff) return { family: 4, words: [w[3]!] };
  return a;
}

/** Clear host bits of `words` beyond `len` (in place) and return them. */
export function maskWords(words: number[], len: number): number[] {
  for (let k = 0; k < words.length; k++) {
    const bitsHere = Math.max(0, Math.min(32, len - k * 32));
    if (bitsHere === 0) words[k] = 0;
    else if (bitsHere < 32) words[k] = (words[k]! & (~0 << (32 - bitsHere))) >>> 0;
  }
  return words;
}

/** Parse `addr` or `addr/len`. A bare address is a host prefix (/32 or /128). */
export function parsePrefix(s: string): ParsedPrefix | undefined {
  if (typeof s !== 'string' || s.length === 0 || s.length > 49) return undefined;
  const slash = s.indexOf('/');
  const a = parseAddrNoMap(slash === -1 ? s : s.slice(0, slash));
  if (a === undefined) return undefined;
  const max = a.family === 4 ? 32 : 128;
  let len = max;
  if (slash !== -1) {
    const t = s.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(t)) return undefined;
    len = Number(t);
    if (len > max) return undefined;
  }
  return { family: a.family, words: maskWords(a.words, len), len };
}

/** Like parseAddr but keeps an IPv4-mapped IPv6 address as IPv6 (for prefixes). */
function parseAddrNoMap(s: string): ParsedAddr | undefined {
  if (s.length === 0 || s.length > 45) return undefined;
  if (s.indexOf(':') === -1) {
    const v = parseIPv4Number(s);
    return v === undefined ? undefined : { family: 4, words: [v] };
  }
  const w = parseV6Words(s);
  return w === undefined ? undefined : { family: 6, words: w };
}

export function formatAddr(a: ParsedAddr): string {
  if (a.family === 4) return formatIPv4Number(a.words[0]!);
  const g: number[] = [];
  for (const w of a.words) g.push(w >>> 16, w & 0xffff);
  return formatIPv6Groups(g);
}

export function formatPrefix(p: ParsedPrefix): string {
  return `${formatAddr(p)}/${p.len}`;
}

/** Canonical `addr/len` text of a prefix or address, or undefined if invalid. */
export function canonicalPrefix(s: string): string | undefined {
  const p = parsePrefix(s);
  return p === undefined ? undefined : formatPrefix(p);
}

/** Canonical MAC `aa:bb:cc:dd:ee:ff` from `:`/`-` separated or bare hex; undefined if invalid. */
export function canonicalMac(s: string): string | undefined {
  if (typeof s !== 'string') return undefined;
  const m = /^([0-9a-fA-F]{2})[:-]?([0-9a-fA-F]{2})[:-]?([0-9a-fA-F]{2})[:-]?([0-9a-fA-F]{2})[:-]?([0-9a-fA-F]{2})[:-]?([0-9a-fA-F]{2})$/.exec(s);
  if (m === null) return undefined;
  return m.slice(1).join(':').toLowerCase();
}

/** A key for a masked address: equal for equal (family, words, len). */
export function prefixKey(family: Family, words: readonly number[], len: number): string {
  return family === 4 ? `${words[0]}/${len}` : `${words[0]},${words[1]},${words[2]},${words[3]}/${len}`;
}

/** True if `addr` lies inside prefix `p`. */
export function prefixContains(p: ParsedPrefix, a: ParsedAddr): boolean {
  if (p.family !== a.family) return false;
  const m = maskWords(a.words.slice(), p.len);
  for (let k = 0; k < m.length; k++) if (m[k] !== p.words[k]) return false;
  return true;
}

/**
 * Address, prefix and MAC parsing for the store: strict, allocation-light, no node:net.
 *
 * IPv4 is held as one unsigned 32-bit number; IPv6 as four of them (most significant first).
 * Canonical text forms are what the store keeps, so equal prefixes compare equal as strings:
 *   IPv4  `192.0.2.0/24`  (host bits cleared)
 *   IPv6  `2001:db8::/32` (RFC 5952: lower case, longest zero run compressed, host bits cleared)
 *   MAC   `02:00:00:aa:bb:cc`
 * An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, as dual-stack sockets report it) parses as
 * the IPv4 address it carries.
 */

export type Family = 4 | 6;

export interface ParsedAddr {
  family: Family;
  /** IPv4: [n]; IPv6: [w0, w1, w2, w3]. Unsigned 32-bit words. */
  words: number[];
}

export interface ParsedPrefix extends ParsedAddr {
  len: number;
}

function parseV4Words(s: string): number | undefined {
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

function parseV6Words(s: string): number[] | undefined {
  if (s.length < 2 || s.length > 45) return undefined;
  const groups: number[] = [];
  let gap = -1;
  let i = 0;
  if (s.startsWith('::')) {
    gap = 0;
    i = 2;
    if (s.length === 2) return [0, 0, 0, 0];
  } else if (s.charCodeAt(0) === 58) {
    return undefined;
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
      const v4 = parseV4Words(s.slice(i));
      if (v4 === undefined || groups.length > 6) return undefined;
      groups.push(v4 >>> 16, v4 & 0xffff);
      i = s.length;
      break;
    }
    if (j === i || j - i > 4) return undefined;
    groups.push(v);
    if (j === s.length) {
      i = j;
      break;
    }
    if (s.charCodeAt(j) !== 58) return undefined;
    if (j + 1 < s.length && s.charCodeAt(j + 1) === 58) {
      if (gap !== -1) return undefined;
      gap = groups.length;
      i = j + 2;
      if (i === s.length) break;
    } else {
      i = j + 1;
      if (i === s.length) return undefined; // trailing single colon
    }
  }
  if (gap === -1) {
    if (groups.length !== 8) return undefined;
  } else {
    if (groups.length > 7) return undefined;
    groups.splice(gap, 0, ...new Array<number>(8 - groups.length).fill(0));
  }
  const w: number[] = [];
  for (let k = 0; k < 8; k += 2) w.push(((groups[k]! << 16) | groups[k + 1]!) >>> 0);
  return w;
}

/** Parse a numeric IPv4 or IPv6 address (no zone id, no prefix); undefined if it is not one. */
export function parseAddr(s: string): ParsedAddr | undefined {
  if (typeof s !== 'string' || s.length === 0 || s.length > 45) return undefined;
  if (s.indexOf(':') === -1) {
    const v = parseV4Words(s);
    return v === undefined ? undefined : { family: 4, words: [v] };
  }
  const w = parseV6Words(s);
  if (w === undefined) return undefined;
  if (w[0] === 0 && w[1] === 0 && w[2] === 0xffff) return { family: 4, words: [w[3]!] };
  return { family: 6, words: w };
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
    const v = parseV4Words(s);
    return v === undefined ? undefined : { family: 4, words: [v] };
  }
  const w = parseV6Words(s);
  return w === undefined ? undefined : { family: 6, words: w };
}

export function formatAddr(a: ParsedAddr): string {
  if (a.family === 4) {
    const v = a.words[0]!;
    return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
  }
  const g: number[] = [];
  for (const w of a.words) g.push(w >>> 16, w & 0xffff);
  // RFC 5952: compress the longest run (length >= 2) of zero groups, the first one on a tie
  let best = -1;
  let bestLen = 1;
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
  const hex = g.map((x) => x.toString(16));
  if (best === -1) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
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

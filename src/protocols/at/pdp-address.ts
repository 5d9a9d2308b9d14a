import { formatIPv4Number, formatIPv6Groups, parseIPv4Number, parseIPv6Groups } from '../../core/net.js';
import { fields, int, ok, opt, parseError, prefixed, replyLines, unq, type AtResult } from './result.js';

/** 27.007 §10.1.14 +CGPADDR and the 3GPP address forms, as non-throwing parsers (see threegpp.ts). */

// ---------------------------------------------------------------------------------------------
// +CGPADDR and the 3GPP dotted-decimal address forms

export interface PdpAddresses {
  readonly cid: number;
  /** Canonical text (RFC 5952 for IPv6); unspecified addresses (0.0.0.0, ::) are left out. */
  readonly ipv4?: string;
  readonly ipv6?: string;
  /** Prefix lengths when the modem appended a subnet mask (the 8- and 32-octet forms). */
  readonly ipv4PrefixLength?: number;
  readonly ipv6PrefixLength?: number;
  /** Every address, in the order given. */
  readonly addresses: readonly string[];
}

export interface AtAddress {
  readonly family: 4 | 6;
  /** Canonical text. */
  readonly address: string;
  readonly prefixLength?: number;
  /** 0.0.0.0 or :: */
  readonly unspecified: boolean;
}

function maskLength(bytes: readonly number[]): number | undefined {
  let len = 0;
  let zero = false;
  for (const b of bytes) {
    for (let bit = 7; bit >= 0; bit--) {
      if ((b >> bit) & 1) {
        if (zero) return undefined;
        len++;
      } else zero = true;
    }
  }
  return len;
}

/**
 * One address as 27.007 gives it: dotted IPv4 ("10.0.0.2"), IPv4 with its mask
 * ("10.0.0.2.255.255.255.0"), IPv6 text, IPv6 as 16 dotted decimals ("32.1.13.184.0…1"), or
 * IPv6 and mask as 32 dotted decimals. Undefined when it is none of these.
 */
export function parseAtAddress(s: string): AtAddress | undefined {
  const t = unq(s);
  if (t.length === 0 || t.length > 160) return undefined;
  if (t.includes(':')) {
    const g = parseIPv6Groups(t);
    if (g === undefined) return undefined;
    return { family: 6, address: formatIPv6Groups(g), unspecified: g.every((x) => x === 0) };
  }
  const parts = t.split('.');
  if (parts.length !== 4 && parts.length !== 8 && parts.length !== 16 && parts.length !== 32) return undefined;
  const b: number[] = [];
  for (const p of parts) {
    if (p.length === 0 || p.length > 3) return undefined;
    const v = int(p);
    if (v === undefined || v < 0 || v > 255 || p.startsWith('+') || p.startsWith('-')) return undefined;
    b.push(v);
  }
  if (parts.length <= 8) {
    const a = parseIPv4Number(b.slice(0, 4).join('.'));
    if (a === undefined) return undefined;
    const m = parts.length === 8 ? maskLength(b.slice(4)) : undefined;
    if (parts.length === 8 && m === undefined) return undefined;
    return { family: 4, address: formatIPv4Number(a), ...opt('prefixLength', m), unspecified: a === 0 };
  }
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  const m = parts.length === 32 ? maskLength(b.slice(16)) : undefined;
  if (parts.length === 32 && m === undefined) return undefined;
  return { family: 6, address: formatIPv6Groups(groups), ...opt('prefixLength', m), unspecified: groups.every((x) => x === 0) };
}

/**
 * Every `+CGPADDR: <cid>[,<PDP_addr_1>[,<PDP_addr_2>]]` line. The two addresses may also come
 * as one field separated by a space ("10.0.0.2 2001:db8::2", as some modules send them).
 */
export function parseCgpaddrAll(text: string): AtResult<PdpAddresses[]> {
  const C = '+CGPADDR';
  const ls = replyLines(text, C);
  if (!ls.ok) return ls;
  const rows = prefixed(ls.value, '+CGPADDR:');
  if (rows.length === 0) return parseError(C, 'no-prefix', 'no +CGPADDR line', text);
  const out: PdpAddresses[] = [];
  for (const row of rows) {
    const f = fields(row);
    const cid = int(f[0]);
    if (cid === undefined) return parseError(C, 'bad-field', '<cid>', row);
    if (cid < 0 || cid > 255) return parseError(C, 'out-of-range', '<cid>', row);
    const tokens: string[] = [];
    for (const x of f.slice(1)) for (const tok of unq(x).split(/[ \t]+/)) if (tok !== '') tokens.push(tok);
    if (tokens.length > 4) return parseError(C, 'field-count', `${tokens.length} addresses`, row);
    let ipv4: AtAddress | undefined;
    let ipv6: AtAddress | undefined;
    const addresses: string[] = [];
    for (const tok of tokens) {
      const a = parseAtAddress(tok);
      if (a === undefined) return parseError(C, 'bad-field', `address ${JSON.stringify(tok.slice(0, 60))}`, row);
      if (a.unspecified) continue;
      addresses.push(a.address);
      if (a.family === 4) ipv4 ??= a;
      else ipv6 ??= a;
    }
    out.push({
      cid,
      ...opt('ipv4', ipv4?.address),
      ...opt('ipv6', ipv6?.address),
      ...opt('ipv4PrefixLength', ipv4?.prefixLength),
      ...opt('ipv6PrefixLength', ipv6?.prefixLength),
      addresses,
    });
  }
  return ok(out);
}

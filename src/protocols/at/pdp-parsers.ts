import { unwrap } from './result.js';
import { dec, fail, lines, splitFields, unquote } from './parse-util.js';
import { parseAtAddress, parseCgpaddrAll } from './threegpp.js';

/** Throwing parsers of the PDP context replies (27.007 §10.1.1 +CGDCONT, §10.1.14 +CGPADDR); see parsers.ts. */

// ---------------------------------------------------------------------------------------------
// +CGDCONT?, +CGPADDR

export interface PdpContext {
  readonly cid: number;
  readonly pdp_type: string;
  readonly ip_family: 'IPV4' | 'IPV6' | 'IPV4V6' | 'NON_IP' | 'UNKNOWN';
  readonly apn: string | null;
}

export function ipFamilyOfPdpType(t: string): PdpContext['ip_family'] {
  switch (t.toUpperCase()) {
    case 'IP':
      return 'IPV4';
    case 'IPV6':
      return 'IPV6';
    case 'IPV4V6':
      return 'IPV4V6';
    case 'NON-IP':
    case 'NONIP':
      return 'NON_IP';
    default:
      return 'UNKNOWN';
  }
}

/** All `+CGDCONT: <cid>,<PDP_type>,<APN>,…` lines; lines without the prefix are ignored. */
export function parseCgdcont(text: string): PdpContext[] {
  const out: PdpContext[] = [];
  for (const l of lines(text)) {
    if (!/^\+CGDCONT:/i.test(l)) continue;
    const f = splitFields(l.slice(9));
    if (f.length < 2) fail('+CGDCONT', text);
    const cid = dec(f[0], '+CGDCONT <cid>', text);
    const pdpType = unquote(f[1]!);
    const apn = f.length > 2 ? unquote(f[2]!) : '';
    out.push({ cid, pdp_type: pdpType, ip_family: ipFamilyOfPdpType(pdpType), apn: apn === '' ? null : apn });
  }
  return out;
}

/**
 * An address as 27.007 gives it (dotted IPv4, IPv6 text, IPv6 as 16 dotted decimals, either
 * with a dotted mask appended) in canonical text (RFC 5952 for IPv6, via core/net).
 */
export function normaliseAtAddress(s: string): string | undefined {
  return parseAtAddress(s)?.address;
}

export interface PdpAddress {
  readonly cid: number;
  readonly addresses: string[];
}

/** Every +CGPADDR line; IPv4 and IPv6 may come as two fields or one space-separated field. */
export function parseCgpaddr(text: string): PdpAddress[] {
  return unwrap(parseCgpaddrAll(text)).map((r) => ({ cid: r.cid, addresses: [...r.addresses] }));
}


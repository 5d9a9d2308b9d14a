/**
 * Numeric IP address text ⇄ bytes, without node:net (protocols/ stays pure).
 * Shared by the Convert and SOCKS5 codecs. The text itself is read and written by core/net.ts;
 * this module holds the 16-byte wire form.
 *
 * - parseIPv4 / parseIPv6 return undefined for anything that is not a strict numeric
 *   address (no zone ids, no leading zeros in IPv4 octets, no hostnames).
 * - formatIPv6 writes the RFC 5952 canonical form (lower case, longest zero run as ::).
 * - An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is what RFC 8803 puts on the wire for IPv4.
 */

import { formatIPv6Groups, parseIPv4Number, parseIPv6Groups } from '../../core/net.js';

export function parseIPv4(s: string): Uint8Array | undefined {
  const v = parseIPv4Number(s);
  if (v === undefined) return undefined;
  return Uint8Array.of(v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255);
}

export function parseIPv6(s: string): Uint8Array | undefined {
  const g = parseIPv6Groups(s);
  if (g === undefined) return undefined;
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = g[i]! >> 8;
    out[2 * i + 1] = g[i]! & 0xff;
  }
  return out;
}

export function formatIPv4(b: Uint8Array, off = 0): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

/** RFC 5952 text of 16 bytes (IPv4-mapped addresses keep the ::ffff:a.b.c.d form). */
export function formatIPv6(b: Uint8Array, off = 0): string {
  if (isV4Mapped(b, off)) return `::ffff:${formatIPv4(b, off + 12)}`;
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[off + 2 * i]! << 8) | b[off + 2 * i + 1]!);
  return formatIPv6Groups(g);
}

export function isV4Mapped(b: Uint8Array, off = 0): boolean {
  for (let i = 0; i < 10; i++) if (b[off + i] !== 0) return false;
  return b[off + 10] === 0xff && b[off + 11] === 0xff;
}

/** 16 bytes for an IPv4 (as IPv4-mapped) or IPv6 address, or undefined. */
export function toIPv6Bytes(address: string): Uint8Array | undefined {
  const v4 = parseIPv4(address);
  if (v4 !== undefined) {
    const out = new Uint8Array(16);
    out[10] = 0xff;
    out[11] = 0xff;
    out.set(v4, 12);
    return out;
  }
  return parseIPv6(address);
}

/** Text of 16 wire bytes: dotted IPv4 for an IPv4-mapped address, RFC 5952 IPv6 otherwise. */
export function fromIPv6Bytes(b: Uint8Array, off = 0): string {
  return isV4Mapped(b, off) ? formatIPv4(b, off + 12) : formatIPv6(b, off);
}

/**
 * Why an address must not be a relay target (RFC 8803 4.2.4: no multicast, broadcast or
 * host loopback; we also refuse the unspecified address). undefined when acceptable.
 */
export function forbiddenTarget(b16: Uint8Array): string | undefined {
  if (isV4Mapped(b16)) {
    const a = b16[12]!;
    if (a === 127) return 'IPv4 loopback';
    if (a >= 224 && a <= 239) return 'IPv4 multicast';
    if (a === 255 && b16[13] === 255 && b16[14] === 255 && b16[15] === 255) return 'IPv4 broadcast';
    if (a === 0) return 'IPv4 "this network" / unspecified';
    return undefined;
  }
  if (b16[0] === 0xff) return 'IPv6 multicast';
  let zeroTo15 = true;
  for (let i = 0; i < 15; i++) if (b16[i] !== 0) zeroTo15 = false;
  if (zeroTo15 && b16[15] === 1) return 'IPv6 loopback';
  if (zeroTo15 && b16[15] === 0) return 'IPv6 unspecified';
  return undefined;
}

import { parsePrefix, type Prefix } from '../../core/net.js';
import { toIPv6Bytes } from '../../protocols/convert/ip.js';

/**
 * Which relay targets no proxy front may reach (pure: the box's own addresses and listener
 * ports arrive as live sets, kept current by whoever watches the interfaces).
 *
 *   target ─► numeric? ──no──► not judged (only an explicit listener's configured target can be a
 *            │                name; SOCKS5 names are resolved by the front before this)
 *            │ operator allow-list contains it ─► allowed (on purpose, overrides all below)
 *            │ one of the box's own addresses ─► own-listener (a listener port) | own-address
 *            │ special-purpose range (IANA IPv4/IPv6 registries, below) ─► its reason
 *            │ a form that carries an IPv4 address (v4-mapped, v4-compatible, NAT64 64:ff9b::/96
 *            │ and 64:ff9b:1::/48, 6to4 2002::/16, Teredo 2001::/32): the IPv4 inside is judged
 *            │ by the same rules (own, special)
 *            ▼
 *          allowed
 *
 * Kept reachable on purpose: private RFC 1918 space (10/8, 172.16/12, 192.168/16), shared
 * CGN space 100.64/10 and IPv6 unique-local fc00::/7 — servers live there inside an ISP, and
 * the simulated board's servers are on 10.x and fd00::/8. Refused: what is never a legitimate
 * destination for a subscriber's connection (this network, loopback, link-local, multicast,
 * broadcast, reserved, documentation, benchmarking, IETF protocol assignments, discard-only).
 */

export type ForbiddenReason =
  | 'own-address'
  | 'own-listener'
  | 'unspecified'
  | 'this-network'
  | 'loopback'
  | 'link-local'
  | 'multicast'
  | 'broadcast'
  | 'reserved'
  | 'documentation'
  | 'benchmarking'
  | 'ietf-protocol'
  | 'discard-only';

/** Every reason, in a stable order (metrics labels, docs). */
export const FORBIDDEN_REASONS: readonly ForbiddenReason[] = [
  'own-address',
  'own-listener',
  'unspecified',
  'this-network',
  'loopback',
  'link-local',
  'multicast',
  'broadcast',
  'reserved',
  'documentation',
  'benchmarking',
  'ietf-protocol',
  'discard-only',
];

interface Range {
  /** Network bytes (4 for IPv4, 16 for IPv6) and prefix length. */
  net: number[];
  bits: number;
  reason: ForbiddenReason;
}

const v4 = (a: number, b: number, c: number, d: number, bits: number, reason: ForbiddenReason): Range => ({ net: [a, b, c, d], bits, reason });
const v6 = (groups: number[], bits: number, reason: ForbiddenReason): Range => {
  const net: number[] = [];
  for (let i = 0; i < 8; i++) net.push((groups[i] ?? 0) >> 8, (groups[i] ?? 0) & 0xff);
  return { net, bits, reason };
};

/** Holes in the refused ranges: globally reachable entries of the registries (checked first). */
const V4_KEEP: readonly Range[] = [
  v4(192, 0, 0, 9, 32, 'ietf-protocol'), // Port Control Protocol anycast
  v4(192, 0, 0, 10, 32, 'ietf-protocol'), // TURN anycast
];

/** IANA IPv4 Special-Purpose Address Registry: the entries that are no subscriber's destination. */
export const V4_FORBIDDEN: readonly Range[] = [
  v4(0, 0, 0, 0, 32, 'unspecified'),
  v4(0, 0, 0, 0, 8, 'this-network'),
  v4(127, 0, 0, 0, 8, 'loopback'),
  v4(169, 254, 0, 0, 16, 'link-local'),
  v4(192, 0, 0, 0, 24, 'ietf-protocol'),
  v4(192, 0, 2, 0, 24, 'documentation'),
  v4(192, 88, 99, 0, 24, 'reserved'), // deprecated 6to4 relay anycast
  v4(198, 18, 0, 0, 15, 'benchmarking'),
  v4(198, 51, 100, 0, 24, 'documentation'),
  v4(203, 0, 113, 0, 24, 'documentation'),
  v4(224, 0, 0, 0, 4, 'multicast'),
  v4(255, 255, 255, 255, 32, 'broadcast'),
  v4(240, 0, 0, 0, 4, 'reserved'),
];

/** IANA IPv6 Special-Purpose Address Registry (forms carrying IPv4 are handled apart). */
export const V6_FORBIDDEN: readonly Range[] = [
  v6([], 128, 'unspecified'),
  v6([0, 0, 0, 0, 0, 0, 0, 1], 128, 'loopback'),
  v6([0x0100], 64, 'discard-only'),
  v6([0x2001, 0x0002], 48, 'benchmarking'),
  v6([0x2001, 0x0db8], 32, 'documentation'),
  v6([0x3fff], 20, 'documentation'),
  v6([0x2001, 0x0010], 28, 'reserved'), // ORCHID (deprecated)
  v6([0x5f00], 16, 'reserved'), // SRv6 SIDs
  v6([0xfe80], 10, 'link-local'),
  v6([0xfec0], 10, 'reserved'), // site-local (deprecated)
  v6([0xff00], 8, 'multicast'),
  v6([], 8, 'reserved'), // ::/8 besides the IPv4-carrying forms
];

function inRange(b: Uint8Array, off: number, r: Range): boolean {
  let bits = r.bits;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((b[off + i]! & mask) !== (r.net[i]! & mask)) return false;
  }
  return true;
}

/** The special-purpose reason of an IPv4 address (4 bytes at off), undefined when routable. */
export function specialV4(b: Uint8Array, off = 0): ForbiddenReason | undefined {
  for (const r of V4_KEEP) if (inRange(b, off, r)) return undefined;
  for (const r of V4_FORBIDDEN) if (inRange(b, off, r)) return r.reason;
  return undefined;
}

/**
 * The IPv4 address an IPv6 form carries, or undefined: v4-mapped ::ffff:0:0/96, v4-compatible
 * ::/96, NAT64 64:ff9b::/96 and 64:ff9b:1::/48 (its last 32 bits), 6to4 2002:V4::/16, Teredo
 * 2001:0:SERVER:…:~CLIENT (both judged: the client part, obfuscated, is the one returned
 * second).
 */
export function embeddedV4(b: Uint8Array): Uint8Array[] {
  const zero = (from: number, to: number): boolean => {
    for (let i = from; i < to; i++) if (b[i] !== 0) return false;
    return true;
  };
  if (zero(0, 10) && b[10] === 0xff && b[11] === 0xff) return [b.subarray(12, 16)];
  if (zero(0, 12) && !zero(12, 15)) return [b.subarray(12, 16)]; // ::a.b.c.d (not ::, ::1)
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b) {
    if (zero(4, 12)) return [b.subarray(12, 16)];
    if (b[4] === 0 && b[5] === 1) return [b.subarray(12, 16)];
  }
  if (b[0] === 0x20 && b[1] === 0x02) return [b.subarray(2, 6)];
  if (b[0] === 0x20 && b[1] === 0x01 && b[2] === 0 && b[3] === 0) {
    return [b.subarray(4, 8), Uint8Array.from(b.subarray(12, 16), (x) => x ^ 0xff)];
  }
  return [];
}

/** The special-purpose reason of 16 address bytes (IPv4 as v4-mapped), undefined when routable. */
export function specialPurpose(b16: Uint8Array): ForbiddenReason | undefined {
  const inner = embeddedV4(b16);
  for (const x of inner) {
    const r = specialV4(x);
    if (r !== undefined) return r;
  }
  // v4-mapped, NAT64, 6to4, Teredo: the IPv4 inside decided. v4-compatible (::a.b.c.d) is
  // deprecated: whatever it carries, it falls into ::/8 below (reserved).
  if (inner.length > 0 && !(b16[0] === 0 && b16[1] === 0)) return undefined;
  if (isMapped(b16)) return undefined;
  for (const r of V6_FORBIDDEN) if (inRange(b16, 0, r)) return r.reason;
  return undefined;
}

/** A stable key for 16 address bytes (own-address sets hold these). */
export function addressKey(b16: Uint8Array): string {
  return Buffer.from(b16.buffer, b16.byteOffset, 16).toString('hex');
}

/** The key of an address text, undefined if it is not numeric (zone ids are dropped). */
export function addressTextKey(address: string): string | undefined {
  const z = address.indexOf('%');
  const b = toIPv6Bytes(z === -1 ? address : address.slice(0, z));
  return b === undefined ? undefined : addressKey(b);
}

export interface TargetVerdict {
  reason: ForbiddenReason;
  /** The address that was judged (the IPv4 inside a NAT64/6to4/Teredo form, when that decided). */
  judged: string;
}

export interface TargetFilterOptions {
  /** The box's own addresses as addressKey() keys, kept current by the caller. */
  ownAddresses?: { has(key: string): boolean };
  /** Ports the box listens on (proxy fronts, web, ...): reaching one on an own address is own-listener. */
  listenerPorts?: { has(port: number): boolean };
  /** Prefixes the operator allows on purpose; they override every reason. */
  allow?: readonly string[];
}

export type TargetFilter = (target: { host: string; port: number }) => TargetVerdict | undefined;

function isMapped(b16: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b16[i] !== 0) return false;
  return b16[10] === 0xff && b16[11] === 0xff;
}

function v4Bytes16(b4: Uint8Array): Uint8Array {
  const out = new Uint8Array(16);
  out[10] = 0xff;
  out[11] = 0xff;
  out.set(b4, 12);
  return out;
}

function textOf(b16: Uint8Array): string {
  if (isMapped(b16)) return `${b16[12]}.${b16[13]}.${b16[14]}.${b16[15]}`;
  const g: string[] = [];
  for (let i = 0; i < 16; i += 2) g.push(((b16[i]! << 8) | b16[i + 1]!).toString(16));
  return g.join(':');
}

/** An allow-list prefix compiled to bytes once: an IPv4 one as its v4-mapped /96+bits range. */
interface Compiled {
  family: 4 | 6;
  range: Range;
}

function compile(p: Prefix): Compiled {
  const n = p.family === 4 ? 4 : 16;
  const bytes: number[] = [];
  for (let i = 0; i < n; i++) bytes.push(Number((p.value >> BigInt(8 * (n - 1 - i))) & 0xffn));
  if (p.family === 4) return { family: 4, range: { net: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...bytes], bits: 96 + p.bits, reason: 'reserved' } };
  return { family: 6, range: { net: bytes, bits: p.bits, reason: 'reserved' } };
}

/** Whether 16 address bytes (IPv4 as v4-mapped) are in an allow-list prefix: IPv4 prefixes hold only v4-mapped ones, IPv6 prefixes none of them. */
function prefixHas(p: Compiled, b16: Uint8Array): boolean {
  if (p.family === 6 && isMapped(b16)) return false;
  return inRange(b16, 0, p.range);
}

/** Parse an allow-list; throws nothing, returns the bad entries apart so the caller can say which. */
export function parseAllowList(list: readonly string[]): { prefixes: Prefix[]; bad: string[] } {
  const prefixes: Prefix[] = [];
  const bad: string[] = [];
  for (const s of list) {
    const p = parsePrefix(s);
    if (p === undefined) bad.push(s);
    else prefixes.push(p);
  }
  return { prefixes, bad };
}

export function createTargetFilter(o: TargetFilterOptions = {}): TargetFilter {
  const allow = parseAllowList(o.allow ?? []).prefixes.map(compile);
  const own = o.ownAddresses;
  const ports = o.listenerPorts;
  return (target) => {
    const z = target.host.indexOf('%');
    const b16 = toIPv6Bytes(z === -1 ? target.host : target.host.slice(0, z));
    if (b16 === undefined) return undefined;
    if (allow.length > 0 && allow.some((p) => prefixHas(p, b16))) return undefined;
    const candidates = [b16, ...embeddedV4(b16).map(v4Bytes16)];
    for (const c of candidates) {
      if (own?.has(addressKey(c)) === true) {
        return { reason: ports?.has(target.port) === true ? 'own-listener' : 'own-address', judged: textOf(c) };
      }
    }
    for (const c of candidates.slice(1)) {
      if (allow.length > 0 && allow.some((p) => prefixHas(p, c))) return undefined;
    }
    const r = specialPurpose(b16);
    if (r !== undefined) {
      const inner = embeddedV4(b16).find((x) => specialV4(x) !== undefined);
      return { reason: r, judged: inner === undefined ? textOf(b16) : textOf(v4Bytes16(inner)) };
    }
    return undefined;
  };
}

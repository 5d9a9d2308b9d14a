import net from 'node:net';

/** Address helpers shared by every layer: parsing, prefixes, IPv4-mapped IPv6. Pure. */

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

function v4ToBigInt(a: string): bigint {
  return a.split('.').reduce((acc, p) => (acc << 8n) | BigInt(Number(p)), 0n);
}

function v6ToBigInt(a: string): bigint {
  let s = a;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4 !== null) {
    const x = v4ToBigInt(v4[1]!);
    s = s.slice(0, -v4[1]!.length) + ((x >> 16n) & 0xffffn).toString(16) + ':' + (x & 0xffffn).toString(16);
  }
  const [head, tail] = s.includes('::') ? (s.split('::') as [string, string]) : [s, undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
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
  const v = fam === 4 ? v4ToBigInt(addr) : v6ToBigInt(addr);
  const mask = bits === 0 ? 0n : ((1n << BigInt(bits)) - 1n) << BigInt(max - bits);
  return { family: fam as 4 | 6, bits, value: v & mask, text };
}

/** Does `prefix` contain `address`? IPv4-mapped IPv6 addresses match IPv4 prefixes. */
export function prefixContains(prefix: Prefix, address: string): boolean {
  const a = unmapV4(address);
  const fam = net.isIP(a);
  if (fam !== prefix.family) return false;
  const max = fam === 4 ? 32 : 128;
  const v = fam === 4 ? v4ToBigInt(a) : v6ToBigInt(a);
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
  const diff = fam === 4 ? v4ToBigInt(x) ^ v4ToBigInt(y) : v6ToBigInt(x) ^ v6ToBigInt(y);
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

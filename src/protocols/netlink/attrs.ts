import { DuocellError } from '../../core/errors.js';

/**
 * Netlink attributes (struct nlattr), pure: bytes ⇄ TLVs.
 *
 *   0      2      4
 *   +------+------+---------------------------+- - - -+
 *   | len  | type | value (len - 4 bytes)     |  pad  |   len: u16 host order, counts the
 *   +------+------+---------------------------+- - - -+   4-byte header, not the padding.
 *   type: bit 15 NLA_F_NESTED, bit 14 NLA_F_NET_BYTEORDER, bits 0-13 the attribute number.
 *
 * Every attribute starts on a 4-byte boundary (NLA_ALIGNTO): the encoder always pads, which
 * the kernel insists on (npm `netlink`'s own formatter does not, and the kernel says EINVAL).
 * Netlink is host-endian; duocell runs on little-endian machines (x86-64, arm64, armhf), so
 * host order here means little-endian. Values flagged NET_BYTEORDER are big-endian.
 */

export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = 0x3fff;
export const NLA_HDRLEN = 4;
export const NLA_ALIGNTO = 4;

export function nlaAlign(n: number): number {
  return (n + NLA_ALIGNTO - 1) & ~(NLA_ALIGNTO - 1);
}

function malformed(message: string, detail: Record<string, unknown> = {}): DuocellError {
  return new DuocellError('DC_NETLINK_MALFORMED', message, { origin: 'local', ...detail });
}

function invalid(message: string): DuocellError {
  return new DuocellError('DC_NETLINK_INVALID_ARG', message, { origin: 'local' });
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** An attribute to encode: a leaf (bytes) or a nest of attributes. */
export interface AttrOut {
  readonly type: number;
  readonly value: Buffer | readonly AttrOut[];
  /** Set NLA_F_NET_BYTEORDER on the type (the value is already big-endian). */
  readonly netByteOrder?: boolean;
  /** For nests: set NLA_F_NESTED (default true; a few old families leave it off). */
  readonly nestedFlag?: boolean;
}

function checkType(type: number): void {
  if (!Number.isInteger(type) || type < 0 || type > NLA_TYPE_MASK) throw invalid(`attribute type ${type} out of range`);
}

function checkInt(v: number, bits: 8 | 16 | 32, signed = false): void {
  const min = signed ? -(2 ** (bits - 1)) : 0;
  const max = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
  if (!Number.isInteger(v) || v < min || v > max) throw invalid(`${signed ? 's' : 'u'}${bits} value ${v} out of range`);
}

/** Builders for leaf and nested attributes. */
export const attr = {
  u8(type: number, v: number): AttrOut {
    checkInt(v, 8);
    return { type, value: Buffer.from([v]) };
  },
  u16(type: number, v: number, opts: { be?: boolean; flag?: boolean } = {}): AttrOut {
    checkInt(v, 16);
    const b = Buffer.alloc(2);
    if (opts.be === true) b.writeUInt16BE(v);
    else b.writeUInt16LE(v);
    return { type, value: b, netByteOrder: opts.be === true && opts.flag === true };
  },
  u32(type: number, v: number, opts: { be?: boolean; flag?: boolean } = {}): AttrOut {
    checkInt(v, 32);
    const b = Buffer.alloc(4);
    if (opts.be === true) b.writeUInt32BE(v);
    else b.writeUInt32LE(v);
    return { type, value: b, netByteOrder: opts.be === true && opts.flag === true };
  },
  s32(type: number, v: number): AttrOut {
    checkInt(v, 32, true);
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    return { type, value: b };
  },
  u64(type: number, v: bigint): AttrOut {
    if (typeof v !== 'bigint' || v < 0n || v > 0xffffffffffffffffn) throw invalid(`u64 value ${String(v)} out of range`);
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(v);
    return { type, value: b };
  },
  /** A NUL-terminated string (NLA_NUL_STRING / NLA_STRING as the kernel's tools send it). */
  string(type: number, s: string): AttrOut {
    if (s.includes('\0')) throw invalid('string attribute contains NUL');
    return { type, value: Buffer.concat([Buffer.from(s, 'utf8'), Buffer.alloc(1)]) };
  },
  binary(type: number, b: Uint8Array): AttrOut {
    return { type, value: Buffer.from(b) };
  },
  /** A zero-length attribute (NLA_FLAG). */
  flag(type: number): AttrOut {
    return { type, value: Buffer.alloc(0) };
  },
  nested(type: number, children: readonly AttrOut[], nestedFlag = true): AttrOut {
    return { type, value: children, nestedFlag };
  },
};

function encodedLength(a: AttrOut): number {
  if (Buffer.isBuffer(a.value)) return NLA_HDRLEN + a.value.length;
  let n = NLA_HDRLEN;
  for (const c of a.value as readonly AttrOut[]) n += nlaAlign(encodedLength(c));
  return n;
}

function writeAttr(out: Buffer, off: number, a: AttrOut, depth: number): number {
  if (depth > 32) throw invalid('attributes nested deeper than 32 levels');
  checkType(a.type);
  const len = encodedLength(a);
  if (len > 0xffff) throw invalid(`attribute ${a.type} too long (${len} bytes)`);
  let type = a.type;
  if (a.netByteOrder === true) type |= NLA_F_NET_BYTEORDER;
  out.writeUInt16LE(len, off);
  if (Buffer.isBuffer(a.value)) {
    out.writeUInt16LE(type, off + 2);
    a.value.copy(out, off + NLA_HDRLEN);
  } else {
    if (a.nestedFlag !== false) type |= NLA_F_NESTED;
    out.writeUInt16LE(type, off + 2);
    let p = off + NLA_HDRLEN;
    for (const c of a.value as readonly AttrOut[]) p += nlaAlign(writeAttr(out, p, c, depth + 1));
  }
  return len;
}

/** Encode attributes back to back, each padded to 4 bytes (the output length is a multiple of 4). */
export function encodeAttrs(attrs: readonly AttrOut[]): Buffer {
  let total = 0;
  for (const a of attrs) total += nlaAlign(encodedLength(a));
  const out = Buffer.alloc(total); // zeroed: the padding is zero
  let off = 0;
  for (const a of attrs) off += nlaAlign(writeAttr(out, off, a, 0));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** One decoded attribute: its number, flags and value bytes (a view into the input). */
export interface RawAttr {
  readonly type: number;
  readonly nested: boolean;
  readonly netByteOrder: boolean;
  readonly value: Buffer;
}

/**
 * Split a buffer into attributes. Strict: a length below 4 or running past the end is
 * DC_NETLINK_MALFORMED. The last attribute may omit its padding. At most `max` attributes.
 */
export function decodeAttrs(buf: Buffer, max = 4096): RawAttr[] {
  const out: RawAttr[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < NLA_HDRLEN) throw malformed(`${buf.length - off} trailing bytes after attributes`, { offset: off });
    const len = buf.readUInt16LE(off);
    const t = buf.readUInt16LE(off + 2);
    if (len < NLA_HDRLEN) throw malformed(`attribute length ${len} below the header size`, { offset: off });
    if (off + len > buf.length) throw malformed(`attribute ${t & NLA_TYPE_MASK} length ${len} runs past the end (${buf.length - off} left)`, { offset: off });
    if (out.length >= max) throw malformed(`more than ${max} attributes`);
    out.push({
      type: t & NLA_TYPE_MASK,
      nested: (t & NLA_F_NESTED) !== 0,
      netByteOrder: (t & NLA_F_NET_BYTEORDER) !== 0,
      value: buf.subarray(off + NLA_HDRLEN, off + len),
    });
    off += nlaAlign(len);
  }
  return out;
}

/**
 * Typed, validating access to a set of decoded attributes. Every getter checks the value's
 * length and throws DC_NETLINK_MALFORMED naming the attribute if it is wrong. `names` (optional)
 * turns attribute numbers into names in error messages.
 */
export class Attrs {
  readonly list: readonly RawAttr[];
  readonly #names: Readonly<Record<number, string>>;

  constructor(list: readonly RawAttr[], names: Readonly<Record<number, string>> = {}) {
    this.list = list;
    this.#names = names;
  }

  static decode(buf: Buffer, names?: Readonly<Record<number, string>>): Attrs {
    return new Attrs(decodeAttrs(buf), names);
  }

  name(type: number): string {
    return this.#names[type] ?? `attr ${type}`;
  }

  has(type: number): boolean {
    return this.list.some((a) => a.type === type);
  }

  /** The first attribute of this type, if any. */
  get(type: number): RawAttr | undefined {
    return this.list.find((a) => a.type === type);
  }

  all(type: number): RawAttr[] {
    return this.list.filter((a) => a.type === type);
  }

  #sized(type: number, size: number): Buffer | undefined {
    const a = this.get(type);
    if (a === undefined) return undefined;
    if (a.value.length !== size) throw malformed(`${this.name(type)}: ${a.value.length} bytes, expected ${size}`, { attr: type });
    return a.value;
  }

  /** Read an unsigned integer of the exact size; `be` forces big-endian (else the NET_BYTEORDER flag decides). */
  u8(type: number): number | undefined {
    return this.#sized(type, 1)?.readUInt8(0);
  }

  u16(type: number, be?: boolean): number | undefined {
    const v = this.#sized(type, 2);
    if (v === undefined) return undefined;
    return (be ?? this.get(type)!.netByteOrder) ? v.readUInt16BE(0) : v.readUInt16LE(0);
  }

  u32(type: number, be?: boolean): number | undefined {
    const v = this.#sized(type, 4);
    if (v === undefined) return undefined;
    return (be ?? this.get(type)!.netByteOrder) ? v.readUInt32BE(0) : v.readUInt32LE(0);
  }

  s32(type: number): number | undefined {
    return this.#sized(type, 4)?.readInt32LE(0);
  }

  s8(type: number): number | undefined {
    return this.#sized(type, 1)?.readInt8(0);
  }

  u64(type: number): bigint | undefined {
    return this.#sized(type, 8)?.readBigUInt64LE(0);
  }

  /** u64 as a number when it is exact (≤ 2^53), else a malformed error. */
  u64n(type: number): number | undefined {
    const v = this.u64(type);
    if (v === undefined) return undefined;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed(`${this.name(type)}: ${v} exceeds 2^53`, { attr: type });
    return Number(v);
  }

  /** Integer of 1, 2, 4 or 8 bytes, whichever was sent (the kernel's variable-width "uint"). */
  uint(type: number): number | undefined {
    const a = this.get(type);
    if (a === undefined) return undefined;
    switch (a.value.length) {
      case 1: return a.value.readUInt8(0);
      case 2: return a.netByteOrder ? a.value.readUInt16BE(0) : a.value.readUInt16LE(0);
      case 4: return a.netByteOrder ? a.value.readUInt32BE(0) : a.value.readUInt32LE(0);
      case 8: return this.u64n(type);
      default: throw malformed(`${this.name(type)}: ${a.value.length} bytes is no integer width`, { attr: type });
    }
  }

  /** A string: up to the first NUL (a NUL is optional at the end), UTF-8. */
  string(type: number): string | undefined {
    const a = this.get(type);
    if (a === undefined) return undefined;
    const z = a.value.indexOf(0);
    return a.value.subarray(0, z === -1 ? a.value.length : z).toString('utf8');
  }

  binary(type: number, size?: number): Buffer | undefined {
    if (size !== undefined) return this.#sized(type, size);
    return this.get(type)?.value;
  }

  flag(type: number): boolean {
    return this.has(type);
  }

  /** The nested attributes inside attribute `type`. */
  nested(type: number, names?: Readonly<Record<number, string>>): Attrs | undefined {
    const a = this.get(type);
    if (a === undefined) return undefined;
    try {
      return new Attrs(decodeAttrs(a.value), names);
    } catch (e) {
      if (e instanceof DuocellError) throw malformed(`inside ${this.name(type)}: ${e.message}`, { attr: type, cause: e });
      throw e;
    }
  }

  /** Like nested(), for every occurrence (and, for an array nest, every child). */
  nestedAll(type: number, names?: Readonly<Record<number, string>>): Attrs[] {
    return this.all(type).map((a) => new Attrs(decodeAttrs(a.value), names));
  }

  /** A required value: throws DC_NETLINK_MALFORMED naming what is missing. */
  need<T>(type: number, read: (t: number) => T | undefined): T {
    const v = read.call(this, type);
    if (v === undefined) throw malformed(`missing ${this.name(type)}`, { attr: type });
    return v;
  }
}

// ---------------------------------------------------------------------------------------------
// Address helpers (bytes ⇄ text), shared by mptcp_pm and rtnetlink

export function ipv4ToBuffer(s: string): Buffer {
  const parts = s.split('.');
  if (parts.length !== 4) throw invalid(`not an IPv4 address: ${JSON.stringify(s)}`);
  const b = Buffer.alloc(4);
  parts.forEach((p, i) => {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) throw invalid(`not an IPv4 address: ${JSON.stringify(s)}`);
    b[i] = Number(p);
  });
  return b;
}

export function ipv6ToBuffer(s: string): Buffer {
  let text = s;
  const z = text.indexOf('%');
  if (z !== -1) text = text.slice(0, z);
  let tail: number[] = [];
  // an embedded IPv4 tail (::ffff:1.2.3.4)
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    const v4 = ipv4ToBuffer(text.slice(lastColon + 1));
    tail = [v4.readUInt16BE(0), v4.readUInt16BE(2)];
    text = text.slice(0, lastColon + 1) + '0';
  }
  const halves = text.split('::');
  if (halves.length > 2) throw invalid(`not an IPv6 address: ${JSON.stringify(s)}`);
  const parse = (h: string): number[] => (h === '' ? [] : h.split(':').map((g) => {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw invalid(`not an IPv6 address: ${JSON.stringify(s)}`);
    return parseInt(g, 16);
  }));
  let groups: number[];
  const head = parse(halves[0]!);
  if (halves.length === 2) {
    const rest = parse(halves[1]!);
    if (tail.length > 0) rest.pop();
    const fill = 8 - head.length - rest.length - tail.length;
    if (fill < 1) throw invalid(`not an IPv6 address: ${JSON.stringify(s)}`);
    groups = [...head, ...new Array<number>(fill).fill(0), ...rest, ...tail];
  } else {
    if (tail.length > 0) head.pop();
    groups = [...head, ...tail];
  }
  if (groups.length !== 8) throw invalid(`not an IPv6 address: ${JSON.stringify(s)}`);
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(g, i * 2));
  return b;
}

export function ipToBuffer(s: string): { family: 4 | 6; bytes: Buffer } {
  return s.includes(':') ? { family: 6, bytes: ipv6ToBuffer(s) } : { family: 4, bytes: ipv4ToBuffer(s) };
}

export function bufferToIp(b: Buffer): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.length === 16) {
    const g: number[] = [];
    for (let i = 0; i < 16; i += 2) g.push(b.readUInt16BE(i));
    // longest run of zero groups (≥ 2) becomes '::' (RFC 5952)
    let best = -1;
    let bestLen = 1;
    for (let i = 0; i < 8; ) {
      if (g[i] !== 0) { i++; continue; }
      let j = i;
      while (j < 8 && g[j] === 0) j++;
      if (j - i > bestLen) { best = i; bestLen = j - i; }
      i = j;
    }
    const hex = g.map((x) => x.toString(16));
    if (best === -1) return hex.join(':');
    return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
  }
  throw malformed(`an address of ${b.length} bytes is neither IPv4 nor IPv6`);
}

export function macToString(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

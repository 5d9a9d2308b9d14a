import { DuocellError } from '../../core/errors.js';
import { formatIPv6Groups } from '../../core/net.js';
import type { Tlv } from './frame.js';

/**
 * QMI messages described as data, and the one generic encoder/decoder they drive (after
 * libqmi's data/qmi-service-*.json). A message lists its input TLVs (request) and output TLVs
 * (response or indication); each TLV holds one field; a field is an integer, a string, an
 * address, a struct of fields, or an array of fields.
 */

export type IntFormat = 'u8' | 'u16' | 'u32' | 'i8' | 'i16' | 'i32';

export type Field =
  | { readonly t: IntFormat; readonly enum?: Readonly<Record<number, string>> }
  /** A string: the rest of the container, or with a u8/u16 length prefix, or fixed size. */
  | { readonly t: 'string'; readonly prefix?: 'u8' | 'u16'; readonly size?: number }
  /** Raw bytes (hex string when decoded): rest of container or with a length prefix. */
  | { readonly t: 'bytes'; readonly prefix?: 'u8' | 'u16' }
  /** IPv4 address stored as a little-endian u32 (libqmi "IPv4 address"). */
  | { readonly t: 'ipv4' }
  /** IPv6 address, 16 bytes network order (as 8 big-endian u16 in libqmi). */
  | { readonly t: 'ipv6' }
  | { readonly t: 'struct'; readonly fields: readonly (readonly [string, Field])[] }
  | { readonly t: 'array'; readonly count: 'u8' | 'u16'; readonly of: Field };

export interface TlvDef {
  readonly type: number;
  /** Key of the decoded value in the message object. */
  readonly name: string;
  readonly field: Field;
  /** Printable TLV name, libqmi's words. */
  readonly title: string;
  readonly mandatory?: boolean;
}

export interface MessageDef {
  readonly service: number;
  readonly id: number;
  /** camelCase key, e.g. `wds.startNetwork`. */
  readonly key: string;
  /** libqmi's printable name, e.g. "Start Network". */
  readonly title: string;
  readonly input: readonly TlvDef[];
  /** Response TLVs (the Result TLV 0x02 is implicit); for an indication, its TLVs. */
  readonly output: readonly TlvDef[];
  readonly indication?: boolean;
}

export type QmiValue = number | string | QmiValue[] | { [k: string]: QmiValue };
export type QmiObject = { [k: string]: QmiValue };

// ------------------------------------------------------------------------------------------
// Strings: UTF-8 when printable, else GSM-7 packed (some networks name themselves that way)

const GSM7 =
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';

export function unpackGsm7(b: Uint8Array): string {
  const n = Math.floor((b.length * 8) / 7);
  let s = '';
  for (let i = 0; i < n; i++) {
    const bit = i * 7;
    const byte = bit >> 3;
    const shift = bit & 7;
    let v = (b[byte]! >> shift) & 0x7f;
    if (shift > 1 && byte + 1 < b.length) v = ((b[byte]! >> shift) | (b[byte + 1]! << (8 - shift))) & 0x7f;
    if (i === n - 1 && v === 0 && (b.length * 8) % 7 === 0 && n > 1) break; // padding septet
    s += GSM7[v]!;
  }
  return s;
}

function printable(s: string): boolean {
  // eslint-disable-next-line no-control-regex
  return !/[\x00-\x1f\x7f\ufffd]/.test(s);
}

/** libqmi-style string reading: trailing NULs/whitespace dropped; GSM-7 tried when not printable. */
export function decodeQmiString(b: Uint8Array): string {
  const utf8 = Buffer.from(b).toString('utf8').replace(/[\s\x00]+$/u, '');
  if (printable(utf8)) return utf8;
  const g = unpackGsm7(b).replace(/[\s@]+$/u, '');
  if (printable(g)) return g;
  return utf8;
}

// ------------------------------------------------------------------------------------------
// Reading

class Reader {
  o = 0;
  constructor(
    readonly b: Buffer,
    readonly where: string,
  ) {}

  need(n: number, what: string): void {
    if (this.o + n > this.b.length)
      throw new DuocellError('DC_QMI_TLV_OVERFLOW', `${this.where}: reading ${what} would overflow (${n} bytes at offset ${this.o} of ${this.b.length})`);
  }

  int(f: IntFormat, what: string): number {
    const size = f.endsWith('8') ? 1 : f.endsWith('16') ? 2 : 4;
    this.need(size, what);
    const o = this.o;
    this.o += size;
    switch (f) {
      case 'u8':
        return this.b.readUInt8(o);
      case 'u16':
        return this.b.readUInt16LE(o);
      case 'u32':
        return this.b.readUInt32LE(o);
      case 'i8':
        return this.b.readInt8(o);
      case 'i16':
        return this.b.readInt16LE(o);
      default:
        return this.b.readInt32LE(o);
    }
  }

  take(n: number, what: string): Buffer {
    this.need(n, what);
    const v = this.b.subarray(this.o, this.o + n);
    this.o += n;
    return v;
  }

  rest(): Buffer {
    return this.take(this.b.length - this.o, 'rest');
  }
}

function readField(r: Reader, f: Field, what: string): QmiValue {
  switch (f.t) {
    case 'u8':
    case 'u16':
    case 'u32':
    case 'i8':
    case 'i16':
    case 'i32':
      return r.int(f.t, what);
    case 'string': {
      const n = f.size ?? (f.prefix ? r.int(f.prefix, `${what} length`) : r.b.length - r.o);
      const bytes = r.take(n, what);
      return decodeQmiString(f.size !== undefined ? stripFill(bytes) : bytes);
    }
    case 'bytes': {
      const n = f.prefix ? r.int(f.prefix, `${what} length`) : r.b.length - r.o;
      return r.take(n, what).toString('hex');
    }
    case 'ipv4': {
      const v = r.int('u32', what);
      return [v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff].join('.');
    }
    case 'ipv6':
      return ipv6ToString(r.take(16, what));
    case 'struct': {
      const o: QmiObject = {};
      for (const [k, sub] of f.fields) o[k] = readField(r, sub, `${what}.${k}`);
      return o;
    }
    case 'array': {
      const n = r.int(f.count, `${what} count`);
      const out: QmiValue[] = [];
      for (let i = 0; i < n; i++) out.push(readField(r, f.of, `${what}[${i}]`));
      return out;
    }
  }
}

/** Fixed-size strings (MCC/MNC in NAS system info) are padded with 0xFF or NUL. */
function stripFill(b: Buffer): Buffer {
  let n = b.length;
  while (n > 0 && (b[n - 1] === 0xff || b[n - 1] === 0)) n--;
  return b.subarray(0, n);
}

/** RFC 5952 text of a 16-byte IPv6 address. */
export function ipv6ToString(b: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  return formatIPv6Groups(groups);
}

export function ipv6ToBytes(s: string): Buffer {
  const parts = s.split('::');
  if (parts.length > 2) throw new DuocellError('DC_QMI_ENCODE', `not an IPv6 address: ${s}`);
  const head = parts[0] ? parts[0].split(':') : [];
  const tail = parts.length === 2 && parts[1] ? parts[1].split(':') : [];
  const fill = parts.length === 2 ? 8 - head.length - tail.length : 0;
  const groups = [...head, ...Array<string>(Math.max(0, fill)).fill('0'), ...tail];
  if (groups.length !== 8 || groups.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) throw new DuocellError('DC_QMI_ENCODE', `not an IPv6 address: ${s}`);
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}

// ------------------------------------------------------------------------------------------
// Writing

const INT_RANGE: Record<IntFormat, [number, number, number]> = {
  u8: [0, 0xff, 1],
  u16: [0, 0xffff, 2],
  u32: [0, 0xffffffff, 4],
  i8: [-0x80, 0x7f, 1],
  i16: [-0x8000, 0x7fff, 2],
  i32: [-0x80000000, 0x7fffffff, 4],
};

function writeInt(f: IntFormat, v: unknown, what: string): Buffer {
  const [lo, hi, size] = INT_RANGE[f];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw new DuocellError('DC_QMI_ENCODE', `${what}: ${String(v)} does not fit ${f}`);
  const b = Buffer.alloc(size);
  if (f === 'u8') b.writeUInt8(v);
  else if (f === 'u16') b.writeUInt16LE(v);
  else if (f === 'u32') b.writeUInt32LE(v);
  else if (f === 'i8') b.writeInt8(v);
  else if (f === 'i16') b.writeInt16LE(v);
  else b.writeInt32LE(v);
  return b;
}

function writeField(f: Field, v: unknown, what: string): Buffer {
  switch (f.t) {
    case 'u8':
    case 'u16':
    case 'u32':
    case 'i8':
    case 'i16':
    case 'i32': {
      let n = v;
      if (typeof v === 'string' && f.enum) {
        const hit = Object.entries(f.enum).find(([, name]) => name === v);
        if (!hit) throw new DuocellError('DC_QMI_ENCODE', `${what}: ${v} is not one of ${Object.values(f.enum).join(', ')}`);
        n = Number(hit[0]);
      }
      return writeInt(f.t, n, what);
    }
    case 'string':
    case 'bytes': {
      if (typeof v !== 'string') throw new DuocellError('DC_QMI_ENCODE', `${what}: expected a string`);
      let b = f.t === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v, 'hex');
      if (f.t === 'string' && f.size !== undefined) {
        if (b.length > f.size) throw new DuocellError('DC_QMI_ENCODE', `${what}: longer than ${f.size} bytes`);
        b = Buffer.concat([b, Buffer.alloc(f.size - b.length, 0xff)]);
      }
      if (f.prefix) return Buffer.concat([writeInt(f.prefix, b.length, `${what} length`), b]);
      return b;
    }
    case 'ipv4': {
      const p = typeof v === 'string' ? v.split('.') : [];
      if (p.length !== 4 || p.some((x) => !/^\d{1,3}$/.test(x) || Number(x) > 255)) throw new DuocellError('DC_QMI_ENCODE', `${what}: not an IPv4 address`);
      const b = Buffer.alloc(4);
      b.writeUInt32LE(((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0);
      return b;
    }
    case 'ipv6':
      if (typeof v !== 'string') throw new DuocellError('DC_QMI_ENCODE', `${what}: not an IPv6 address`);
      return ipv6ToBytes(v);
    case 'struct': {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new DuocellError('DC_QMI_ENCODE', `${what}: expected an object`);
      const o = v as Record<string, unknown>;
      return Buffer.concat(f.fields.map(([k, sub]) => writeField(sub, o[k], `${what}.${k}`)));
    }
    case 'array': {
      if (!Array.isArray(v)) throw new DuocellError('DC_QMI_ENCODE', `${what}: expected an array`);
      return Buffer.concat([writeInt(f.count, v.length, `${what} count`), ...v.map((x, i) => writeField(f.of, x, `${what}[${i}]`))]);
    }
  }
}

// ------------------------------------------------------------------------------------------
// TLV lists ⇄ objects

export interface DecodedTlvs {
  readonly values: QmiObject;
  /** TLVs the description does not know, kept raw (type → hex). */
  readonly unknown: { type: number; hex: string }[];
}

/** Decode TLVs against their descriptions. Every field must fit its TLV exactly. */
export function decodeTlvList(defs: readonly TlvDef[], tlvs: readonly Tlv[], where: string): DecodedTlvs {
  const values: QmiObject = {};
  const unknown: { type: number; hex: string }[] = [];
  for (const tlv of tlvs) {
    const def = defs.find((d) => d.type === tlv.type);
    if (!def) {
      unknown.push({ type: tlv.type, hex: tlv.value.toString('hex') });
      continue;
    }
    const r = new Reader(tlv.value, `${where} TLV 0x${tlv.type.toString(16).padStart(2, '0')} "${def.title}"`);
    values[def.name] = readField(r, def.field, def.name);
    // bytes left after the described fields are tolerated (newer firmware extends structs)
  }
  for (const d of defs) if (d.mandatory && !(d.name in values)) throw new DuocellError('DC_QMI_TLV_MISSING', `${where}: mandatory TLV 0x${d.type.toString(16)} "${d.title}" missing`);
  return { values, unknown };
}

export function encodeTlvList(defs: readonly TlvDef[], values: Readonly<Record<string, unknown>>, where: string): Tlv[] {
  const out: Tlv[] = [];
  for (const d of defs) {
    const v = values[d.name];
    if (v === undefined) {
      if (d.mandatory) throw new DuocellError('DC_QMI_TLV_MISSING', `${where}: mandatory TLV "${d.name}" has no value`);
      continue;
    }
    out.push({ type: d.type, value: writeField(d.field, v, `${where}.${d.name}`) });
  }
  for (const k of Object.keys(values)) if (!defs.some((d) => d.name === k)) throw new DuocellError('DC_QMI_ENCODE', `${where}: no TLV named "${k}"`);
  return out;
}

import { DuocellError } from '../../core/errors.js';

/**
 * QMUX framing (pure). Layout, little-endian throughout:
 *
 *   0x01 | u16 length (bytes after the marker) | u8 flags (0x00 host→modem, 0x80 modem→host)
 *        | u8 service | u8 client id | SDU
 *   SDU, CTL (service 0): u8 flags (0 request, 1 response, 2 indication) | u8 tid  | u16 msg | u16 tlvlen | TLVs
 *   SDU, other services:  u8 flags (0 request, 2 response, 4 indication) | u16 tid | u16 msg | u16 tlvlen | TLVs
 *   TLV: u8 type | u16 length | value
 *
 * decodeFrame() checks every length against its container; QmiStreamParser cuts frames out of
 * a byte stream, resynchronising on the next 0x01 after garbage, with a bounded buffer.
 */

export const QMUX_MARKER = 0x01;
export const QMUX_HEADER = 6; // marker + length + flags + service + client
export const MAX_QMUX_FRAME = 0x10000; // length is u16 (+1 marker)

export type QmiKind = 'request' | 'response' | 'indication';

export interface Tlv {
  readonly type: number;
  readonly value: Buffer;
}

export interface QmiFrame {
  /** QMUX flags: 0x00 from host, 0x80 from modem. */
  readonly qmuxFlags: number;
  readonly service: number;
  readonly client: number;
  readonly kind: QmiKind;
  readonly tid: number;
  readonly message: number;
  readonly tlvs: Tlv[];
}

export function isCtl(service: number): boolean {
  return service === 0;
}

function sduFlags(service: number, kind: QmiKind): number {
  if (isCtl(service)) return kind === 'request' ? 0 : kind === 'response' ? 1 : 2;
  return kind === 'request' ? 0 : kind === 'response' ? 2 : 4;
}

function kindOf(service: number, flags: number): QmiKind | undefined {
  if (isCtl(service)) {
    if (flags === 0) return 'request';
    if (flags === 1) return 'response';
    if (flags === 2) return 'indication';
    return undefined;
  }
  // bit 1 response, bit 2 indication; bit 0 (compound) tolerated as libqmi does
  const f = flags & ~0x01;
  if (f === 0) return 'request';
  if (f === 2) return 'response';
  if (f === 4) return 'indication';
  return undefined;
}

export function encodeFrame(f: Omit<QmiFrame, 'qmuxFlags'> & { qmuxFlags?: number }): Buffer {
  const ctl = isCtl(f.service);
  const tlvLen = f.tlvs.reduce((n, t) => n + 3 + t.value.length, 0);
  const sduHeader = ctl ? 6 : 7;
  const total = QMUX_HEADER + sduHeader + tlvLen;
  if (total - 1 > 0xffff || tlvLen > 0xffff) throw new DuocellError('DC_QMI_ENCODE', `QMI message too long (${total} bytes)`);
  if (f.tid < 0 || f.tid > (ctl ? 0xff : 0xffff)) throw new DuocellError('DC_QMI_ENCODE', `transaction id ${f.tid} out of range`);
  const b = Buffer.alloc(total);
  b[0] = QMUX_MARKER;
  b.writeUInt16LE(total - 1, 1);
  b[3] = f.qmuxFlags ?? (f.kind === 'request' ? 0x00 : 0x80);
  b[4] = f.service;
  b[5] = f.client;
  let o = QMUX_HEADER;
  b[o++] = sduFlags(f.service, f.kind);
  if (ctl) b[o++] = f.tid;
  else {
    b.writeUInt16LE(f.tid, o);
    o += 2;
  }
  b.writeUInt16LE(f.message, o);
  b.writeUInt16LE(tlvLen, o + 2);
  o += 4;
  for (const t of f.tlvs) {
    if (t.value.length > 0xffff) throw new DuocellError('DC_QMI_ENCODE', `TLV 0x${t.type.toString(16)} too long`);
    b[o] = t.type;
    b.writeUInt16LE(t.value.length, o + 1);
    t.value.copy(b, o + 3);
    o += 3 + t.value.length;
  }
  return b;
}

/** Split a TLV area; every TLV must fit inside it exactly. */
export function decodeTlvs(area: Buffer): Tlv[] {
  const out: Tlv[] = [];
  let o = 0;
  while (o < area.length) {
    if (o + 3 > area.length) throw new DuocellError('DC_QMI_TLV_OVERFLOW', `TLV header at offset ${o} runs past the TLV area (${area.length} bytes)`);
    const type = area[o]!;
    const len = area.readUInt16LE(o + 1);
    if (o + 3 + len > area.length)
      throw new DuocellError('DC_QMI_TLV_OVERFLOW', `TLV 0x${type.toString(16).padStart(2, '0')} says ${len} bytes but only ${area.length - o - 3} remain`, { tlv: type });
    out.push({ type, value: area.subarray(o + 3, o + 3 + len) });
    o += 3 + len;
  }
  return out;
}

/**
 * Decode exactly one complete QMUX frame. Throws DC_QMI_FRAME_TRUNCATED when `buf` is shorter
 * than the length field says, DC_QMI_FRAME_INVALID for a bad marker/flags/inner length, and
 * DC_QMI_TLV_OVERFLOW when a TLV runs past the message.
 */
export function decodeFrame(buf: Buffer): QmiFrame {
  if (buf.length < 1 || buf[0] !== QMUX_MARKER) throw new DuocellError('DC_QMI_FRAME_INVALID', 'QMUX frame does not start with 0x01');
  if (buf.length < 3) throw new DuocellError('DC_QMI_FRAME_TRUNCATED', `QMUX frame of ${buf.length} bytes has no length field`);
  const len = buf.readUInt16LE(1);
  if (buf.length < len + 1) throw new DuocellError('DC_QMI_FRAME_TRUNCATED', `QMUX length says ${len + 1} bytes, only ${buf.length} present`, { need: len + 1, have: buf.length });
  if (buf.length > len + 1) throw new DuocellError('DC_QMI_FRAME_INVALID', `${buf.length - len - 1} bytes after the QMUX frame`);
  if (len + 1 < QMUX_HEADER + 6) throw new DuocellError('DC_QMI_FRAME_INVALID', `QMUX length ${len} too short for a QMI header`);
  const qmuxFlags = buf[3]!;
  if (qmuxFlags !== 0x00 && qmuxFlags !== 0x80) throw new DuocellError('DC_QMI_FRAME_INVALID', `QMUX flags 0x${qmuxFlags.toString(16)} are neither 0x00 nor 0x80`);
  const service = buf[4]!;
  const client = buf[5]!;
  const ctl = isCtl(service);
  const sduHeader = ctl ? 6 : 7;
  if (len + 1 < QMUX_HEADER + sduHeader) throw new DuocellError('DC_QMI_FRAME_INVALID', `QMUX length ${len} too short for a QMI header`);
  let o = QMUX_HEADER;
  const flags = buf[o++]!;
  const kind = kindOf(service, flags);
  if (kind === undefined) throw new DuocellError('DC_QMI_FRAME_INVALID', `QMI SDU flags 0x${flags.toString(16)} unknown for service ${service}`);
  let tid: number;
  if (ctl) tid = buf[o++]!;
  else {
    tid = buf.readUInt16LE(o);
    o += 2;
  }
  const message = buf.readUInt16LE(o);
  const tlvLen = buf.readUInt16LE(o + 2);
  o += 4;
  if (o + tlvLen !== len + 1)
    throw new DuocellError('DC_QMI_FRAME_INVALID', `QMI TLV length ${tlvLen} disagrees with QMUX length ${len} (expected ${len + 1 - o})`);
  return { qmuxFlags, service, client, kind, tid, message, tlvs: decodeTlvs(buf.subarray(o, o + tlvLen)) };
}

export type QmiStreamItem = { readonly frame: QmiFrame; readonly raw: Buffer } | { readonly error: DuocellError; readonly raw: Buffer };

/**
 * Cuts QMUX frames out of a byte stream. Bytes before a plausible header are dropped (counted
 * in `skipped`); a header whose lengths disagree is treated as a false start and the search
 * resumes one byte later. Memory never exceeds one maximal frame (64 KiB) plus one chunk.
 */
export class QmiStreamParser {
  #buf: Buffer = Buffer.alloc(0);
  /** Garbage bytes discarded so far. */
  skipped = 0;

  get buffered(): number {
    return this.#buf.length;
  }

  push(chunk: Uint8Array): QmiStreamItem[] {
    this.#buf = this.#buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.#buf, chunk]);
    const out: QmiStreamItem[] = [];
    for (;;) {
      const start = this.#buf.indexOf(QMUX_MARKER);
      if (start < 0) {
        this.skipped += this.#buf.length;
        this.#buf = Buffer.alloc(0);
        break;
      }
      if (start > 0) {
        this.skipped += start;
        this.#buf = this.#buf.subarray(start);
      }
      if (this.#buf.length < QMUX_HEADER + 1) break;
      const len = this.#buf.readUInt16LE(1);
      const flags = this.#buf[3]!;
      const service = this.#buf[4]!;
      const minLen = QMUX_HEADER - 1 + (service === 0 ? 6 : 7);
      if ((flags !== 0x00 && flags !== 0x80) || len < minLen) {
        this.#drop(1);
        continue;
      }
      // check the QMI header as soon as it is here, so a false start with a large length does
      // not stall the stream waiting for bytes that belong to real frames
      const sduOff = QMUX_HEADER + (service === 0 ? 4 : 5);
      if (this.#buf.length < sduOff + 2) break;
      const tlvLen = this.#buf.readUInt16LE(sduOff);
      if (sduOff + 2 + tlvLen !== len + 1 || kindOf(service, this.#buf[QMUX_HEADER]!) === undefined) {
        this.#drop(1); // false start: lengths or flags disagree
        continue;
      }
      if (this.#buf.length < len + 1) break; // wait for the rest
      const raw = Buffer.from(this.#buf.subarray(0, len + 1));
      this.#buf = this.#buf.subarray(len + 1);
      try {
        out.push({ frame: decodeFrame(raw), raw });
      } catch (e) {
        out.push({ error: e as DuocellError, raw });
      }
    }
    if (this.#buf.length > 0 && this.#buf.byteOffset > 0 && this.#buf.buffer.byteLength > 4 * MAX_QMUX_FRAME) this.#buf = Buffer.from(this.#buf);
    return out;
  }

  #drop(n: number): void {
    this.skipped += n;
    this.#buf = this.#buf.subarray(n);
  }

  reset(): void {
    this.#buf = Buffer.alloc(0);
  }
}

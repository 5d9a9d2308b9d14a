import { DuocellError } from '../../core/errors.js';
import { Attrs, decodeAttrs, encodeAttrs, nlaAlign, type AttrOut } from './attrs.js';

/**
 * Netlink messages, pure: struct nlmsghdr and the generic-netlink header.
 *
 *   nlmsghdr (16 bytes, host order)          genlmsghdr (4 bytes)
 *   +--------+------+-------+-----+-----+    +-----+---------+----------+
 *   | len u32|type16|flags16|seq32|pid32|    | cmd | version | reserved |
 *   +--------+------+-------+-----+-----+    +-----+---------+----------+
 *   len counts the header and payload, not the trailing padding to 4 bytes.
 *
 * One datagram from the kernel may hold several messages back to back (a dump part);
 * splitMessages() cuts them apart and checks every length.
 */

export const NLMSG_HDRLEN = 16;
export const GENL_HDRLEN = 4;

export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;
/** Message types below this are control messages. */
export const NLMSG_MIN_TYPE = 0x10;

export const NLM_F_REQUEST = 0x01;
export const NLM_F_MULTI = 0x02;
export const NLM_F_ACK = 0x04;
export const NLM_F_ECHO = 0x08;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_DUMP_FILTERED = 0x20;
// GET requests
export const NLM_F_ROOT = 0x100;
export const NLM_F_MATCH = 0x200;
export const NLM_F_ATOMIC = 0x400;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
// NEW requests
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_APPEND = 0x800;
// ACK / ERROR messages
export const NLM_F_CAPPED = 0x100;
export const NLM_F_ACK_TLVS = 0x200;

/** Extended ACK attributes (enum nlmsgerr_attrs). */
export const NLMSGERR_ATTR_MSG = 1;
export const NLMSGERR_ATTR_OFFS = 2;

export interface NlMessage {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  readonly pid: number;
  /** The bytes after the 16-byte header (a view into the input when decoded). */
  readonly payload: Buffer;
}

function malformed(message: string, detail: Record<string, unknown> = {}): DuocellError {
  return new DuocellError('DC_NETLINK_MALFORMED', message, { origin: 'local', ...detail });
}

/** Encode one message: header + payload, padded to 4 bytes. */
export function encodeMessage(m: { type: number; flags?: number; seq?: number; pid?: number; payload?: Buffer | readonly Buffer[] }): Buffer {
  const parts = m.payload === undefined ? [] : Buffer.isBuffer(m.payload) ? [m.payload] : [...m.payload];
  let plen = 0;
  for (const p of parts) plen += p.length;
  const len = NLMSG_HDRLEN + plen;
  const out = Buffer.alloc(nlaAlign(len));
  out.writeUInt32LE(len, 0);
  out.writeUInt16LE(m.type & 0xffff, 4);
  out.writeUInt16LE((m.flags ?? 0) & 0xffff, 6);
  out.writeUInt32LE((m.seq ?? 0) >>> 0, 8);
  out.writeUInt32LE((m.pid ?? 0) >>> 0, 12);
  let off = NLMSG_HDRLEN;
  for (const p of parts) {
    p.copy(out, off);
    off += p.length;
  }
  return out;
}

/** Cut a datagram into messages. Strict about lengths; at most `max` messages. */
export function splitMessages(buf: Buffer, max = 65536): NlMessage[] {
  const out: NlMessage[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < NLMSG_HDRLEN) throw malformed(`${buf.length - off} trailing bytes, shorter than a netlink header`, { offset: off });
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN) throw malformed(`netlink message length ${len} below the header size`, { offset: off });
    if (len > buf.length - off) throw malformed(`netlink message length ${len} runs past the datagram (${buf.length - off} left)`, { offset: off });
    if (out.length >= max) throw malformed(`more than ${max} messages in one datagram`);
    out.push({
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      pid: buf.readUInt32LE(off + 12),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += nlaAlign(len);
  }
  return out;
}

/** A decoded NLMSG_ERROR: errno 0 is an ACK. */
export interface NlError {
  /** Positive errno (0 = success / ACK). */
  readonly errno: number;
  /** Header of the request it answers. */
  readonly request: { type: number; flags: number; seq: number; pid: number };
  /** Extended-ACK text, if the kernel sent one. */
  readonly extMessage?: string;
  readonly extOffset?: number;
}

export function decodeError(m: NlMessage): NlError {
  const p = m.payload;
  if (p.length < 4 + NLMSG_HDRLEN) throw malformed(`NLMSG_ERROR payload of ${p.length} bytes, expected at least 20`);
  const error = p.readInt32LE(0);
  const request = { type: p.readUInt16LE(8), flags: p.readUInt16LE(10), seq: p.readUInt32LE(12), pid: p.readUInt32LE(16) };
  const out: { errno: number; request: NlError['request']; extMessage?: string; extOffset?: number } = { errno: -error, request };
  if ((m.flags & NLM_F_ACK_TLVS) !== 0) {
    // The original request follows the error code, whole unless CAPPED (then only its header).
    const origLen = (m.flags & NLM_F_CAPPED) !== 0 ? NLMSG_HDRLEN : p.readUInt32LE(4);
    const tlvStart = 4 + nlaAlign(origLen);
    if (tlvStart <= p.length) {
      try {
        const a = new Attrs(decodeAttrs(p.subarray(tlvStart)));
        const msg = a.string(NLMSGERR_ATTR_MSG);
        if (msg !== undefined) out.extMessage = msg;
        const offs = a.u32(NLMSGERR_ATTR_OFFS);
        if (offs !== undefined) out.extOffset = offs;
      } catch {
        // extended ack is advisory: ignore a malformed one
      }
    }
  }
  return out;
}

/** Generic netlink: the message payload is genlmsghdr + attributes. */
export interface GenlMessage {
  readonly cmd: number;
  readonly version: number;
  readonly attrs: Buffer;
}

export function encodeGenl(cmd: number, version: number, attrs: readonly AttrOut[] = []): Buffer {
  const a = encodeAttrs(attrs);
  const out = Buffer.alloc(GENL_HDRLEN + a.length);
  out.writeUInt8(cmd & 0xff, 0);
  out.writeUInt8(version & 0xff, 1);
  a.copy(out, GENL_HDRLEN);
  return out;
}

export function decodeGenl(payload: Buffer): GenlMessage {
  if (payload.length < GENL_HDRLEN) throw malformed(`generic netlink payload of ${payload.length} bytes, shorter than its header`);
  return { cmd: payload.readUInt8(0), version: payload.readUInt8(1), attrs: payload.subarray(GENL_HDRLEN) };
}

/** Full generic-netlink request: nlmsghdr(family id) + genlmsghdr + attributes. */
export function encodeGenlRequest(family: number, cmd: number, version: number, attrs: readonly AttrOut[], flags: number, seq: number, pid = 0): Buffer {
  return encodeMessage({ type: family, flags, seq, pid, payload: encodeGenl(cmd, version, attrs) });
}

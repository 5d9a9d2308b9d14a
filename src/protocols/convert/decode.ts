/**
 * RFC 8803 Convert messages, bytes → TLVs. Pure: no I/O. (TLVs → bytes: encode.ts.)
 *
 * Wire layout (every field big-endian, every length in 32-bit words):
 *
 *   fixed header   | Version=1 (8) | Total Length (8) | Magic Number 0x2263 (16) |
 *   generic TLV    | Type (8)      | Length (8)       | Value ...                |
 *
 *   Info (0x01)        | 01 | 01 | Zero (16) |
 *   Connect (0x0A)     | 0A | len | Remote Peer Port (16) | Remote Peer IP (128, IPv4 as ::ffff:a.b.c.d) | TCP options, 0-padded |
 *   Ext TCP Hdr (0x14) | 14 | len | Unassigned (16) | options of the server's SYN+ACK, 0-padded |
 *   Supported (0x15)   | 15 | len | Unassigned (16) | option kinds (8 bits each), 0-padded |
 *   Cookie (0x16)      | 16 | len | Zero (16) | opaque value, 0-padded |
 *   Error (0x1E)       | 1E | len | Error Code (8) | Value, 0-padded |
 *   Private Use (0xC0-0xFF) | type | len | value ... — 0xD0 with the "dcg1" marker is the duocell
 *                        grant extension (grant.ts); any other is kept raw as `private`
 *
 * parseConvertMessage() is incremental: feed it the bytes received so far and it answers
 * `{ need }` (give me at least this many bytes in total), `{ message, consumed }`, or throws
 * a DuocellError whose `detail.convertError` is the Error TLV code RFC 8803 prescribes for
 * that fault, so a converter can answer the peer with exactly that code.
 *
 * Role checks (which TLVs a client may send, which a converter may answer) live in
 * validateRequest() / validateResponse(), not in the parser.
 */
import { DuocellError } from '../../core/errors.js';
import { CONVERT_HEADER_BYTES, CONVERT_MAGIC, CONVERT_VERSION, ConvertErrorCode, TCP_OPT_EOL, TCP_OPT_MSS, TCP_OPT_NOP, TLV_PRIVATE_USE_MIN, TlvType } from './constants.js';
import { decodeGrantTlv, hasGrantMarker } from './grant.js';
import { forbiddenTarget, fromIPv6Bytes } from './ip.js';
import type { TcpOption, ConvertTlv, ConvertParse } from './tlv.js';
import { convertFault, malformed, asBuffer } from './faults.js';

/**
 * Parse one Convert message from the start of `input`.
 * - `{ need: n }`: not enough bytes yet; call again once at least n bytes are there.
 * - `{ message, consumed }`: a whole valid message; bytes after `consumed` are application data.
 * - throws DuocellError (DC_CONVERT_*), `detail.convertError` = the Error TLV code to answer.
 * Faults are reported as early as the bytes allow (a wrong version at the first byte).
 */
export function parseConvertMessage(input: Uint8Array): ConvertParse {
  const buf = asBuffer(input);
  if (buf.length < 1) return { need: 1 };
  const version = buf[0]!;
  if (version !== CONVERT_VERSION) {
    throw convertFault(ConvertErrorCode.UNSUPPORTED_VERSION, `Convert version ${version} is not supported`, {
      offset: 0,
      version,
    });
  }
  if (buf.length < 2) return { need: 2 };
  const totalWords = buf[1]!;
  if (totalWords === 0) throw malformed('Total Length 0 cannot hold the fixed header', 1);
  if (buf.length < CONVERT_HEADER_BYTES) return { need: CONVERT_HEADER_BYTES };
  const magic = buf.readUInt16BE(2);
  if (magic !== CONVERT_MAGIC) throw malformed(`bad magic number 0x${magic.toString(16)}`, 2);
  const total = totalWords * 4;
  // Check every TLV header that has arrived, so a lying length fails before the rest comes.
  let off = CONVERT_HEADER_BYTES;
  while (off < total) {
    if (buf.length < off + 2) return { need: Math.min(total, off + 2) };
    const type = buf[off]!;
    const words = buf[off + 1]!;
    if (words === 0) throw malformed(`TLV 0x${type.toString(16)} has Length 0`, off + 1);
    if (off + words * 4 > total) {
      throw malformed(`TLV 0x${type.toString(16)} (${words * 4} bytes) runs past Total Length`, off + 1);
    }
    if (!KNOWN_TYPES.has(type) && type < TLV_PRIVATE_USE_MIN) {
      throw convertFault(ConvertErrorCode.UNSUPPORTED_MESSAGE, `unsupported TLV type 0x${type.toString(16)}`, {
        offset: off,
        tlvType: type,
      });
    }
    off += words * 4;
  }
  if (buf.length < total) return { need: total };
  const tlvs: ConvertTlv[] = [];
  off = CONVERT_HEADER_BYTES;
  while (off < total) {
    const len = buf[off + 1]! * 4;
    tlvs.push(decodeTlv(buf.subarray(off, off + len), off));
    off += len;
  }
  return { message: { tlvs }, consumed: total };
}

const KNOWN_TYPES: ReadonlySet<number> = new Set(Object.values(TlvType));

function decodeTlv(t: Buffer, at: number): ConvertTlv {
  const type = t[0]!;
  switch (type) {
    case TlvType.INFO:
      if (t.length !== 4) throw malformed(`Info TLV must be 4 bytes, is ${t.length}`, at + 1);
      return { type: 'info' };
    case TlvType.CONNECT: {
      if (t.length < 20) throw malformed(`Connect TLV must be at least 20 bytes, is ${t.length}`, at + 1);
      const port = t.readUInt16BE(2);
      if (port === 0) throw malformed('Connect TLV Remote Peer Port 0', at + 2);
      const addr = t.subarray(4, 20);
      const bad = forbiddenTarget(addr);
      if (bad !== undefined) throw malformed(`Connect TLV Remote Peer IP Address is ${bad}`, at + 4);
      const tcpOptions = decodeConnectOptions(t.subarray(20), at + 20);
      return { type: 'connect', address: fromIPv6Bytes(addr), port, tcpOptions };
    }
    case TlvType.EXTENDED_TCP_HEADER: {
      const opts = t.subarray(4);
      checkTcpOptionBlock(opts, at + 4);
      return { type: 'extended-tcp-header', tcpOptions: Buffer.from(opts) };
    }
    case TlvType.SUPPORTED_TCP_EXTENSIONS: {
      const kinds: number[] = [];
      let i = 4;
      for (; i < t.length && t[i] !== TCP_OPT_EOL; i++) {
        const k = t[i]!;
        if (k === TCP_OPT_NOP || k === TCP_OPT_MSS) {
          throw malformed(`Supported TCP Extensions must not list kind ${k}`, at + i);
        }
        kinds.push(k);
      }
      for (; i < t.length; i++) if (t[i] !== 0) throw malformed('non-zero byte after the kinds padding', at + i);
      return { type: 'supported-tcp-extensions', kinds };
    }
    case TlvType.COOKIE:
      if (t.length < 8) throw malformed('Cookie TLV carries no opaque value', at + 1);
      return { type: 'cookie', cookie: Buffer.from(t.subarray(4)) };
    case TlvType.ERROR:
      return { type: 'error', code: t[2]!, value: Buffer.from(t.subarray(3)) };
    default:
      if (type >= TLV_PRIVATE_USE_MIN) return decodePrivate(t, at);
      // parseConvertMessage() screens types first; reaching here is a bug.
      throw new DuocellError('DC_INTERNAL', `decodeTlv: unscreened type ${type}`);
  }
}

/** A Private Use TLV: the duocell grant (request) when it carries our marker, else kept raw. */
function decodePrivate(t: Buffer, at: number): ConvertTlv {
  if (t[0] !== TlvType.DUOCELL_GRANT || !hasGrantMarker(t)) return { type: 'private', code: t[0]!, value: Buffer.from(t.subarray(2)) };
  if (t.length === 8) return { type: 'grant-request' };
  const g = decodeGrantTlv(t);
  if ('fault' in g) throw malformed(g.fault, at + g.offset);
  return { type: 'grant', grant: g };
}

/**
 * The TCP Options field of a Connect TLV: kind, length (≥ 2), value. A zero byte ends the list
 * and everything after it must be zero (padding). EOL and NOP have no length byte and do not
 * belong here (RFC 8803 4.2.4), but a converter must ignore them (section 5.1): a NOP is skipped.
 */
function decodeConnectOptions(b: Buffer, at: number): TcpOption[] {
  const out: TcpOption[] = [];
  let i = 0;
  while (i < b.length) {
    const kind = b[i]!;
    if (kind === TCP_OPT_EOL) {
      for (let j = i; j < b.length; j++) if (b[j] !== 0) throw malformed('non-zero byte after the end of the TCP options', at + j);
      break;
    }
    if (kind === TCP_OPT_NOP) {
      i++;
      continue;
    }
    if (i + 1 >= b.length) throw malformed(`TCP option ${kind} has no length byte`, at + i);
    const len = b[i + 1]!;
    if (len < 2) throw malformed(`TCP option ${kind} has length ${len}`, at + i + 1);
    if (i + len > b.length) throw malformed(`TCP option ${kind} runs past the Connect TLV`, at + i + 1);
    out.push({ kind, data: Buffer.from(b.subarray(i + 2, i + len)) });
    i += len;
  }
  return out;
}

/** A raw TCP option block (as in a SYN+ACK): NOP is 1 byte, EOL ends it, others kind+len. */
function checkTcpOptionBlock(b: Buffer, at: number): void {
  let i = 0;
  while (i < b.length) {
    const kind = b[i]!;
    if (kind === TCP_OPT_EOL) return;
    if (kind === TCP_OPT_NOP) {
      i++;
      continue;
    }
    if (i + 1 >= b.length) throw malformed(`TCP option ${kind} has no length byte`, at + i);
    const len = b[i + 1]!;
    if (len < 2 || i + len > b.length) throw malformed(`TCP option ${kind} has a bad length ${len}`, at + i + 1);
    i += len;
  }
}

/** Walk a raw TCP option block (Extended TCP Header) into options; NOP/EOL dropped. */
export function splitTcpOptions(b: Uint8Array): TcpOption[] {
  const buf = asBuffer(b);
  checkTcpOptionBlock(buf, 0);
  const out: TcpOption[] = [];
  let i = 0;
  while (i < buf.length && buf[i] !== TCP_OPT_EOL) {
    if (buf[i] === TCP_OPT_NOP) {
      i++;
      continue;
    }
    const len = buf[i + 1]!;
    out.push({ kind: buf[i]!, data: Buffer.from(buf.subarray(i + 2, i + len)) });
    i += len;
  }
  return out;
}

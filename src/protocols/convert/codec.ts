/**
 * RFC 8803 Convert messages: bytes ⇄ TLVs, both directions. Pure: no I/O.
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
import { DuocellError, type ErrorCode } from '../../core/errors.js';
import {
  CONVERT_HEADER_BYTES,
  CONVERT_MAGIC,
  CONVERT_MAX_MESSAGE_BYTES,
  CONVERT_VERSION,
  ConvertErrorCode,
  TCP_OPT_EOL,
  TCP_OPT_MSS,
  TCP_OPT_NOP,
  TLV_PRIVATE_USE_MIN,
  TlvType,
  convertErrorName,
} from './constants.js';
import { decodeGrantTlv, grantTlvBytes, hasGrantMarker, GRANT_MARKER, type ConvertGrant } from './grant.js';
import { forbiddenTarget, fromIPv6Bytes, toIPv6Bytes } from './ip.js';

/** One TCP option as carried in a Connect TLV: kind, and the bytes after kind+length. */
export interface TcpOption {
  kind: number;
  data: Buffer;
}

export interface InfoTlv {
  type: 'info';
}
export interface ConnectTlv {
  type: 'connect';
  /** Dotted IPv4 (sent IPv4-mapped) or RFC 5952 IPv6. */
  address: string;
  port: number;
  tcpOptions: TcpOption[];
}
export interface ExtendedTcpHeaderTlv {
  type: 'extended-tcp-header';
  /** Raw TCP options of the server's SYN+ACK (zero padding included when decoded). */
  tcpOptions: Buffer;
}
export interface SupportedTcpExtensionsTlv {
  type: 'supported-tcp-extensions';
  kinds: number[];
}
export interface CookieTlv {
  type: 'cookie';
  /** The opaque value. Decoded cookies include the zero padding to the 32-bit boundary. */
  cookie: Buffer;
}
export interface ErrorTlv {
  type: 'error';
  code: number;
  /** Error-specific value (zero padding included when decoded). */
  value: Buffer;
}
/** Client → converter: "tell me the grant" (duocell extension, Private Use type 0xD0). */
export interface GrantRequestTlv {
  type: 'grant-request';
}
/** Converter → client: the resource policy granted to this session (duocell extension). */
export interface GrantTlv {
  type: 'grant';
  grant: ConvertGrant;
}
/** Any other Private Use TLV (types 192-255), kept raw: `value` is everything after type and length. */
export interface PrivateTlv {
  type: 'private';
  code: number;
  value: Buffer;
}
export type ConvertTlv =
  | InfoTlv
  | ConnectTlv
  | ExtendedTcpHeaderTlv
  | SupportedTcpExtensionsTlv
  | CookieTlv
  | ErrorTlv
  | GrantRequestTlv
  | GrantTlv
  | PrivateTlv;

export interface ConvertMessage {
  tlvs: ConvertTlv[];
}

export type ConvertParse = { need: number } | { message: ConvertMessage; consumed: number };

const CODE_FOR: Readonly<Record<number, ErrorCode>> = {
  [ConvertErrorCode.UNSUPPORTED_VERSION]: 'DC_CONVERT_UNSUPPORTED_VERSION',
  [ConvertErrorCode.MALFORMED_MESSAGE]: 'DC_CONVERT_MALFORMED',
  [ConvertErrorCode.UNSUPPORTED_MESSAGE]: 'DC_CONVERT_UNSUPPORTED_MESSAGE',
  [ConvertErrorCode.MISSING_COOKIE]: 'DC_CONVERT_MISSING_COOKIE',
  [ConvertErrorCode.NOT_AUTHORIZED]: 'DC_CONVERT_NOT_AUTHORIZED',
  [ConvertErrorCode.UNSUPPORTED_TCP_OPTION]: 'DC_CONVERT_UNSUPPORTED_TCP_OPTION',
};

/** A local protocol fault, carrying the Convert error code to answer with. */
export function convertFault(convertError: number, message: string, extra: Record<string, unknown> = {}): DuocellError {
  const code = CODE_FOR[convertError] ?? 'DC_CONVERT_MALFORMED';
  return new DuocellError(code, message, { origin: 'local', convertError, ...extra });
}

function malformed(message: string, offset: number): DuocellError {
  return convertFault(ConvertErrorCode.MALFORMED_MESSAGE, message, { offset });
}

function encodeFault(message: string): DuocellError {
  return new DuocellError('DC_CONVERT_ENCODE', message, { origin: 'local' });
}

const asBuffer = (b: Uint8Array): Buffer =>
  Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);

const pad4 = (n: number): number => (n + 3) & ~3;

// ───────────────────────────── decoding ─────────────────────────────

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

// ───────────────────────────── role checks ─────────────────────────────

export interface ConvertRequest {
  connect?: { address: string; port: number; tcpOptions: TcpOption[] };
  info: boolean;
  cookie?: Buffer;
  /** The client asked for the duocell grant extension (answered only on success). */
  grant?: true;
}

/**
 * What a converter accepts from a client: at most one each of Info, Connect, Cookie, and at
 * least one of Info or Connect. Converter-only TLVs are "Unsupported Message", repeats and
 * an empty request are "Malformed Message".
 */
export function validateRequest(msg: ConvertMessage): ConvertRequest {
  const out: { connect?: ConvertRequest['connect']; info: boolean; cookie?: Buffer; grant?: true } = { info: false };
  for (const t of msg.tlvs) {
    switch (t.type) {
      case 'info':
        if (out.info) throw malformed('two Info TLVs', 0);
        out.info = true;
        break;
      case 'connect':
        if (out.connect !== undefined) throw malformed('two Connect TLVs', 0);
        out.connect = { address: t.address, port: t.port, tcpOptions: t.tcpOptions };
        break;
      case 'cookie':
        if (out.cookie !== undefined) throw malformed('two Cookie TLVs', 0);
        out.cookie = t.cookie;
        break;
      case 'grant-request':
        if (out.grant !== undefined) throw malformed('two grant requests', 0);
        out.grant = true;
        break;
      default:
        // Error, Extended TCP Header, Supported TCP Extensions, a grant, a foreign private TLV.
        throw convertFault(ConvertErrorCode.UNSUPPORTED_MESSAGE, `a client may not send a ${t.type} TLV`, {
          tlvType: t.type,
        });
    }
  }
  if (out.connect === undefined && !out.info) throw malformed('neither Connect nor Info TLV', 0);
  return out;
}

export interface ConvertResponse {
  error?: { code: number; name: string; value: Buffer };
  extendedTcpHeader?: Buffer;
  supportedTcpExtensions?: number[];
  cookie?: Buffer;
  /** The duocell grant extension, when the converter sent one. */
  grant?: ConvertGrant;
}

/** What a client accepts from a converter: Error, Extended TCP Header, Supported TCP
 * Extensions, Cookie, the duocell grant (at most one each). Private Use TLVs that are not ours
 * are skipped: the range is the operator's own, and a client that does not know one cannot act
 * on it. */
export function validateResponse(msg: ConvertMessage): ConvertResponse {
  const out: ConvertResponse = {};
  for (const t of msg.tlvs) {
    switch (t.type) {
      case 'error':
        if (out.error !== undefined) throw malformed('two Error TLVs', 0);
        out.error = { code: t.code, name: convertErrorName(t.code), value: t.value };
        break;
      case 'extended-tcp-header':
        if (out.extendedTcpHeader !== undefined) throw malformed('two Extended TCP Header TLVs', 0);
        out.extendedTcpHeader = t.tcpOptions;
        break;
      case 'supported-tcp-extensions':
        if (out.supportedTcpExtensions !== undefined) throw malformed('two Supported TCP Extensions TLVs', 0);
        out.supportedTcpExtensions = t.kinds;
        break;
      case 'cookie':
        if (out.cookie !== undefined) throw malformed('two Cookie TLVs', 0);
        out.cookie = t.cookie;
        break;
      case 'grant':
        if (out.grant !== undefined) throw malformed('two grant TLVs', 0);
        out.grant = t.grant;
        break;
      case 'private':
        break;
      default:
        throw convertFault(ConvertErrorCode.UNSUPPORTED_MESSAGE, `a converter may not send a ${t.type} TLV`, {
          tlvType: t.type,
        });
    }
  }
  return out;
}

// ───────────────────────────── encoding ─────────────────────────────

function tlvBytes(t: ConvertTlv): Buffer {
  switch (t.type) {
    case 'info':
      return Buffer.from([TlvType.INFO, 1, 0, 0]);
    case 'connect': {
      if (!Number.isInteger(t.port) || t.port < 1 || t.port > 65535) throw encodeFault(`bad port ${t.port}`);
      const addr = toIPv6Bytes(t.address);
      if (addr === undefined) throw encodeFault(`not a numeric address: ${JSON.stringify(t.address)}`);
      let optLen = 0;
      for (const o of t.tcpOptions) {
        if (!Number.isInteger(o.kind) || o.kind <= TCP_OPT_NOP || o.kind > 255) {
          throw encodeFault(`TCP option kind ${o.kind} cannot go in a Connect TLV`);
        }
        if (o.data.length > 253) throw encodeFault(`TCP option ${o.kind} value too long`);
        optLen += 2 + o.data.length;
      }
      const b = Buffer.alloc(20 + pad4(optLen));
      b[0] = TlvType.CONNECT;
      b.writeUInt16BE(t.port, 2);
      b.set(addr, 4);
      let i = 20;
      for (const o of t.tcpOptions) {
        b[i] = o.kind;
        b[i + 1] = 2 + o.data.length;
        b.set(o.data, i + 2);
        i += 2 + o.data.length;
      }
      return b;
    }
    case 'extended-tcp-header': {
      const b = Buffer.alloc(4 + pad4(t.tcpOptions.length));
      b[0] = TlvType.EXTENDED_TCP_HEADER;
      b.set(t.tcpOptions, 4);
      return b;
    }
    case 'supported-tcp-extensions': {
      const b = Buffer.alloc(4 + pad4(t.kinds.length));
      b[0] = TlvType.SUPPORTED_TCP_EXTENSIONS;
      t.kinds.forEach((k, i) => {
        if (!Number.isInteger(k) || k <= TCP_OPT_MSS || k > 255) throw encodeFault(`kind ${k} cannot be listed`);
        b[4 + i] = k;
      });
      return b;
    }
    case 'cookie': {
      if (t.cookie.length === 0) throw encodeFault('empty cookie');
      const b = Buffer.alloc(4 + pad4(t.cookie.length));
      b[0] = TlvType.COOKIE;
      b.set(t.cookie, 4);
      return b;
    }
    case 'error': {
      if (!Number.isInteger(t.code) || t.code < 0 || t.code > 255) throw encodeFault(`bad error code ${t.code}`);
      const b = Buffer.alloc(pad4(3 + t.value.length));
      b[0] = TlvType.ERROR;
      b[2] = t.code;
      b.set(t.value, 3);
      return b;
    }
    case 'grant-request': {
      const b = Buffer.alloc(8);
      b[0] = TlvType.DUOCELL_GRANT;
      GRANT_MARKER.copy(b, 4);
      return b;
    }
    case 'grant': {
      const b = grantTlvBytes(TlvType.DUOCELL_GRANT, t.grant);
      if (typeof b === 'string') throw encodeFault(`grant: ${b}`);
      return b;
    }
    case 'private': {
      if (!Number.isInteger(t.code) || t.code < TLV_PRIVATE_USE_MIN || t.code > 255) throw encodeFault(`private TLV type ${t.code} is not in 192-255`);
      const b = Buffer.alloc(pad4(2 + t.value.length));
      b[0] = t.code;
      b.set(t.value, 2);
      return b;
    }
  }
}

/** One whole Convert message (fixed header + TLVs). Throws DC_CONVERT_ENCODE when it cannot be. */
export function encodeConvertMessage(tlvs: readonly ConvertTlv[]): Buffer {
  const parts = tlvs.map(tlvBytes);
  for (const p of parts) {
    if (p.length > 255 * 4) throw encodeFault(`a ${p.length}-byte TLV exceeds 255 words`);
    p[1] = p.length / 4;
  }
  const total = CONVERT_HEADER_BYTES + parts.reduce((n, p) => n + p.length, 0);
  if (total > CONVERT_MAX_MESSAGE_BYTES) throw encodeFault(`message of ${total} bytes exceeds ${CONVERT_MAX_MESSAGE_BYTES}`);
  const head = Buffer.from([CONVERT_VERSION, total / 4, CONVERT_MAGIC >> 8, CONVERT_MAGIC & 0xff]);
  return Buffer.concat([head, ...parts], total);
}

// ───────────────────────── Error TLV values ─────────────────────────

/** Longest echo that fits: 1020 - header 4 - (type, length, code, shift byte) 4. */
export const MAX_ECHO_BYTES = CONVERT_MAX_MESSAGE_BYTES - 8;

/**
 * The Error TLV for a fault, with the value RFC 8803 4.2.8 asks for:
 * - Unsupported Version: the versions we support (1).
 * - Malformed / Unsupported Message: the received message echoed, shifted by one byte so it
 *   keeps its original 32-bit alignment (truncated to what fits in one message).
 * - Unsupported TCP Option: the kinds refused.
 * - Resource Exceeded / Network Failure: suggested delay in seconds (0 = default ≥ 30 s).
 * - Destination Unreachable: the ICMP code received.
 * - others (Missing Cookie, Not Authorized, Connection Reset): zero.
 */
export function errorTlv(
  code: number,
  opts: { received?: Uint8Array; kinds?: readonly number[]; delaySeconds?: number; icmpCode?: number } = {},
): ErrorTlv {
  let value: Buffer;
  switch (code) {
    case ConvertErrorCode.UNSUPPORTED_VERSION:
      value = Buffer.from([CONVERT_VERSION]);
      break;
    case ConvertErrorCode.MALFORMED_MESSAGE:
    case ConvertErrorCode.UNSUPPORTED_MESSAGE: {
      const r = opts.received === undefined ? Buffer.alloc(0) : asBuffer(opts.received).subarray(0, MAX_ECHO_BYTES);
      value = Buffer.concat([Buffer.alloc(1), r]);
      break;
    }
    case ConvertErrorCode.UNSUPPORTED_TCP_OPTION:
      value = Buffer.from(opts.kinds ?? []);
      break;
    case ConvertErrorCode.RESOURCE_EXCEEDED:
    case ConvertErrorCode.NETWORK_FAILURE:
      value = Buffer.from([Math.max(0, Math.min(255, Math.round(opts.delaySeconds ?? 0)))]);
      break;
    case ConvertErrorCode.DESTINATION_UNREACHABLE:
      value = Buffer.from([(opts.icmpCode ?? 0) & 0xff]);
      break;
    default:
      value = Buffer.alloc(1);
  }
  return { type: 'error', code, value };
}

/** The bytes a converter answers a fault with (header + Error TLV [+ Cookie TLV]). */
export function encodeConvertError(
  code: number,
  opts: Parameters<typeof errorTlv>[1] & { cookie?: Buffer } = {},
): Buffer {
  const tlvs: ConvertTlv[] = [errorTlv(code, opts)];
  if (opts.cookie !== undefined) tlvs.push({ type: 'cookie', cookie: opts.cookie });
  return encodeConvertMessage(tlvs);
}

/** The answer to a DuocellError thrown by parseConvertMessage/validateRequest. */
export function encodeFaultReply(err: DuocellError, received?: Uint8Array): Buffer {
  const c = typeof err.detail.convertError === 'number' ? err.detail.convertError : ConvertErrorCode.MALFORMED_MESSAGE;
  const kinds = Array.isArray(err.detail.kinds) ? (err.detail.kinds as number[]) : undefined;
  return encodeConvertError(c, { received, kinds });
}

/** The Malformed/Unsupported Message echo carried by an Error TLV value (shift byte removed). */
export function echoOf(value: Uint8Array): Buffer {
  return Buffer.from(asBuffer(value).subarray(1));
}

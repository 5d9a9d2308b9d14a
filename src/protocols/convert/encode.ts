/** RFC 8803 Convert messages, TLVs → bytes, and the Error replies a converter sends. Pure: no I/O. */
import type { DuocellError } from '../../core/errors.js';
import { CONVERT_HEADER_BYTES, CONVERT_MAGIC, CONVERT_MAX_MESSAGE_BYTES, CONVERT_VERSION, ConvertErrorCode, TCP_OPT_MSS, TCP_OPT_NOP, TLV_PRIVATE_USE_MIN, TlvType } from './constants.js';
import { grantTlvBytes, GRANT_MARKER } from './grant.js';
import { toIPv6Bytes } from './ip.js';
import type { ErrorTlv, ConvertTlv } from './tlv.js';
import { encodeFault, asBuffer, pad4 } from './faults.js';

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

import { DuocellError } from '../../core/errors.js';

/**
 * ICMP echo (RFC 792) and ICMPv6 echo (RFC 4443 §4.1/4.2) messages, as a Linux ping socket
 * (`socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)`, or AF_INET6 + IPPROTO_ICMPV6) sends and receives
 * them: the ICMP header and data, no IP header.
 *
 *   0        1        2                 4                 6                 8
 *   +--------+--------+-----------------+-----------------+-----------------+----------...
 *   | type   | code 0 | checksum        | identifier      | sequence        | data
 *   +--------+--------+-----------------+-----------------+-----------------+----------...
 *     IPv4: request 8, reply 0          IPv6: request 128, reply 129
 *
 * On a ping socket the kernel writes the identifier (the socket's "port") and, for both
 * families, the checksum; it also verified the checksum of what it delivers. encodeEcho still
 * fills the IPv4 checksum (it needs no pseudo-header), so the bytes are right on any socket; the
 * ICMPv6 checksum covers a pseudo-header with addresses this codec does not know and is left 0.
 * No I/O here; drivers/probe/icmp.ts owns the socket.
 */

export type IcmpFamily = 4 | 6;
export type EchoKind = 'request' | 'reply';

export const ECHO_HEADER = 8;
/** Largest echo this codec makes or accepts (an Ethernet MTU's worth of ICMP). */
export const ECHO_MAX = 1480;

const TYPES: Readonly<Record<IcmpFamily, Readonly<Record<EchoKind, number>>>> = {
  4: { request: 8, reply: 0 },
  6: { request: 128, reply: 129 },
};

export interface EchoMessage {
  readonly kind: EchoKind;
  readonly id: number;
  readonly seq: number;
  readonly data: Buffer;
}

function malformed(msg: string): never {
  throw new DuocellError('DC_PROBE_MALFORMED', msg);
}

function u16(x: number, what: string): number {
  if (!Number.isInteger(x) || x < 0 || x > 0xffff) malformed(`ICMP echo ${what} must be a u16, got ${String(x)}`);
  return x;
}

/** The Internet checksum (RFC 1071) of `b`. */
export function inetChecksum(b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  if (b.length % 2 === 1) sum += b[b.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export function encodeEcho(family: IcmpFamily, m: EchoMessage): Buffer {
  if (family !== 4 && family !== 6) malformed(`ICMP family must be 4 or 6, got ${String(family)}`);
  const type = TYPES[family][m.kind];
  if (type === undefined) malformed(`unknown ICMP echo kind ${String(m.kind)}`);
  if (ECHO_HEADER + m.data.length > ECHO_MAX) malformed(`ICMP echo longer than ${ECHO_MAX} bytes`);
  const b = Buffer.alloc(ECHO_HEADER + m.data.length);
  b.writeUInt8(type, 0);
  b.writeUInt16BE(u16(m.id, 'identifier'), 4);
  b.writeUInt16BE(u16(m.seq, 'sequence'), 6);
  m.data.copy(b, ECHO_HEADER);
  if (family === 4) b.writeUInt16BE(inetChecksum(b), 2);
  return b;
}

/**
 * Decode one ICMP message as a ping socket delivers it. Anything that is not an echo request or
 * reply of this family with code 0 throws DC_PROBE_MALFORMED (a ping socket delivers only echo
 * replies, but a raw socket or a bug would not). The data is a copy.
 */
export function decodeEcho(family: IcmpFamily, b: Uint8Array): EchoMessage {
  if (family !== 4 && family !== 6) malformed(`ICMP family must be 4 or 6, got ${String(family)}`);
  if (b.length < ECHO_HEADER) malformed(`ICMP echo too short (${b.length} < ${ECHO_HEADER} bytes)`);
  if (b.length > ECHO_MAX) malformed(`ICMP echo too long (${b.length} > ${ECHO_MAX} bytes)`);
  const v = Buffer.from(b.buffer, b.byteOffset, b.length);
  const type = v.readUInt8(0);
  const kind = type === TYPES[family].reply ? 'reply' : type === TYPES[family].request ? 'request' : undefined;
  if (kind === undefined) malformed(`not an ICMP${family === 6 ? 'v6' : ''} echo (type ${type})`);
  if (v.readUInt8(1) !== 0) malformed(`ICMP echo with code ${v.readUInt8(1)} (must be 0)`);
  return { kind, id: v.readUInt16BE(4), seq: v.readUInt16BE(6), data: Buffer.from(v.subarray(ECHO_HEADER)) };
}

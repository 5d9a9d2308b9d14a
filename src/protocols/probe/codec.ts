import { DuocellError } from '../../core/errors.js';

/**
 * The path probe: one UDP datagram sent from an uplink to an echo responder (RFC 862 style:
 * the peer sends every datagram back unchanged), and the same datagram coming back.
 *
 *   0      4    5      6       8            12           16                     24
 *   +------+----+------+-------+------------+------------+----------------------+
 *   | DCPM | v1 | flag | rsvd  | session    | sequence   | send time (µs, u64)  |
 *   +------+----+------+-------+------------+------------+----------------------+
 *
 * `session` is random per prober and path: a reply for another prober (or a spoofed one) is
 * dropped by the caller, who also times the round trip with its own clock (the send time is
 * carried for the echo peer's logs only and never trusted). Padding after 24 bytes is allowed.
 */

export const PROBE_MAGIC = 0x4443504d; // 'DCPM'
export const PROBE_VERSION = 1;
export const PROBE_HEADER = 24;
export const PROBE_MAX = 1500;

export interface ProbeFrame {
  readonly session: number;
  readonly seq: number;
  /** Sender's send time in µs (its own clock). */
  readonly sentUs: bigint;
}

function u32(x: number, what: string): number {
  if (!Number.isInteger(x) || x < 0 || x > 0xffffffff) throw new DuocellError('DC_PROBE_MALFORMED', `probe ${what} must be a u32, got ${String(x)}`);
  return x;
}

export function encodeProbe(f: ProbeFrame, size = PROBE_HEADER): Buffer {
  if (!Number.isInteger(size) || size < PROBE_HEADER || size > PROBE_MAX) throw new DuocellError('DC_PROBE_MALFORMED', `probe size must be ${PROBE_HEADER}..${PROBE_MAX}`);
  if (f.sentUs < 0n || f.sentUs > 0xffffffffffffffffn) throw new DuocellError('DC_PROBE_MALFORMED', 'probe send time out of range');
  const b = Buffer.alloc(size);
  b.writeUInt32BE(PROBE_MAGIC, 0);
  b.writeUInt8(PROBE_VERSION, 4);
  b.writeUInt32BE(u32(f.session, 'session'), 8);
  b.writeUInt32BE(u32(f.seq, 'sequence'), 12);
  b.writeBigUInt64BE(f.sentUs, 16);
  return b;
}

/** Decode a reply; anything that is not a version-1 probe throws DC_PROBE_MALFORMED. */
export function decodeProbe(b: Uint8Array): ProbeFrame {
  if (b.length < PROBE_HEADER) throw new DuocellError('DC_PROBE_MALFORMED', `probe too short (${b.length} < ${PROBE_HEADER} bytes)`);
  if (b.length > PROBE_MAX) throw new DuocellError('DC_PROBE_MALFORMED', `probe too long (${b.length} > ${PROBE_MAX} bytes)`);
  const v = Buffer.from(b.buffer, b.byteOffset, b.length);
  if (v.readUInt32BE(0) !== PROBE_MAGIC) throw new DuocellError('DC_PROBE_MALFORMED', 'not a probe (bad magic)');
  if (v.readUInt8(4) !== PROBE_VERSION) throw new DuocellError('DC_PROBE_MALFORMED', `unknown probe version ${v.readUInt8(4)}`);
  return { session: v.readUInt32BE(8), seq: v.readUInt32BE(12), sentUs: v.readBigUInt64BE(16) };
}

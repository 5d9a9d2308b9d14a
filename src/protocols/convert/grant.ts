/**
 * The duocell grant extension of RFC 8803: a concentrator tells a client that asks for it the
 * resource policy in force for the session it just converted (limits, steering mode, path ratio).
 *
 * It lives in the IANA "Convert TLVs" Private Use range (192-255), so no registered TLV is
 * taken, and it is only ever sent to a client that asked for it: an independent RFC 8803 client
 * never sends the request, so it never sees a grant. A private-use TLV of the same type from
 * someone else is told apart by the 4-byte marker "dcg1" (duocell grant, version 1) that starts
 * both forms' value.
 *
 *   grant request (client → converter), 8 bytes:
 *     | D0 | 02 | 00 00 | 'd' 'c' 'g' '1' |
 *
 *   grant (converter → client), 24 bytes + names, zero-padded to a 32-bit boundary:
 *      0 | D0 | Length (words) | 00 00 |
 *      4 | 'd' 'c' 'g' '1'                                  |
 *      8 | max sessions per UE (32, big-endian)             |
 *     12 | max sessions per N-server (32)                   |
 *     16 | max subflows per session (8) | steering mode (8) | cellular % (8) | WLAN % (8) |
 *     20 | policy name length P (8, ≥ 1) | subscriber name length S (8, 0 = none) |
 *     22 | policy name (P bytes UTF-8) | subscriber name (S bytes UTF-8) | zero padding |
 *
 * Steering mode: 0 active-standby, 1 priority, 2 ratio, 3 smallest-delay (numbers never reused). cellular % + WLAN % = 100.
 * Decoding is strict: a wrong length, a non-zero reserved or padding byte, an unknown mode,
 * ratios not adding up to 100, or names that are not UTF-8 are a Malformed Message.
 */

import type { SteeringMode } from '../../core/model.js';

/** What the resource policy grants one session (the same shape as the proxy's Grant). */
export interface ConvertGrant {
  subscriber: string | null;
  policy: string;
  maxSessionsPerUe: number;
  maxSessionsPerNServer: number;
  maxSubflowsPerSession: number;
  steeringMode: SteeringMode;
  ratio: { cellular: number; wlan: number };
}

/** "dcg1": marks the duocell grant extension, version 1. */
export const GRANT_MARKER = Buffer.from('dcg1', 'latin1');
/** Bytes of a grant TLV before the names. */
export const GRANT_FIXED_BYTES = 22;

/** Index = mode number on the wire: append only. */
const MODES = ['active-standby', 'priority', 'ratio', 'smallest-delay'] as const;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Whether a private-use TLV (type, length and all) starts its value with our marker. */
export function hasGrantMarker(t: Uint8Array): boolean {
  return t.length >= 8 && t[2] === 0 && t[3] === 0 && Buffer.from(t.buffer, t.byteOffset + 4, 4).equals(GRANT_MARKER);
}

/** The bytes of a grant TLV (Length byte left 0: the message encoder fills it). Throws a string when it cannot be. */
export function grantTlvBytes(type: number, g: ConvertGrant): Buffer | string {
  const u32 = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
  const u8 = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 255;
  if (!u32(g.maxSessionsPerUe) || !u32(g.maxSessionsPerNServer)) return 'session limits must be 32-bit unsigned integers';
  if (!u8(g.maxSubflowsPerSession)) return 'maxSubflowsPerSession must be 0-255';
  const mode = MODES.indexOf(g.steeringMode);
  if (mode < 0) return `unknown steering mode ${String(g.steeringMode)}`;
  const { cellular, wlan } = g.ratio;
  if (!u8(cellular) || !u8(wlan) || cellular + wlan !== 100) return 'ratio must be two integers adding up to 100';
  const policy = Buffer.from(g.policy, 'utf8');
  const sub = g.subscriber === null ? Buffer.alloc(0) : Buffer.from(g.subscriber, 'utf8');
  if (policy.length < 1 || policy.length > 255) return 'policy name must be 1-255 bytes';
  if (g.subscriber !== null && (sub.length < 1 || sub.length > 255)) return 'subscriber name must be 1-255 bytes';
  const len = GRANT_FIXED_BYTES + policy.length + sub.length;
  const b = Buffer.alloc((len + 3) & ~3);
  b[0] = type;
  GRANT_MARKER.copy(b, 4);
  b.writeUInt32BE(g.maxSessionsPerUe, 8);
  b.writeUInt32BE(g.maxSessionsPerNServer, 12);
  b[16] = g.maxSubflowsPerSession;
  b[17] = mode;
  b[18] = cellular;
  b[19] = wlan;
  b[20] = policy.length;
  b[21] = sub.length;
  policy.copy(b, 22);
  sub.copy(b, 22 + policy.length);
  return b;
}

/** Decode a whole grant TLV (marker already checked). Returns a string naming the fault and its offset. */
export function decodeGrantTlv(t: Buffer): ConvertGrant | { fault: string; offset: number } {
  if (t.length < 24) return { fault: `grant TLV of ${t.length} bytes is too short`, offset: 1 };
  const mode = MODES[t[17]!];
  if (mode === undefined) return { fault: `grant steering mode ${t[17]} is not defined`, offset: 17 };
  const cellular = t[18]!;
  const wlan = t[19]!;
  if (cellular + wlan !== 100) return { fault: `grant ratio ${cellular}+${wlan} is not 100`, offset: 18 };
  const p = t[20]!;
  const s = t[21]!;
  if (p === 0) return { fault: 'grant without a policy name', offset: 20 };
  const end = GRANT_FIXED_BYTES + p + s;
  if (((end + 3) & ~3) !== t.length) return { fault: `grant names (${p}+${s} bytes) do not fill the TLV's ${t.length} bytes`, offset: 1 };
  for (let i = end; i < t.length; i++) if (t[i] !== 0) return { fault: 'non-zero padding after the grant names', offset: i };
  let policy: string;
  let subscriber: string | null;
  try {
    policy = utf8.decode(t.subarray(22, 22 + p));
    subscriber = s === 0 ? null : utf8.decode(t.subarray(22 + p, end));
  } catch {
    return { fault: 'grant names are not UTF-8', offset: 22 };
  }
  return {
    subscriber,
    policy,
    maxSessionsPerUe: t.readUInt32BE(8),
    maxSessionsPerNServer: t.readUInt32BE(12),
    maxSubflowsPerSession: t[16]!,
    steeringMode: mode,
    ratio: { cellular, wlan },
  };
}

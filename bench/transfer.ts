import { createHash } from 'node:crypto';
import { positionChunks } from './position.js';

/**
 * What a benchmark transfer carries and how it is checked (pure; bench/xfer.ts moves the bytes).
 *
 * Payload: the position pattern (bench/position.ts: every aligned 8-byte word holds its own
 * offset), so that a lost, duplicated or misplaced segment changes the SHA-256 and the receiver,
 * which checks the stream as it arrives, can say where the first wrong byte is and where the
 * bytes there came from. A transfer counts only if the receiver got exactly the bytes asked for
 * and their hash is the pattern's; its time runs to the receiver's last byte.
 */

/** The first `n` bytes of the pattern, in chunks of at most `chunk` (undefined when done). */
export function patternChunks(n: number, chunk: number): { next(): Buffer | undefined } {
  return positionChunks(n, chunk);
}

const hashCache = new Map<number, string>();

/** SHA-256 (hex) of the first n bytes of the pattern. */
export function patternSha256(n: number): string {
  const hit = hashCache.get(n);
  if (hit !== undefined) return hit;
  const h = createHash('sha256');
  const it = patternChunks(n, 1 << 20);
  for (let b = it.next(); b !== undefined; b = it.next()) h.update(b);
  const d = h.digest('hex');
  hashCache.set(n, d);
  return d;
}

/** What the receiving end of a transfer says it got. */
export interface Received {
  received: number;
  receivedHash: string;
  /** Epoch ms of the last byte (all namespaces share one clock). */
  lastByteAt?: number;
  error?: string;
  /** The receiver's position check when a byte was out of place (bench/position.ts describeFault). */
  fault?: string;
}

/** Undefined when the receiver got every byte of the pattern; otherwise what went wrong. */
export function verifyTransfer(r: Received | undefined, expected: number): string | undefined {
  if (r === undefined) return 'no report from the receiver';
  const fault = r.fault === undefined ? '' : `; ${r.fault}`;
  if (r.error !== undefined) return `receiver: ${r.error}${fault}`;
  if (r.received !== expected) return `receiver got ${r.received} of ${expected} bytes${fault}`;
  if (r.receivedHash !== patternSha256(expected)) return `receiver's SHA-256 ${r.receivedHash.slice(0, 12)}… is not the payload's${fault}`;
  if (r.lastByteAt === undefined || !Number.isFinite(r.lastByteAt)) return 'receiver did not stamp its last byte';
  return undefined;
}

/** Mbit/s of a verified transfer from `startAt` (client, before connect) to the receiver's last byte. */
export function transferMbit(bytes: number, startAt: number, lastByteAt: number): number {
  const s = (lastByteAt - startAt) / 1000;
  return s > 0 ? (bytes * 8) / s / 1e6 : NaN;
}

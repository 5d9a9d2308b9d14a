/**
 * A payload that says where each of its bytes belongs (pure; no I/O).
 *
 * Every aligned 8-byte word of the stream holds its own offset, little-endian: bytes 0..7 are
 * 0, bytes 8..15 are 8, and so on. A receiver that checks the stream as it arrives can then
 * say, at the first byte that is not what it should be, where the bytes it got really came
 * from: an earlier offset (a range delivered twice), a later one (a hole), zeroes, or something
 * that is no part of the payload at all. `PositionChecker` keeps a map of the received stream
 * as segments of consecutive source bytes, so a fault reads like
 *   `0+1310720 ←0 | 1310720+65536 ←1245184 | 1376256+… ←1376256`
 * (received offset + length ← source offset): 65536 bytes delivered twice at 1310720.
 */

const MAX_SEGMENTS = 32;
/** A decoded source offset must be below this to count (a payload is far smaller than 2^40). */
const MAX_OFFSET = 2 ** 40;

/** `len` bytes of the pattern from source offset `from`. */
export function positionBytes(from: number, len: number): Buffer {
  const start = from - (from % 8);
  const words = Math.ceil((from + len - start) / 8);
  const dv = new DataView(new ArrayBuffer(words * 8));
  for (let i = 0; i < words; i++) {
    const w = start + i * 8;
    dv.setUint32(i * 8, w % 0x1_0000_0000, true);
    dv.setUint32(i * 8 + 4, Math.floor(w / 0x1_0000_0000), true);
  }
  return Buffer.from(dv.buffer, from - start, len);
}

/** The first `n` bytes of the pattern, in chunks of at most `chunk` (undefined when done). */
export function positionChunks(n: number, chunk: number): { next(): Buffer | undefined } {
  let off = 0;
  return {
    next(): Buffer | undefined {
      if (off >= n) return undefined;
      const k = Math.min(n - off, chunk);
      const b = positionBytes(off, k);
      off += k;
      return b;
    },
  };
}

/** A run of received bytes: `len` bytes at received offset `at`, from source offset `from` (null: not the pattern; 'zero': all zero bytes). */
export interface Segment {
  at: number;
  len: number;
  from: number | null | 'zero';
}

export interface PositionReport {
  /** Received bytes so far. */
  received: number;
  /** The first received offset whose byte is wrong (undefined: every byte right so far). */
  firstBad?: number;
  /** What the first bad byte is: 'duplicate' (an earlier range again), 'hole' (a later one), 'zero', 'foreign'. */
  kind?: 'duplicate' | 'hole' | 'zero' | 'foreign';
  /** Received bytes not at their own offset. */
  badBytes: number;
  /** The received stream as segments (at most 32 kept; `truncated` says when more came). */
  segments: Segment[];
  truncated: boolean;
}

/** `at+len ←from` per segment, joined: the short form for an error message. */
export function describeSegments(r: PositionReport): string {
  const s = r.segments.map((g) => `${g.at}+${g.len} ←${g.from === null ? '?' : g.from}`).join(' | ');
  return r.truncated ? `${s} | …` : s;
}

/** One line for a report: undefined when every byte was in place. */
export function describeFault(r: PositionReport): string | undefined {
  if (r.firstBad === undefined) return undefined;
  return `first bad byte at offset ${r.firstBad} (${r.kind}); ${r.badBytes} bytes out of place; stream map (received offset+length ←source offset): ${describeSegments(r)}`;
}

/**
 * Checks a received stream against the pattern as it arrives. `update(chunk)` in arrival order,
 * `end()` once; `report()` at any time. A wrong byte opens a new segment whose source is decoded
 * from the next two words (any alignment); bytes that decode to nothing are 'zero' or foreign
 * (null) segments, re-tried every 8 bytes.
 */
export class PositionChecker {
  /** Bytes received but not yet checked: up to 23 kept back, the look-ahead of a decode. */
  #pending: Buffer = Buffer.alloc(0);
  /** Received offset of #pending[0]. */
  #at = 0;
  readonly #segments: Segment[] = [];
  #truncated = false;
  /** The open segment (the last one), also when #segments is full. */
  #cur: Segment = { at: 0, len: 0, from: 0 };
  #firstBad: number | undefined;
  #kind: PositionReport['kind'];
  #badBytes = 0;
  #ended = false;

  update(chunk: Buffer): void {
    if (this.#ended) throw new Error('PositionChecker: update after end');
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    this.#run(false);
  }

  end(): PositionReport {
    if (!this.#ended) {
      this.#ended = true;
      this.#run(true);
    }
    return this.report();
  }

  report(): PositionReport {
    const segments = [...this.#segments];
    if (this.#cur.len > 0 || segments.length === 0) {
      if (segments.length < MAX_SEGMENTS) segments.push({ ...this.#cur });
    }
    const truncated = this.#truncated || (this.#cur.len > 0 && this.#segments.length >= MAX_SEGMENTS);
    return {
      received: this.#at + this.#pending.length,
      ...(this.#firstBad === undefined ? {} : { firstBad: this.#firstBad, kind: this.#kind }),
      badBytes: this.#badBytes + (this.#cur.from === this.#cur.at ? 0 : this.#cur.len),
      segments,
      truncated,
    };
  }

  /** Check what is pending; keep back 23 bytes (a decode's look-ahead) unless `final`. */
  #run(final: boolean): void {
    const buf = this.#pending;
    let i = 0;
    const limit = final ? buf.length : Math.max(0, buf.length - 23);
    while (i < limit) {
      const cur = this.#cur;
      if (typeof cur.from === 'number') {
        // Extend the segment while the bytes are its source's.
        const n = limit - i;
        const want = positionBytes(cur.from + cur.len, n);
        const got = buf.subarray(i, i + n);
        if (want.equals(got)) {
          cur.len += n;
          i += n;
          continue;
        }
        let k = 0;
        while (got[k] === want[k]) k++;
        cur.len += k;
        i += k;
      } else {
        // A segment of unknown bytes: try to decode a source again every 8 bytes.
        const from = decodeAt(buf, i);
        if (from === undefined) {
          const step = Math.min(8, limit - i);
          if (cur.from === 'zero' && !isZero(buf, i, step)) this.#open(null);
          this.#cur.len += step;
          i += step;
          continue;
        }
      }
      // buf[i] is not the open segment's next byte: a new segment starts here.
      const from = decodeAt(buf, i);
      const at = this.#at + i;
      if (this.#firstBad === undefined && from !== at) {
        this.#firstBad = at;
        this.#kind = from === undefined ? (isZero(buf, i, Math.min(8, buf.length - i)) ? 'zero' : 'foreign') : from < at ? 'duplicate' : 'hole';
      }
      this.#open(from === undefined ? (isZero(buf, i, Math.min(8, buf.length - i)) ? 'zero' : null) : from);
      if (from === undefined) {
        const step = Math.min(8, limit - i);
        this.#cur.len += step;
        i += step;
      }
    }
    this.#at += i;
    this.#pending = buf.subarray(i);
  }

  /** Close the open segment and start one at the current received offset. */
  #open(from: Segment['from']): void {
    const cur = this.#cur;
    const at = cur.at + cur.len;
    if (cur.len > 0) {
      if (cur.from !== cur.at) this.#badBytes += cur.len;
      if (this.#segments.length < MAX_SEGMENTS) this.#segments.push(cur);
      else this.#truncated = true;
    }
    this.#cur = { at, len: 0, from };
  }
}

function isZero(buf: Buffer, i: number, n: number): boolean {
  for (let k = 0; k < n; k++) if (buf[i + k] !== 0) return false;
  return n > 0;
}

/**
 * The source offset of buf[i], read from the two whole words that follow it at some alignment:
 * the first word w at i + s (s in 0..7) with w ≡ 0 mod 8 and the next word w + 8 gives w − s.
 * Undefined when fewer than 16 + s bytes are there or nothing fits.
 */
function decodeAt(buf: Buffer, i: number): number | undefined {
  for (let s = 0; s < 8; s++) {
    if (i + s + 16 > buf.length) return undefined;
    const w = readU64(buf, i + s);
    if (w % 8 !== 0 || w >= MAX_OFFSET || w < s) continue;
    if (readU64(buf, i + s + 8) !== w + 8) continue;
    // The bytes before the word must belong to the word before it.
    if (s > 0 && !positionBytes(w - s, s).equals(buf.subarray(i, i + s))) continue;
    return w - s;
  }
  return undefined;
}

function readU64(buf: Buffer, i: number): number {
  return buf.readUInt32LE(i) + buf.readUInt32LE(i + 4) * 0x1_0000_0000;
}

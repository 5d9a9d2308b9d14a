import type net from 'node:net';
import { DuocellError, type ErrorCode } from '../../../core/errors.js';

/**
 * Reads framed requests off a client socket for a front (Convert, SOCKS5) and hands back what
 * it read beyond them. Owns the socket's 'data' listener only between construction and
 * detach(); detach() pauses the socket first so no byte is emitted without a listener.
 */
export type Parsed<T> = { need: number } | { value: T; consumed: number };

const EMPTY = Buffer.alloc(0);

export class FrontReader {
  #buf: Buffer = EMPTY;
  #ended = false;
  #error: (Error & { code?: string; errno?: number }) | undefined;
  #wake: (() => void) | undefined;
  #attached = true;
  /** Everything received so far, up to `keep` bytes (for Error TLV echoes). */
  readonly #seen: Buffer[] = [];
  #seenBytes = 0;

  constructor(
    readonly socket: net.Socket,
    readonly keep = 1024,
  ) {
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onEnd);
    socket.on('error', this.#onError);
  }

  readonly #onError = (e: Error): void => {
    this.#error ??= e;
    this.#ended = true;
    this.#wake?.();
  };

  readonly #onData = (d: Buffer): void => {
    this.#buf = this.#buf.length === 0 ? d : Buffer.concat([this.#buf, d]);
    if (this.#seenBytes < this.keep) {
      const part = d.subarray(0, this.keep - this.#seenBytes);
      this.#seen.push(part);
      this.#seenBytes += part.length;
    }
    this.#wake?.();
  };

  readonly #onEnd = (): void => {
    this.#ended = true;
    this.#wake?.();
  };

  /** The first bytes the client sent (at most `keep`). */
  get received(): Buffer {
    return Buffer.concat(this.#seen, this.#seenBytes);
  }

  /**
   * Wait until `parse` accepts the buffered bytes; consume them and return the value.
   * Parse faults propagate as thrown; end of stream or `timeoutMs` → `truncated` error.
   */
  async next<T>(
    parse: (b: Buffer) => Parsed<T>,
    what: string,
    timeoutMs: number,
    truncated: ErrorCode,
    extra: Record<string, unknown> = {},
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = parse(this.#buf);
      if (!('need' in r)) {
        this.#buf = this.#buf.subarray(r.consumed);
        return r.value;
      }
      if (this.#error !== undefined) {
        const e = this.#error;
        throw new DuocellError(truncated, `socket failed while reading ${what}: ${e.message}`, {
          origin: 'kernel',
          cause: e,
          ...(typeof e.code === 'string' ? { sysCode: e.code } : {}),
          ...(typeof e.errno === 'number' ? { errno: Math.abs(e.errno) } : {}),
          ...extra,
        });
      }
      if (this.#ended) {
        throw new DuocellError(truncated, `stream ended after ${this.#buf.length} of ${r.need} bytes of ${what}`, {
          origin: 'local',
          received: this.#buf.length,
          ...extra,
        });
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new DuocellError(truncated, `timed out after ${timeoutMs} ms with ${this.#buf.length} of ${r.need} bytes of ${what}`, {
          origin: 'local',
          received: this.#buf.length,
          ...extra,
        });
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.#wake = done;
      });
      this.#wake = undefined;
    }
  }

  /** Stop reading: pause the socket, drop our listeners, return the bytes not consumed. */
  detach(): Buffer {
    if (this.#attached) {
      this.#attached = false;
      this.socket.pause();
      this.socket.removeListener('data', this.#onData);
      this.socket.removeListener('end', this.#onEnd);
      this.socket.removeListener('close', this.#onEnd);
      this.socket.removeListener('error', this.#onError);
    }
    const rest = this.#buf;
    this.#buf = EMPTY;
    return rest;
  }
}

/**
 * After a refusal: read and drop whatever the client still sends, so that closing the socket
 * sends a FIN after our reply rather than a RST that could destroy the reply in flight.
 */
export function drain(socket: net.Socket): void {
  if (socket.destroyed) return;
  socket.on('data', () => undefined);
  socket.resume();
}


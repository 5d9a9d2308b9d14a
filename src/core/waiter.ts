import { DuocellError, type ErrorCode } from './errors.js';

/**
 * One primitive to match replies to requests (AT, QMI, netlink, sockets alike): register a
 * matcher with a timeout, feed every incoming item to resolve(); the first matching waiter
 * wins. A timeout rejects with an error that says what was awaited.
 */
interface Pending<T> {
  readonly match: (item: T) => boolean;
  readonly what: string;
  readonly resolve: (item: T) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export class Waiter<T> {
  readonly #pending = new Set<Pending<T>>();
  readonly #timeoutCode: ErrorCode;

  constructor(timeoutCode: ErrorCode = 'DC_TIMEOUT') {
    this.#timeoutCode = timeoutCode;
  }

  wait(match: (item: T) => boolean, timeoutMs: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const p: Pending<T> = {
        match,
        what,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#pending.delete(p);
          reject(new DuocellError(this.#timeoutCode, `timed out after ${timeoutMs} ms waiting for ${what}`));
        }, timeoutMs),
      };
      this.#pending.add(p);
    });
  }

  /** Offer an item; returns true if a waiter took it. */
  resolve(item: T): boolean {
    for (const p of this.#pending) {
      if (p.match(item)) {
        clearTimeout(p.timer);
        this.#pending.delete(p);
        p.resolve(item);
        return true;
      }
    }
    return false;
  }

  /** Reject every waiter (port closed, shutdown). */
  rejectAll(e: Error): void {
    for (const p of this.#pending) {
      clearTimeout(p.timer);
      p.reject(e);
    }
    this.#pending.clear();
  }

  get size(): number {
    return this.#pending.size;
  }
}

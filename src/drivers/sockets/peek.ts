import { native } from './native.js';

/**
 * Look at the first bytes a client sent without taking them (native peek + whenReadable:
 * recv(MSG_PEEK), SO_RCVLOWAT, a one-shot uv_poll). The bytes stay queued in the kernel and
 * reach whoever reads the socket next (the relay) unchanged; nothing is consumed or copied
 * back. Used by the transparent front for SNI rules (docs/proxies.md "Matching by TLS SNI").
 *
 *   peek ──► want(bytes) = 0 ─────────────────────────────► done (enough)
 *              │ n > 0: need at least n octets
 *              ▼
 *   SO_RCVLOWAT = n, wait readable ──► peek again ──► …
 *              │ deadline                 │ no new octet (FIN, error, or no SO_RCVLOWAT: then a
 *              ▼                          ▼  short pause before the next look, never a spin)
 *         done (timed out)           done (ended) / wait again
 */

interface PeekNative {
  peek(fd: number, max: number): Buffer | null;
  whenReadable(fd: number, lowat: number, cb: (errno: number) => void): object;
  cancelReadable(h: object): void;
  dupFd(fd: number): number;
  close(fd: number): void;
}

let cached: PeekNative | null | undefined;

function addon(): PeekNative | undefined {
  if (cached !== undefined) return cached ?? undefined;
  cached = load() ?? null;
  return cached ?? undefined;
}

function load(): PeekNative | undefined {
  try {
    const n = native() as unknown as Partial<PeekNative>;
    return typeof n.peek === 'function' && typeof n.whenReadable === 'function' && typeof n.cancelReadable === 'function' && typeof n.dupFd === 'function' ? (n as PeekNative) : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the addon in use can peek (one built before it could cannot). */
export function peekAvailable(): boolean {
  return addon() !== undefined;
}

export interface PeekOptions {
  /** Read at most this many octets. */
  max: number;
  /** Give up after this long (ms): resolve with what has arrived. */
  timeoutMs: number;
  /** 0: enough; n > 0: at least n octets of the stream are needed. */
  want: (bytes: Buffer) => number;
  /** Pause before looking again when a wake-up brought nothing new (default 5 ms). */
  stallMs?: number;
}

export interface PeekResult {
  bytes: Buffer;
  /** done: want() said enough; timeout: the bound passed; ended: the client closed, reset or stalled at its end. */
  outcome: 'done' | 'timeout' | 'ended';
  /** errno when a peek failed (ECONNRESET). */
  errno?: number;
  /** How many times the queue was looked at (1 + wake-ups): a split ClientHello costs one per missing part. */
  looks: number;
}

const EMPTY = Buffer.alloc(0);

/** Peek at `fd` (a connected socket no libuv handle is reading) until `want` is satisfied or the bound passes. */
export function peekUntil(sockFd: number, o: PeekOptions): Promise<PeekResult> {
  const n = addon();
  if (n === undefined) return Promise.resolve({ bytes: EMPTY, outcome: 'ended', errno: 38 /* ENOSYS */, looks: 0 });
  let fd: number;
  try {
    fd = n.dupFd(sockFd); // our own descriptor of the socket: see native/sockets.c
  } catch (e) {
    return Promise.resolve({ bytes: EMPTY, outcome: 'ended', errno: (e as { errno?: number }).errno ?? 0, looks: 0 });
  }
  return new Promise<PeekResult>((resolve) => {
    let last: Buffer = EMPTY;
    let handle: object | undefined;
    let pause: NodeJS.Timeout | undefined;
    let finished = false;
    let looks = 0;
    const finish = (r: Omit<PeekResult, 'looks'>): void => {
      if (finished) return;
      finished = true;
      clearTimeout(deadline);
      clearTimeout(pause);
      if (handle !== undefined) {
        const h = handle;
        handle = undefined;
        n.cancelReadable(h);
      }
      n.close(fd); // after the poll stopped: its registration is gone
      resolve({ ...r, looks });
    };
    const deadline = setTimeout(() => finish({ bytes: last, outcome: 'timeout' }), o.timeoutMs);
    const look = (woken: boolean): void => {
      looks++;
      let b: Buffer | null;
      try {
        b = n.peek(fd, o.max);
      } catch (e) {
        finish({ bytes: last, outcome: 'ended', errno: (e as { errno?: number }).errno ?? 0 });
        return;
      }
      if (b !== null && b.length === 0) return finish({ bytes: last, outcome: 'ended' }); // FIN, nothing queued
      const progress = b !== null && b.length > last.length;
      if (b !== null) last = b;
      const need = last.length === 0 ? 1 : o.want(last);
      if (need === 0 || last.length >= o.max) return finish({ bytes: last, outcome: 'done' });
      if (woken && !progress) {
        // Readable without a new octet: FIN after a partial message, or a socket that ignores
        // SO_RCVLOWAT. Look again a little later instead of spinning on a ready descriptor.
        pause = setTimeout(() => arm(need), o.stallMs ?? 5);
        return;
      }
      arm(need);
    };
    const arm = (need: number): void => {
      if (finished) return;
      try {
        handle = n.whenReadable(fd, Math.min(need, o.max), () => {
          handle = undefined;
          look(true);
        });
      } catch (e) {
        finish({ bytes: last, outcome: 'ended', errno: (e as { errno?: number }).errno ?? 0 });
      }
    };
    look(false);
  });
}

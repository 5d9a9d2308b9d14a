import { native } from './native.js';

/**
 * Readiness-driven reads of a non-blocking file descriptor (native fdWatch: uv_poll + read until
 * EAGAIN). Used for character devices Node cannot wrap itself (cdc-wdm is neither a socket, a
 * pipe nor a tty). `stop()` cancels for real: no read stays pending on the descriptor, so it can
 * be closed and the device reopened without a stale reader stealing replies.
 */
export interface FdWatch {
  stop(): void;
}

/** Whether the addon in use has fdWatch (an addon built before it existed has not). */
export function fdWatchAvailable(): boolean {
  try {
    return typeof (native() as unknown as { fdWatch?: unknown }).fdWatch === 'function';
  } catch {
    return false;
  }
}

/**
 * Watch `fd` (opened O_NONBLOCK): `onData(chunk)` per read, `onEnd(errno)` once (0 = end of file).
 * `dgram`: a datagram socket, where a read of 0 octets is an empty datagram (delivered), not the end.
 */
export function watchFd(fd: number, onData: (chunk: Buffer) => void, onEnd: (errno: number) => void, opts: { dgram?: boolean } = {}): FdWatch {
  const n = native() as unknown as { fdWatch(fd: number, cb: (b: Buffer | null, errno: number) => void, dgram?: boolean): object; fdUnwatch(h: object): void };
  let live = true;
  const h = n.fdWatch(fd, (b, errno) => {
    if (!live) return;
    if (b !== null) onData(b);
    else onEnd(errno);
  }, opts.dgram === true);
  return {
    stop() {
      if (!live) return;
      live = false;
      n.fdUnwatch(h);
    },
  };
}

import { DuocellError } from '../../core/errors.js';
import { native, type NativeSockets } from './native.js';

/**
 * The typed face of the addon's fast-path calls (native/sockets.c "fast path"): a listener
 * accepted in batches with no Node socket per connection, a non-blocking connect, a reset close.
 * The fast path's sessions are relayed by spliceConnect (splice.ts).
 */

/** One accepted connection: its fd (non-blocking) and both ends as the kernel reports them. */
export interface Accepted {
  fd: number;
  remote: { address: string; port: number };
  local: { address: string; port: number };
}

export interface AcceptWatch {
  /** Poll again after an accept error stopped it (EMFILE: the connections wait in the backlog). */
  resume(): void;
  /** Stop for good; the caller then closes the listen fd. */
  stop(): void;
}

type Fast = Required<Pick<NativeSockets, 'acceptWatch' | 'acceptResume' | 'acceptUnwatch' | 'connectStart' | 'sockName' | 'closeReset'>>;

function fast(): Fast {
  const n = native();
  if (typeof n.acceptWatch !== 'function' || typeof n.connectStart !== 'function') {
    throw new DuocellError('DC_SOCKET_NATIVE', 'this build of the socket addon has no fast path: run `npm run setup`');
  }
  return n as unknown as Fast;
}

function sys<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof DuocellError) throw e;
    const err = e as Error & { errno?: number; syscall?: string };
    throw new DuocellError('DC_SOCKET_SYSCALL', `${what}: ${err.message}`, { errno: err.errno, syscall: err.syscall, cause: e });
  }
}

/** Whether the loaded addon has the fast path's calls. */
export function fastAvailable(): boolean {
  try {
    fast();
    return true;
  } catch {
    return false;
  }
}

/**
 * Accept on `fd` (bound, listening) from now on: `onBatch(accepted, errno)` once per readiness
 * wake-up with every connection accept4 returned (at most 128). `errno` ≠ 0: accepting stopped
 * on that error (EMFILE, ENFILE, …) after the listed ones; call resume() to go on.
 * `local`: every connection's local address when the caller knows it (a listener bound to one
 * address, not transparent): no getsockname per connection, and each Accepted shares this object.
 */
export function acceptWatch(fd: number, onBatch: (accepted: Accepted[], errno: number) => void, local?: { address: string; port: number }): AcceptWatch {
  const n = fast();
  let live = true;
  const h = sys('acceptWatch', () =>
    n.acceptWatch(
      fd,
      (list, errno) => {
        if (!live) return;
        const out: Accepted[] = [];
        for (let i = 0; i + 4 < list.length; i += 5) {
          const la = list[i + 3];
          out.push({
            fd: list[i] as number,
            remote: { address: list[i + 1] as string, port: list[i + 2] as number },
            local: la === null || local !== undefined ? local ?? { address: '', port: 0 } : { address: la as string, port: list[i + 4] as number },
          });
        }
        onBatch(out, errno);
      },
      local !== undefined,
    ),
  );
  return {
    resume() {
      if (live) sys('acceptResume', () => n.acceptResume(h));
    },
    stop() {
      if (!live) return;
      live = false;
      n.acceptUnwatch(h);
    },
  };
}

/** listen(2) on a bound socket. */
export function listenOn(fd: number, backlog: number): void {
  sys('listen', () => native().listen(fd, backlog));
}

/** Start a non-blocking connect to a numeric address; throws DC_SOCKET_SYSCALL (errno) when it fails at once. */
export function connectStart(fd: number, host: string, port: number): void {
  const n = fast();
  sys(`connect ${host}:${port}`, () => n.connectStart(fd, host, port));
}

/** The socket's local address (getsockname). */
export function sockName(fd: number): { address: string; port: number } {
  const n = fast();
  const [address, port] = sys('getsockname', () => n.sockName(fd));
  return { address, port };
}

/** Close with a reset (SO_LINGER 0): the peer sees a RST. */
export function closeReset(fd: number): void {
  const n = fast();
  sys('close', () => n.closeReset(fd));
}

/** Close an fd the caller owns. */
export function closeFd(fd: number): void {
  sys('close', () => native().close(fd));
}

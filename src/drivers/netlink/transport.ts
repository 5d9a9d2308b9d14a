import { createRequire } from 'node:module';
import { DuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';

/**
 * The one place duocell touches npm `netlink` (STYLE habit 2). We use only its raw socket:
 * bytes out, bytes in; every message is encoded and decoded by our own codec
 * (src/protocols/netlink), because the library's attribute formatter does not pad.
 *
 * Two library hazards handled here:
 * - an exception thrown inside its receive callback aborts the process: the callback we give
 *   it catches everything;
 * - it reports failures as plain Errors with errno/code fields, or emits 'error' (which throws
 *   when nobody listens): both become DuocellError('DC_NETLINK_SOCKET', { errno }).
 */

export const NETLINK_ROUTE = 0;
export const NETLINK_GENERIC = 16;

const log = logger('duocell:netlink');

/** What the channel needs from a socket; a fake in unit tests, the kernel otherwise. */
export interface NetlinkTransport {
  send(datagram: Buffer): Promise<void>;
  /** Called with every datagram received and the sender's port (0 = the kernel). */
  onReceive(cb: (datagram: Buffer, fromPort: number) => void): void;
  /** Called on socket errors (ENOBUFS: events were lost). */
  onError(cb: (e: DuocellError) => void): void;
  addMembership(group: number): void;
  dropMembership(group: number): void;
  /** Our port id (nlmsg_pid of our requests). */
  readonly port: number;
  /** Keep or stop keeping the event loop alive for this socket. */
  ref(on: boolean): void;
  close(): void;
}

interface RawSocketLike {
  on(ev: 'message' | 'truncatedMessage', cb: (msg: Buffer, rinfo: { port: number; truncated?: number }) => void): unknown;
  on(ev: 'error', cb: (e: Error & { errno?: number; code?: string; syscall?: string }) => void): unknown;
  send(msg: Uint8Array, options: { port?: number }, cb: (e?: Error & { errno?: number; code?: string; syscall?: string }) => void): void;
  addMembership(g: number): void;
  dropMembership(g: number): void;
  address(): { port: number };
  ref(): void;
  unref(): void;
  close(): void;
  setRecvBufferSize(n: number): void;
}

type RawCtor = new (protocol: number, options?: { recvBufferSize?: number; sendBufferSize?: number }) => RawSocketLike;

let rawCtor: RawCtor | undefined;

function loadRaw(): RawCtor {
  if (rawCtor !== undefined) return rawCtor;
  try {
    const require = createRequire(import.meta.url);
    const lib = require('netlink') as { RawNetlinkSocket: RawCtor };
    rawCtor = lib.RawNetlinkSocket;
    return rawCtor;
  } catch (e) {
    throw new DuocellError('DC_NETLINK_SOCKET', `npm netlink failed to load: ${(e as Error).message}`, { cause: e });
  }
}

/** Turn anything the library throws or reports into a DuocellError carrying the errno. */
export function wrapLibError(what: string, e: unknown): DuocellError {
  if (e instanceof DuocellError) return e;
  const err = e as (Error & { errno?: number; code?: string; syscall?: string }) | undefined;
  const errno = typeof err?.errno === 'number' ? Math.abs(err.errno) : undefined;
  const message = err instanceof Error ? err.message : String(e);
  return new DuocellError('DC_NETLINK_SOCKET', `${what}: ${message}`, {
    ...(errno === undefined ? { origin: 'local' as const } : { errno }),
    ...(typeof err?.code === 'string' ? { sysCode: err.code } : {}),
    ...(typeof err?.syscall === 'string' ? { syscall: err.syscall } : {}),
    cause: e,
  });
}

/** Open a kernel netlink socket of the given protocol in this process's network namespace. */
export function openKernelTransport(protocol: number, opts: { recvBufferSize?: number } = {}): NetlinkTransport {
  const Raw = loadRaw();
  let sock: RawSocketLike;
  try {
    sock = new Raw(protocol, { recvBufferSize: opts.recvBufferSize ?? 1 << 20 });
  } catch (e) {
    throw wrapLibError(`netlink socket(protocol ${protocol})`, e);
  }
  let receive: (d: Buffer, port: number) => void = () => {};
  let onErr: (e: DuocellError) => void = (e) => log.warn({ err: e }, 'netlink socket error');
  sock.on('message', (msg, rinfo) => {
    try {
      receive(msg, rinfo.port);
    } catch (e) {
      // never let an exception reach the library's native callback (it aborts the process)
      log.error({ err: e }, 'netlink receive handler threw; message dropped');
    }
  });
  sock.on('truncatedMessage', (msg, rinfo) => {
    try {
      log.warn({ bytes: msg.length, truncated: rinfo.truncated }, 'truncated netlink datagram dropped');
    } catch {
      /* logging failed: nothing to do */
    }
  });
  sock.on('error', (e) => {
    try {
      onErr(wrapLibError('netlink socket', e));
    } catch (x) {
      log.error({ err: x }, 'netlink error handler threw');
    }
  });
  let closed = false;
  return {
    get port() {
      return sock.address().port;
    },
    send(datagram) {
      return new Promise<void>((resolve, reject) => {
        if (closed) return reject(new DuocellError('DC_NETLINK_CLOSED', 'netlink socket is closed'));
        try {
          sock.send(datagram, { port: 0 }, (e) => (e === undefined || e === null ? resolve() : reject(wrapLibError('netlink send', e))));
        } catch (e) {
          reject(wrapLibError('netlink send', e));
        }
      });
    },
    onReceive(cb) {
      receive = cb;
    },
    onError(cb) {
      onErr = cb;
    },
    addMembership(group) {
      try {
        sock.addMembership(group);
      } catch (e) {
        throw wrapLibError(`join multicast group ${group}`, e);
      }
    },
    dropMembership(group) {
      try {
        sock.dropMembership(group);
      } catch (e) {
        throw wrapLibError(`leave multicast group ${group}`, e);
      }
    },
    ref(on) {
      if (on) sock.ref();
      else sock.unref();
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        sock.close();
      } catch (e) {
        log.debug({ err: e }, 'netlink close');
      }
    },
  };
}

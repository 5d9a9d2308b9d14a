import os from 'node:os';
import { getSystemErrorName } from 'node:util';
import { DuocellError } from '../../core/errors.js';
import { native, type NativeSockets } from './native.js';

/**
 * The typed face of the addon's spliced relay (native/sockets.c, "Spliced relay"): bytes move
 * between two connected sockets socket → pipe → socket with splice(2) on one relay thread and
 * never enter JavaScript. The caller hands over two fds (the addon relays on duplicates of
 * them) and must close its own handles right after, without shutdown.
 */

export interface SpliceDone {
  /** Bytes delivered client → server and server → client. */
  up: number;
  down: number;
  /** True when the session ended in a reset (error or RST on a side, or abort()). */
  reset: boolean;
  /** The errno behind a reset (ECONNABORTED for abort()), 0 otherwise. */
  errno: number;
  /** The errno's name (ECONNRESET, …), when there is one. */
  errnoName?: string;
  /** spliceConnect only: the session ended before its upstream connect completed, because the server side failed, the client went or abort() came. */
  before?: 'server' | 'client' | 'abort';
  /**
   * spliceConnect with keepClient only: the client's fd, handed back open (no RST) because the
   * session ended before its connect completed for the server side or an abort (`before`
   * 'server' | 'abort'). The caller owns it from here.
   */
  clientFd?: number;
}

export interface SpliceStats {
  up: number;
  down: number;
  /** Date.now() of the last byte moved (or of the hand-over). */
  lastActivity: number;
  /** The session's own fds, valid until its completion is delivered (getsockopt only). */
  clientFd: number;
  serverFd: number;
}

type Spliced = Required<Pick<NativeSockets, 'spliceInit' | 'spliceStart' | 'spliceStats' | 'spliceAbort' | 'spliceActive'>> & Pick<NativeSockets, 'spliceFinHold' | 'spliceBulk' | 'spliceBulkStats'>;

let api: Spliced | null | undefined;
const waiting = new Map<number, (r: SpliceDone) => void>();
/** Fast-path sessions: told when their upstream connect completes. */
const connecting = new Map<number, (serverMptcp: boolean) => void>();
const scratch = new Float64Array(5);

function load(): Spliced | null {
  if (api !== undefined) return api;
  try {
    const n = native();
    if (typeof n.spliceInit !== 'function' || typeof n.spliceStart !== 'function') {
      api = null;
      return api;
    }
    // One call per batch of the relay thread: DC_REC numbers per item (native/sockets.c
    // splice_done_js). A callback that throws does not cost the others theirs: the first error
    // is thrown again once the whole batch is delivered.
    n.spliceInit((rec) => {
      let failed: { e: unknown } | undefined;
      for (let i = 0; i + REC <= rec.length; i += REC) {
        try {
          deliver(rec[i]!, rec[i + 1]!, rec[i + 2]!, rec[i + 3]!, rec[i + 4]! !== 0, rec[i + 5]!, rec[i + 6]!);
        } catch (e) {
          failed ??= { e };
        }
      }
      if (failed !== undefined) throw failed.e;
    });
    api = n as Spliced;
  } catch {
    api = null;
  }
  return api;
}

/** Numbers per item of a relay batch: id, kind, up, down, reset, errno, kept client fd. */
const REC = 7;

/** kind 0: relayed to the end; 1: the upstream connect completed (a: 1 when MPTCP); 2 the connect failed; 3 the client went first; 4 aborted while connecting. */
function deliver(id: number, kind: number, up: number, down: number, reset: boolean, errno: number, kept: number): void {
  if (kind === 1) {
    const c = connecting.get(id);
    connecting.delete(id);
    c?.(up === 1);
    return;
  }
  const cb = waiting.get(id);
  if (cb === undefined) return;
  waiting.delete(id);
  connecting.delete(id);
  const r: SpliceDone = { up, down, reset, errno };
  if (kind > 1) r.before = kind === 2 ? 'server' : kind === 3 ? 'client' : 'abort';
  if (errno !== 0) r.errnoName = errnoName(errno);
  if (kept >= 0) r.clientFd = kept;
  cb(r);
}

function errnoName(errno: number): string {
  try {
    return getSystemErrorName(-errno);
  } catch {
    return `errno ${errno}`;
  }
}

/** True when the loaded addon has the spliced relay (and it started). */
export function spliceAvailable(): boolean {
  return load() !== null;
}

/**
 * Relay between the two fds from now on; `onDone` runs once with the final counts. `earlyUp` /
 * `earlyDown`: bytes already read from the client / server, sent before anything else.
 * Throws DC_SOCKET_SYSCALL (fds untouched, caller still owns them) when the hand-over fails.
 */
export function spliceStart(clientFd: number, serverFd: number, onDone: (r: SpliceDone) => void, earlyUp?: Buffer, earlyDown?: Buffer): number {
  const n = load();
  if (n === null) throw new DuocellError('DC_SOCKET_NATIVE', 'this build of the socket addon has no spliced relay');
  let id: number;
  try {
    id = n.spliceStart(clientFd, serverFd, earlyUp, earlyDown);
  } catch (e) {
    const err = e as Error & { errno?: number; syscall?: string };
    throw new DuocellError('DC_SOCKET_SYSCALL', `splice hand-over: ${err.message}`, { errno: err.errno, syscall: err.syscall, cause: e });
  }
  waiting.set(id, onDone);
  return id;
}

/**
 * The fast path: relay between an accepted client fd and a server fd whose non-blocking connect
 * is in flight. The addon takes both fds (the caller must not close them); `onConnected` runs
 * when the connect completes (with MPTCP or not), `onDone` once at the end (`before` set when
 * it ended before the connect completed). `keepClient`: when the server side fails or an abort
 * comes before the connect completes, the client fd comes back open in `onDone` (`clientFd`)
 * instead of being reset. `plain`: the server fd is a plain TCP socket (not IPPROTO_MPTCP), so
 * `onConnected` gets false without asking the kernel. Throws DC_SOCKET_SYSCALL (fds still the caller's).
 */
export function spliceConnect(clientFd: number, serverFd: number, onConnected: (serverMptcp: boolean) => void, onDone: (r: SpliceDone) => void, keepClient = false, plain = false): number {
  const n = load();
  if (n === null) throw new DuocellError('DC_SOCKET_NATIVE', 'this build of the socket addon has no spliced relay');
  let id: number;
  try {
    // flags: 1 connecting, 2 adopt the fds, 4 hand the client back if the connect fails, 8 the
    // server fd is plain TCP: no MPTCP_INFO question when it connects (native/sockets.c)
    id = n.spliceStart(clientFd, serverFd, undefined, undefined, 3 | (keepClient ? 4 : 0) | (plain ? 8 : 0));
  } catch (e) {
    const err = e as Error & { errno?: number; syscall?: string };
    throw new DuocellError('DC_SOCKET_SYSCALL', `splice hand-over: ${err.message}`, { errno: err.errno, syscall: err.syscall, cause: e });
  }
  waiting.set(id, onDone);
  connecting.set(id, onConnected);
  return id;
}

/** Live counters of a spliced session; undefined once its completion has been delivered. */
export function spliceStats(id: number): SpliceStats | undefined {
  const n = load();
  if (n === null || !n.spliceStats(id, scratch)) return undefined;
  return { up: scratch[0]!, down: scratch[1]!, lastActivity: scratch[2]!, clientFd: scratch[3]!, serverFd: scratch[4]! };
}

/** Reset both sides of a live spliced session; its completion follows (reset: true). */
export function spliceAbort(id: number): boolean {
  const n = load();
  return n !== null && n.spliceAbort(id);
}

/** Spliced sessions whose completion has not been delivered yet. */
export function spliceActive(): number {
  const n = load();
  return n === null ? 0 : n.spliceActive();
}

/**
 * The upstream FIN hold (docs/relay.md "The half-closed stall"): from now on a client's FIN
 * towards an MPTCP upstream waits until that connection has `joins` extra subflows, each
 * established and carrying bytes, at most `capMs`. `joins` 0 or `capMs` 0: no hold.
 */
export function spliceFinHold(joins: number, capMs: number): void {
  const n = load();
  if (n !== null && typeof n.spliceFinHold === 'function') n.spliceFinHold(joins, capMs);
}

/** The same rule for one fd (JS relay mode): true when a FIN may go now (or the addon cannot tell). */
export function finHoldReady(fd: number, joins: number): boolean {
  let n: NativeSockets;
  try {
    n = native();
  } catch {
    return true;
  }
  return typeof n.finHoldReady !== 'function' || n.finHoldReady(fd, joins);
}

/**
 * Bulk sessions (native/sockets.c "Bulk sessions", docs/relay.md): a spliced session one of whose
 * directions has carried `atBytes` leaves the epoll thread for two blocking worker threads of its
 * own (one per direction), at most `maxSessions` such sessions at a time. `atBytes` 0: at the
 * first byte; negative: never. Same semantics either way; fewer wake-ups and calls per byte.
 */
export interface RelayBulk {
  atBytes: number;
  maxSessions: number;
}

export const DEFAULT_RELAY_BULK_MIB = 4;
/** Two threads per bulk session: at most the number of CPUs, 2 to 4 sessions. */
export function defaultBulkSessions(): number {
  return Math.min(4, Math.max(2, os.availableParallelism()));
}

/**
 * DUOCELL_RELAY_BULK_MIB: MiB one direction carries before the session moves (0 = at once,
 * `off` = never; unset = 4), DUOCELL_RELAY_BULK_MAX: sessions with workers at once (1..4096;
 * unset = defaultBulkSessions()). Bad values: DC_CONFIG_INVALID.
 */
export function parseRelayBulk(mib: string | undefined, max: string | undefined): RelayBulk {
  let atBytes = DEFAULT_RELAY_BULK_MIB * 2 ** 20;
  const m = mib?.trim() ?? '';
  if (m === 'off') atBytes = -1;
  else if (m !== '') {
    const n = /^\d+(\.\d+)?$/.test(m) ? Number(m) : NaN;
    if (!Number.isFinite(n) || n > 1 << 20) {
      throw new DuocellError('DC_CONFIG_INVALID', `DUOCELL_RELAY_BULK_MIB must be 'off' or a number of MiB from 0 to ${1 << 20}, got '${m.slice(0, 40)}'`);
    }
    atBytes = Math.round(n * 2 ** 20);
  }
  let maxSessions = defaultBulkSessions();
  const x = max?.trim() ?? '';
  if (x !== '') {
    const n = /^\d+$/.test(x) ? Number(x) : NaN;
    if (!Number.isInteger(n) || n < 1 || n > 4096) {
      throw new DuocellError('DC_CONFIG_INVALID', `DUOCELL_RELAY_BULK_MAX must be an integer from 1 to 4096, got '${x.slice(0, 40)}'`);
    }
    maxSessions = n;
  }
  return { atBytes, maxSessions };
}

/** Set the bulk hand-off for sessions from now on (no-op without the addon's bulk workers). */
export function spliceBulk(o: RelayBulk): void {
  const n = load();
  if (n !== null && typeof n.spliceBulk === 'function') n.spliceBulk(o.atBytes, o.maxSessions);
}

/** Sessions moved to bulk workers so far, worker threads running now, and idle bulk sessions
 * handed back to the epoll thread so far. */
export function spliceBulkStats(): { moved: number; workers: number; handedBack: number } {
  const n = load();
  if (n === null || typeof n.spliceBulkStats !== 'function') return { moved: 0, workers: 0, handedBack: 0 };
  const [moved = 0, workers = 0, handedBack = 0] = n.spliceBulkStats();
  return { moved, workers, handedBack };
}

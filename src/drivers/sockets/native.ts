import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { DuocellError } from '../../core/errors.js';

/** The raw addon (native/sockets.c). Only src/drivers/sockets/ touches it. */
export interface NativeSockets {
  socket(family: 4 | 6, mptcp: boolean): number;
  setInt(fd: number, level: number, name: number, value: number): void;
  getInt(fd: number, level: number, name: number): number;
  bindToDevice(fd: number, ifname: string): void;
  bind(fd: number, host: string, port: number): void;
  listen(fd: number, backlog: number): void;
  close(fd: number): void;
  getBuf(fd: number, level: number, name: number, size: number): Buffer;
  fullInfo(fd: number): {
    info: Buffer;
    subflows: Buffer;
    tcp: Buffer;
    count: number;
    total: number;
    sfStride: number;
    sfSize: number;
    tcpStride: number;
    tcpSize: number;
  };
  sdNotify(socketPath: string, message: string): void;
  countFds(): number;
  /** A non-blocking AF_UNIX datagram socket bound to `local`, connected to `remote` ('@' = abstract). Absent in older builds. */
  unixDgram?(local: string, remote: string): number;
  /** Spliced relay (see the top of the splice section in native/sockets.c). Absent in older builds. */
  /**
   * One call per batch of the relay thread, 7 numbers per item: id, kind, up, down, reset (0/1),
   * errno, kept client fd (-1: none). `kind`: 0 relayed to the end, 1 the upstream connect
   * completed (`up`: 1 when MPTCP), 2 the connect failed, 3 the client went first, 4 aborted
   * while connecting (fast path).
   */
  spliceInit?(onBatch: (records: Float64Array) => void): void;
  /** `flags`: 1 the server fd's connect is in flight, 2 adopt the fds (no duplicates), 4 hand the client back if the connect fails, 8 the server fd is plain TCP (no MPTCP_INFO question). */
  spliceStart?(clientFd: number, serverFd: number, earlyUp?: Buffer, earlyDown?: Buffer, flags?: number): number;
  spliceStats?(id: number, out: Float64Array): boolean;
  spliceAbort?(id: number): boolean;
  spliceActive?(): number;
  /** The upstream FIN hold (native/sockets.c fin_hold_check). Absent in older builds. */
  spliceFinHold?(joins: number, capMs: number): void;
  /** Bulk sessions to blocking workers (native/sockets.c "Bulk sessions"). Absent in older builds. */
  spliceBulk?(atBytes: number, maxSessions: number): void;
  spliceBulkStats?(): number[];
  finHoldReady?(fd: number, joins: number): boolean;
  /** The fast path's calls (native/sockets.c "fast path"). Absent in older builds. */
  /** `noLocal`: the caller knows the local address (no getsockname per connection; null in the list instead). */
  acceptWatch?(fd: number, onBatch: (list: Array<number | string | null>, errno: number) => void, noLocal?: boolean): object;
  acceptResume?(h: object): void;
  acceptUnwatch?(h: object): void;
  connectStart?(fd: number, host: string, port: number): void;
  sockName?(fd: number): [string, number];
  closeReset?(fd: number): void;
  /** MPTCP_INFO answers on fd (plain TCP and fallen-back connections: false). */
  isMptcp?(fd: number): boolean;
  /** Ping sockets (native/sockets.c, the ICMP echo probes). Absent in older builds. */
  pingSocket?(family: 4 | 6): number;
  sendTo?(fd: number, datagram: Buffer, host: string, port: number, scopeId?: number): number;
  localPort?(fd: number): number;
}

let cached: NativeSockets | undefined;

export function native(): NativeSockets {
  if (cached !== undefined) return cached;
  const here = path.dirname(fileURLToPath(import.meta.url));
  // src/drivers/sockets or dist/src/drivers/sockets → project root
  const override = process.env['DUOCELL_SOCKETS_ADDON'];
  const candidates = [
    ...(override === undefined || override === '' ? [] : [path.resolve(override)]),
    path.resolve(here, '../../../build/Release/duocell_sockets.node'),
    path.resolve(here, '../../../../build/Release/duocell_sockets.node'),
  ];
  const req = createRequire(import.meta.url);
  for (const c of candidates) {
    try {
      cached = req(c) as NativeSockets;
      return cached;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') {
        throw new DuocellError('DC_SOCKET_NATIVE', `cannot load ${c}: ${(e as Error).message}`, { cause: e });
      }
    }
  }
  throw new DuocellError('DC_SOCKET_NATIVE', 'native addon not built: run `npm run setup`');
}

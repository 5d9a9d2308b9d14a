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
  spliceInit?(onDone: (id: number, up: number, down: number, reset: boolean, errno: number) => void): void;
  spliceStart?(clientFd: number, serverFd: number, earlyUp?: Buffer, earlyDown?: Buffer): number;
  spliceStats?(id: number, out: Float64Array): boolean;
  spliceAbort?(id: number): boolean;
  spliceActive?(): number;
  /** The upstream FIN hold (native/sockets.c fin_hold_check). Absent in older builds. */
  spliceFinHold?(joins: number, capMs: number): void;
  finHoldReady?(fd: number, joins: number): boolean;
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

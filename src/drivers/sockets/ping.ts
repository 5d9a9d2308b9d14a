import { DuocellError } from '../../core/errors.js';
import { familyOf } from './index.js';
import { native } from './native.js';

/**
 * Ping sockets: `socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)` (or AF_INET6 + IPPROTO_ICMPV6). The
 * kernel sends the ICMP echo requests written to it, writes their identifier (the socket's port)
 * and checksum, and delivers to it only the echo replies that carry that identifier. No raw
 * socket, no CAP_NET_RAW for the socket itself; but the kernel creates one only for a process
 * whose group is inside net.ipv4.ping_group_range (the sysctl drop-in sets it; EACCES otherwise,
 * even for root: DC_PROBE_PING_DENIED).
 */

const EACCES = 13;

export interface PingSocketOptions {
  /** Source address (the uplink's own). */
  local: string;
  /** SO_BINDTODEVICE: the uplink's interface, so a probe never leaves by another path. */
  device?: string;
}

export interface PingSocket {
  readonly fd: number;
  readonly family: 4 | 6;
  /** The echo identifier the kernel puts in every request of this socket (its port). */
  readonly id: number;
}

function errnoOf(e: unknown): number | undefined {
  return (e as { errno?: number }).errno;
}

/** Open, bind to the device and the local address; the caller owns the fd (closePing). */
export function openPingSocket(o: PingSocketOptions): PingSocket {
  const n = native();
  if (n.pingSocket === undefined || n.sendTo === undefined || n.localPort === undefined) {
    throw new DuocellError('DC_SOCKET_NATIVE', 'the native addon has no ping sockets: rebuild it (`bash scripts/setup.sh`)');
  }
  const family = familyOf(o.local);
  let fd: number;
  try {
    fd = n.pingSocket(family);
  } catch (e) {
    if (errnoOf(e) === EACCES) {
      throw new DuocellError('DC_PROBE_PING_DENIED', `the kernel refuses ping sockets to this process (groups ${[process.getgid?.(), ...(process.getgroups?.() ?? [])].join(',')} outside net.ipv4.ping_group_range): install the sysctl drop-in (60-duocell.conf)`, { errno: EACCES, syscall: 'socket', cause: e, origin: 'kernel' });
    }
    throw new DuocellError('DC_SOCKET_SYSCALL', `ping socket: ${(e as Error).message}`, { errno: errnoOf(e), syscall: 'socket', cause: e, origin: 'kernel' });
  }
  try {
    if (o.device !== undefined) n.bindToDevice(fd, o.device);
    n.bind(fd, o.local, 0);
    return { fd, family, id: n.localPort(fd) };
  } catch (e) {
    n.close(fd);
    throw new DuocellError('DC_SOCKET_SYSCALL', `ping socket on ${o.device ?? '(any device)'} from ${o.local}: ${(e as Error).message}`, { errno: errnoOf(e), syscall: (e as { syscall?: string }).syscall, cause: e, origin: 'kernel' });
  }
}

/** Send one ICMP message (header + data) to `host`; `scopeId` for a link-local IPv6 target. */
export function pingSend(s: PingSocket, message: Buffer, host: string, scopeId = 0): void {
  try {
    native().sendTo!(s.fd, message, host, 0, scopeId);
  } catch (e) {
    throw new DuocellError('DC_SOCKET_SYSCALL', `ping to ${host}: ${(e as Error).message}`, { errno: errnoOf(e), syscall: 'sendto', cause: e, origin: 'kernel' });
  }
}

/** Close a ping socket's fd (after its watch is stopped). */
export function closePing(s: PingSocket): void {
  native().close(s.fd);
}

import net from 'node:net';
import { DuocellError } from '../../core/errors.js';
import { native } from './native.js';
import {
  decodeMptcpInfo,
  decodeSubflows,
  decodeTcpInfo,
  MPTCP_INFO_SIZE,
  type MptcpInfo,
  type SubflowInfo,
  type TcpInfo,
} from './decode.js';

export * from './decode.js';
export * from './splice.js';
export * from './fd-watch.js';
export * from './fast.js';

/**
 * The typed face of the socket layer. Everything else in duocell creates MPTCP/transparent
 * sockets and reads kernel socket state only through these functions.
 */

const SOL_SOCKET = 1;
const SOL_IP = 0;
const SOL_IPV6 = 41;
const SOL_TCP = 6;
const SOL_MPTCP = 284;
const SO_REUSEADDR = 2;
const SO_MARK = 36;
const SO_SNDBUF = 7;
const IP_TRANSPARENT = 19;
const IPV6_TRANSPARENT = 75;
const IP_FREEBIND = 15;
const IPV6_FREEBIND = 78;
const IPV6_V6ONLY = 26;
const IP_BIND_ADDRESS_NO_PORT = 24;
const TCP_INFO = 11;
const TCP_FASTOPEN = 23;
const TCP_FASTOPEN_CONNECT = 30;
const MPTCP_INFO = 1;
const EOPNOTSUPP = 95;
const ENOPROTOOPT = 92;

function sys<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    const err = e as Error & { errno?: number; syscall?: string };
    throw new DuocellError('DC_SOCKET_SYSCALL', `${what}: ${err.message}`, {
      errno: err.errno,
      syscall: err.syscall,
      cause: e,
    });
  }
}

export function familyOf(address: string): 4 | 6 {
  const f = net.isIP(address);
  if (f === 0) throw new DuocellError('DC_SOCKET_ADDRESS', `not a numeric address: ${JSON.stringify(address)}`);
  return f as 4 | 6;
}

export interface ListenOptions {
  host: string;
  port: number;
  /** Create an IPPROTO_MPTCP socket (it still accepts plain TCP clients: fallback). */
  mptcp: boolean;
  /** IP_TRANSPARENT: accept TPROXY'd connections addressed to any destination. */
  transparent?: boolean;
  /** Queue length for TCP Fast Open on the listener (0 = off). */
  fastOpen?: number;
  /** For '::' listeners: accept IPv6 only (default false: dual-stack). */
  v6Only?: boolean;
}

/**
 * The send buffer of every MPTCP socket the product makes (SO_SNDBUF, bytes as given to the
 * kernel, which doubles it; 0 = the kernel's autotuning). The kernel copies it to every subflow
 * (locked) and an accepted connection and its joins inherit the listener's. Why: a subflow's
 * queue is bounded only by its send buffer (MPTCP sets its subflows' notsent_lowat to
 * UINT_MAX), and the data of a subflow that is destroyed is reinjected at the TAIL of the
 * survivors' queues, so a handover waits for them to drain (docs/relay.md, "Handover"). Off by
 * default here: main.ts sets the product's value (DUOCELL_MPTCP_SNDBUF); tools and baselines
 * keep the kernel's.
 */
let mptcpSndbuf = 0;
export function setMptcpSendBuffer(bytes: number): void {
  mptcpSndbuf = bytes;
}
/**
 * Off (the kernel's autotuning) until the trade-off is measured on a quiet host: 393216 (768 KiB
 * in the kernel) cut the survivors' queues to ~1/3 but, in one run at a load average of 20, also
 * the aggregate download (ratio 0.92 on lte + wlan). docs/relay.md, "Handover".
 */
export const DEFAULT_MPTCP_SNDBUF = 0;

/** DUOCELL_MPTCP_SNDBUF: bytes (0 = kernel autotuning), 4096..67108864; unset = the default. */
export function parseMptcpSendBuffer(v: string | undefined): number {
  if (v === undefined || v.trim() === '') return DEFAULT_MPTCP_SNDBUF;
  const n = /^\d+$/.test(v.trim()) ? Number(v.trim()) : NaN;
  if (!Number.isInteger(n) || (n !== 0 && (n < 4096 || n > 64 << 20))) {
    throw new DuocellError('DC_CONFIG_INVALID', `DUOCELL_MPTCP_SNDBUF must be 0 or an integer from 4096 to ${64 << 20} bytes, got '${v.slice(0, 40)}'`);
  }
  return n;
}

/** Create, prepare and bind a listening socket; returns its fd for net.Server.listen({ fd }). */
export function createListenSocket(o: ListenOptions): number {
  const n = native();
  const fam = familyOf(o.host);
  const fd = sys('socket', () => n.socket(fam, o.mptcp));
  try {
    n.setInt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (fam === 6) n.setInt(fd, SOL_IPV6, IPV6_V6ONLY, o.v6Only === true ? 1 : 0);
    if (o.transparent === true) {
      if (fam === 6) n.setInt(fd, SOL_IPV6, IPV6_TRANSPARENT, 1);
      else n.setInt(fd, SOL_IP, IP_TRANSPARENT, 1);
    }
    if (o.fastOpen !== undefined && o.fastOpen > 0) n.setInt(fd, SOL_TCP, TCP_FASTOPEN, o.fastOpen);
    if (o.mptcp && mptcpSndbuf > 0) n.setInt(fd, SOL_SOCKET, SO_SNDBUF, mptcpSndbuf);
    n.bind(fd, o.host, o.port);
  } catch (e) {
    n.close(fd);
    return sys(`listen ${o.host}:${o.port}`, () => {
      throw e;
    });
  }
  return fd;
}

export interface ConnectSocketOptions {
  family: 4 | 6;
  mptcp: boolean;
  /** Originate from this local address (the first subflow's source). */
  localAddress?: string;
  /** SO_BINDTODEVICE: originate through this interface. */
  device?: string;
  /** SO_MARK for policy routing of this connection's packets. */
  mark?: number;
  /** IP_TRANSPARENT (+freebind): allow a non-local source address (spoof the client). */
  transparent?: boolean;
  /** TCP_FASTOPEN_CONNECT: data written before connect completes rides in the SYN. */
  fastOpenConnect?: boolean;
}

/** Create and prepare an unconnected socket; wrap it with connectFd(). */
export function createConnectSocket(o: ConnectSocketOptions): number {
  const n = native();
  const fd = sys('socket', () => n.socket(o.family, o.mptcp));
  try {
    if (o.mark !== undefined) n.setInt(fd, SOL_SOCKET, SO_MARK, o.mark);
    if (o.mptcp && mptcpSndbuf > 0) n.setInt(fd, SOL_SOCKET, SO_SNDBUF, mptcpSndbuf);
    if (o.device !== undefined) n.bindToDevice(fd, o.device);
    if (o.transparent === true) {
      if (o.family === 6) {
        n.setInt(fd, SOL_IPV6, IPV6_TRANSPARENT, 1);
        n.setInt(fd, SOL_IPV6, IPV6_FREEBIND, 1);
      } else {
        n.setInt(fd, SOL_IP, IP_TRANSPARENT, 1);
        n.setInt(fd, SOL_IP, IP_FREEBIND, 1);
      }
    }
    if (o.fastOpenConnect === true) n.setInt(fd, SOL_TCP, TCP_FASTOPEN_CONNECT, 1);
    if (o.localAddress !== undefined) {
      if (familyOf(o.localAddress) !== o.family) {
        throw new DuocellError('DC_SOCKET_ADDRESS', `local address ${o.localAddress} is not IPv${o.family}`);
      }
      // Pick the port at connect() time: thousands of outgoing sessions don't exhaust it.
      if (o.family === 4) n.setInt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1);
      n.bind(fd, o.localAddress, 0);
    }
  } catch (e) {
    n.close(fd);
    if (e instanceof DuocellError) throw e;
    return sys('prepare connect socket', () => {
      throw e;
    });
  }
  return fd;
}

/** The kernel fd behind a Node socket or server (undefined once closed). */
export function fdOf(s: net.Socket | net.Server): number | undefined {
  const h = (s as unknown as { _handle?: { fd?: number } | null })._handle;
  const fd = h?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** MPTCP_INFO, or undefined when the socket is plain TCP or fell back to TCP. */
export function mptcpInfo(fd: number): MptcpInfo | undefined {
  try {
    return decodeMptcpInfo(native().getBuf(fd, SOL_MPTCP, MPTCP_INFO, MPTCP_INFO_SIZE));
  } catch (e) {
    const errno = (e as { errno?: number }).errno;
    if (errno === EOPNOTSUPP || errno === ENOPROTOOPT) return undefined;
    return sys('getsockopt(MPTCP_INFO)', () => {
      throw e;
    });
  }
}

/** True when the connection really speaks MPTCP (not fallen back). */
export function isMptcp(fd: number): boolean {
  // The addon's own check costs no exception for a plain TCP socket (the common N-UE case).
  const n = native();
  if (typeof n.isMptcp === 'function') return n.isMptcp(fd);
  return mptcpInfo(fd) !== undefined;
}

export interface FullInfo {
  info: MptcpInfo;
  subflows: SubflowInfo[];
}

/** MPTCP_FULL_INFO: the connection and every subflow (addresses + tcp_info); undefined on fallback. */
export function fullInfo(fd: number): FullInfo | undefined {
  try {
    const r = native().fullInfo(fd);
    return {
      info: decodeMptcpInfo(r.info),
      subflows: decodeSubflows(r.subflows, r.tcp, r.count, r.sfStride, r.tcpStride, r.tcpSize),
    };
  } catch (e) {
    const errno = (e as { errno?: number }).errno;
    if (errno === EOPNOTSUPP || errno === ENOPROTOOPT) return undefined;
    return sys('getsockopt(MPTCP_FULL_INFO)', () => {
      throw e;
    });
  }
}

/** TCP_INFO of a TCP socket (for an MPTCP socket the kernel reports its first subflow). */
export function tcpInfo(fd: number): TcpInfo {
  return decodeTcpInfo(sys('getsockopt(TCP_INFO)', () => native().getBuf(fd, SOL_TCP, TCP_INFO, 256)));
}

/** Send one sd_notify datagram (READY=1, STATUS=…, WATCHDOG=1) to $NOTIFY_SOCKET. */
export function sdNotify(socketPath: string, message: string): void {
  sys('sd_notify', () => native().sdNotify(socketPath, message));
}

/** Number of open file descriptors of this process (for leak checks). */
export function openFdCount(): number {
  return native().countFds();
}

import { DuocellError } from '../../core/errors.js';
import { Attrs, bufferToIp, ipToBuffer } from './attrs.js';

/**
 * sock_diag (NETLINK_SOCK_DIAG) for TCP sockets, pure. MPTCP subflows are kernel TCP sockets
 * with the "mptcp" ULP: their diag carries tcp_info (bytes, RTT) and, in INET_DIAG_ULP_INFO,
 * the connection token and address ids — per-subflow counters without owning the socket.
 *
 *   request  struct inet_diag_req_v2 (56 bytes): family, protocol, ext, pad, states u32,
 *            inet_diag_sockid (sport be16, dport be16, src[16], dst[16], if u32, cookie u64)
 *   reply    struct inet_diag_msg (72 bytes): family, state, timer, retrans, sockid (48),
 *            expires, rqueue, wqueue, uid, inode (u32 each), then INET_DIAG_* attributes
 *   destroy  SOCK_DESTROY with the inet_diag_req_v2 of one socket (its sockid as a dump gave it:
 *            interface and cookie included, so the kernel finds exactly that socket); the
 *            kernel aborts it (RST to the peer). Needs CONFIG_INET_DIAG_DESTROY.
 */

export const NETLINK_SOCK_DIAG = 4;
export const SOCK_DIAG_BY_FAMILY = 20;
export const SOCK_DESTROY = 21;
export const IPPROTO_TCP = 6;
export const TCP_ESTABLISHED = 1;
/**
 * The TCP states `ss` lists by default (all but LISTEN, CLOSE, TIME_WAIT, SYN_RECV): the ones
 * a connection's socket can be in while it carries or still owes data.
 */
export const TCP_CONNECTED_STATES = [1, 2, 4, 5, 8, 9, 11].reduce((m, st) => m | (1 << st), 0);
/** A sockid cookie of all ones: the kernel does not check it. */
export const INET_DIAG_NOCOOKIE = 0xffff_ffff_ffff_ffffn;

const INET_DIAG_INFO = 2;
const INET_DIAG_ULP_INFO = 19;
const INET_ULP_INFO_NAME = 1;
const INET_ULP_INFO_MPTCP = 3;
const MPTCP_SUBFLOW_ATTR_TOKEN_REM = 1;
const MPTCP_SUBFLOW_ATTR_TOKEN_LOC = 2;
const MPTCP_SUBFLOW_ATTR_FLAGS = 8;
const MPTCP_SUBFLOW_ATTR_ID_REM = 9;
const MPTCP_SUBFLOW_ATTR_ID_LOC = 10;

export function encodeInetDiagReq(family: 4 | 6, states = 1 << TCP_ESTABLISHED): Buffer {
  const b = Buffer.alloc(56);
  b.writeUInt8(family === 4 ? 2 : 10, 0);
  b.writeUInt8(IPPROTO_TCP, 1);
  b.writeUInt8(1 << (INET_DIAG_INFO - 1), 2);
  b.writeUInt32LE(states >>> 0, 4);
  return b;
}

export interface TcpDiag {
  readonly family: 4 | 6;
  readonly state: number;
  readonly saddr: string;
  readonly sport: number;
  readonly daddr: string;
  readonly dport: number;
  readonly ifindex: number;
  readonly inode: number;
  /** The socket's cookie (the sockid's two u32, as the kernel wrote them). */
  readonly cookie: bigint;
  /** struct tcp_info bytes (decode with drivers/sockets decodeTcpInfo). */
  readonly tcpInfo?: Buffer;
  readonly ulp?: string;
  readonly mptcp?: { tokenLoc?: number; tokenRem?: number; idLoc?: number; idRem?: number; flags?: number };
}

export function decodeInetDiagMsg(p: Buffer): TcpDiag {
  if (p.length < 72) throw new DuocellError('DC_NETLINK_MALFORMED', `inet_diag_msg of ${p.length} bytes, expected at least 72`, { origin: 'local' });
  const fam = p.readUInt8(0);
  if (fam !== 2 && fam !== 10) throw new DuocellError('DC_NETLINK_MALFORMED', `inet_diag family ${fam}`, { origin: 'local' });
  const family = fam === 2 ? 4 : 6;
  const alen = family === 4 ? 4 : 16;
  const a = Attrs.decode(p.subarray(72));
  const ulpInfo = a.nested(INET_DIAG_ULP_INFO);
  const ulp = ulpInfo?.string(INET_ULP_INFO_NAME);
  const m = ulpInfo?.nested(INET_ULP_INFO_MPTCP);
  const info = a.binary(INET_DIAG_INFO);
  const mp = m === undefined ? undefined : Object.fromEntries(Object.entries({
    tokenRem: m.u32(MPTCP_SUBFLOW_ATTR_TOKEN_REM),
    tokenLoc: m.u32(MPTCP_SUBFLOW_ATTR_TOKEN_LOC),
    flags: m.u32(MPTCP_SUBFLOW_ATTR_FLAGS),
    idRem: m.u8(MPTCP_SUBFLOW_ATTR_ID_REM),
    idLoc: m.u8(MPTCP_SUBFLOW_ATTR_ID_LOC),
  }).filter(([, v]) => v !== undefined));
  return {
    family,
    state: p.readUInt8(1),
    sport: p.readUInt16BE(4),
    dport: p.readUInt16BE(6),
    saddr: bufferToIp(p.subarray(8, 8 + alen)),
    daddr: bufferToIp(p.subarray(24, 24 + alen)),
    ifindex: p.readUInt32LE(40),
    inode: p.readUInt32LE(68),
    cookie: p.readBigUInt64LE(44),
    ...(info === undefined ? {} : { tcpInfo: info }),
    ...(ulp === undefined ? {} : { ulp }),
    ...(mp === undefined ? {} : { mptcp: mp }),
  };
}

/** The fields of inet_diag_sockid that name one TCP socket. */
export interface TcpSockId {
  readonly saddr: string;
  readonly sport: number;
  readonly daddr: string;
  readonly dport: number;
  /** The interface the socket is bound to (0: none). */
  readonly ifindex?: number;
  /** undefined: INET_DIAG_NOCOOKIE. */
  readonly cookie?: bigint;
}

/** inet_diag_req_v2 naming one socket, for SOCK_DESTROY (or an exact SOCK_DIAG_BY_FAMILY). */
export function encodeInetDiagDestroy(id: TcpSockId): Buffer {
  const src = ipToBuffer(id.saddr);
  const dst = ipToBuffer(id.daddr);
  if (src.family !== dst.family) {
    throw new DuocellError('DC_NETLINK_INVALID_ARG', `sock_diag: ${id.saddr} and ${id.daddr} are of different families`, { origin: 'local' });
  }
  for (const port of [id.sport, id.dport]) {
    if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new DuocellError('DC_NETLINK_INVALID_ARG', `sock_diag: port ${port} out of range`, { origin: 'local' });
  }
  const b = Buffer.alloc(56);
  b.writeUInt8(src.family === 4 ? 2 : 10, 0);
  b.writeUInt8(IPPROTO_TCP, 1);
  b.writeUInt32LE(0xffff_ffff, 4); // states: an exact lookup ignores them
  b.writeUInt16BE(id.sport, 8);
  b.writeUInt16BE(id.dport, 10);
  src.bytes.copy(b, 12);
  dst.bytes.copy(b, 28);
  b.writeUInt32LE((id.ifindex ?? 0) >>> 0, 44);
  b.writeBigUInt64LE(id.cookie ?? INET_DIAG_NOCOOKIE, 48);
  return b;
}

/**
 * Decoders for the kernel structures the socket addon returns as raw bytes. Pure: no I/O.
 * Offsets follow the running kernel's uapi (linux/mptcp.h, linux/tcp.h as of 6.18); fields
 * beyond the length the kernel wrote read as undefined.
 */

export interface MptcpInfo {
  subflows: number;
  addAddrSignal: number;
  addAddrAccepted: number;
  subflowsMax: number;
  addAddrSignalMax: number;
  addAddrAcceptedMax: number;
  flags: number;
  token: number;
  writeSeq: bigint;
  sndUna: bigint;
  rcvNxt: bigint;
  localAddrUsed: number;
  localAddrMax: number;
  csumEnabled: boolean;
  retransmits: number;
  bytesRetrans: bigint;
  bytesSent: bigint;
  bytesReceived: bigint;
  bytesAcked: bigint;
  subflowsTotal: number;
}

export const MPTCP_INFO_SIZE = 96;

function u64(b: Buffer, off: number): bigint {
  return b.length >= off + 8 ? b.readBigUInt64LE(off) : 0n;
}
function u32(b: Buffer, off: number): number {
  return b.length >= off + 4 ? b.readUInt32LE(off) : 0;
}
function u8(b: Buffer, off: number): number {
  return b.length > off ? b[off]! : 0;
}

export function decodeMptcpInfo(b: Buffer): MptcpInfo {
  return {
    subflows: u8(b, 0),
    addAddrSignal: u8(b, 1),
    addAddrAccepted: u8(b, 2),
    subflowsMax: u8(b, 3),
    addAddrSignalMax: u8(b, 4),
    addAddrAcceptedMax: u8(b, 5),
    flags: u32(b, 8),
    token: u32(b, 12),
    writeSeq: u64(b, 16),
    sndUna: u64(b, 24),
    rcvNxt: u64(b, 32),
    localAddrUsed: u8(b, 40),
    localAddrMax: u8(b, 41),
    csumEnabled: u8(b, 42) !== 0,
    retransmits: u32(b, 44),
    bytesRetrans: u64(b, 48),
    bytesSent: u64(b, 56),
    bytesReceived: u64(b, 64),
    bytesAcked: u64(b, 72),
    subflowsTotal: u8(b, 80),
  };
}

/** The part of struct tcp_info duocell uses. */
export interface TcpInfo {
  state: number;
  rtoUs: number;
  sndMss: number;
  rttUs: number;
  rttVarUs: number;
  sndCwnd: number;
  totalRetrans: number;
  pacingRate: bigint;
  bytesAcked: bigint;
  bytesReceived: bigint;
  segsOut: number;
  segsIn: number;
  notsentBytes: number;
  minRttUs: number;
  deliveryRate: bigint;
  bytesSent: bigint;
  bytesRetrans: bigint;
  lastDataSentMs: number;
  lastDataRecvMs: number;
}

export function decodeTcpInfo(b: Buffer): TcpInfo {
  return {
    state: u8(b, 0),
    rtoUs: u32(b, 8),
    sndMss: u32(b, 16),
    lastDataSentMs: u32(b, 44),
    lastDataRecvMs: u32(b, 52),
    rttUs: u32(b, 68),
    rttVarUs: u32(b, 72),
    sndCwnd: u32(b, 80),
    totalRetrans: u32(b, 100),
    pacingRate: u64(b, 104),
    bytesAcked: u64(b, 120),
    bytesReceived: u64(b, 128),
    segsOut: u32(b, 136),
    segsIn: u32(b, 140),
    notsentBytes: u32(b, 144),
    minRttUs: u32(b, 148),
    deliveryRate: u64(b, 160),
    bytesSent: u64(b, 200),
    bytesRetrans: u64(b, 208),
  };
}

export interface SockAddr {
  family: 4 | 6;
  address: string;
  port: number;
}

/** Decode a struct sockaddr_storage (AF_INET=2, AF_INET6=10). */
export function decodeSockaddr(b: Buffer, off: number): SockAddr | undefined {
  const fam = b.readUInt16LE(off);
  const port = b.readUInt16BE(off + 2);
  if (fam === 2) {
    return { family: 4, port, address: `${b[off + 4]}.${b[off + 5]}.${b[off + 6]}.${b[off + 7]}` };
  }
  if (fam === 10) {
    const parts: string[] = [];
    for (let i = 0; i < 8; i++) parts.push(b.readUInt16BE(off + 8 + i * 2).toString(16));
    return { family: 6, port, address: compressV6(parts) };
  }
  return undefined;
}

/** RFC 5952 text form of 8 hex groups (longest run of two or more zero groups becomes ::). */
export function compressV6(groups: readonly string[]): string {
  // v4-mapped ::ffff:a.b.c.d
  if (groups.slice(0, 5).every((g) => g === '0') && groups[5] === 'ffff') {
    const hi = parseInt(groups[6]!, 16);
    const lo = parseInt(groups[7]!, 16);
    return `::ffff:${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestStart === -1) return groups.join(':');
  const head = groups.slice(0, bestStart).join(':');
  const tail = groups.slice(bestStart + bestLen).join(':');
  return `${head}::${tail}`;
}

export interface SubflowInfo {
  id: number;
  local: SockAddr | undefined;
  remote: SockAddr | undefined;
  tcp: TcpInfo;
}

/** Decode MPTCP_FULL_INFO's per-subflow arrays (struct mptcp_subflow_info + tcp_info). */
export function decodeSubflows(
  sf: Buffer,
  tcp: Buffer,
  count: number,
  sfStride: number,
  tcpStride: number,
  tcpSize: number,
): SubflowInfo[] {
  const out: SubflowInfo[] = [];
  for (let i = 0; i < count; i++) {
    const base = i * sfStride;
    out.push({
      id: sf.readUInt32LE(base),
      local: decodeSockaddr(sf, base + 8),
      remote: decodeSockaddr(sf, base + 8 + 128),
      tcp: decodeTcpInfo(tcp.subarray(i * tcpStride, i * tcpStride + tcpSize)),
    });
  }
  return out;
}

import { logger } from '../../core/logger.js';
import { decodeInetDiagMsg, encodeInetDiagReq, NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY, type TcpDiag } from '../../protocols/netlink/index.js';
import { decodeTcpInfo, type TcpInfo } from '../sockets/decode.js';
import { NetlinkChannel } from './channel.js';
import { openKernelTransport, type NetlinkTransport } from './transport.js';

/**
 * Per-subflow counters from sock_diag: every established TCP socket with the "mptcp" ULP is a
 * subflow; its tcp_info gives bytes and RTT, its ULP info the connection token.
 */

const log = logger('duocell:netlink:diag');

export interface SubflowCounters {
  readonly token?: number;
  readonly saddr: string;
  readonly sport: number;
  readonly daddr: string;
  readonly dport: number;
  readonly locId?: number;
  readonly remId?: number;
  readonly bytesSent: number;
  readonly bytesAcked: number;
  readonly bytesReceived: number;
  readonly bytesRetrans: number;
  readonly rttMs: number;
  readonly minRttMs: number;
  readonly cwnd: number;
}

export class SockDiag {
  readonly #ch: NetlinkChannel;

  constructor(transport?: NetlinkTransport) {
    this.#ch = new NetlinkChannel(transport ?? openKernelTransport(NETLINK_SOCK_DIAG));
  }

  async tcp(family: 4 | 6): Promise<TcpDiag[]> {
    const parts = await this.#ch.dump(SOCK_DIAG_BY_FAMILY, encodeInetDiagReq(family), { what: `sock_diag TCP IPv${family}` });
    const out: TcpDiag[] = [];
    for (const m of parts) {
      if (m.type !== SOCK_DIAG_BY_FAMILY) continue;
      try {
        out.push(decodeInetDiagMsg(m.payload));
      } catch (e) {
        log.debug({ err: e }, 'malformed inet_diag message skipped');
      }
    }
    return out;
  }

  /** Every established MPTCP subflow (both families) with its counters. */
  async subflows(): Promise<SubflowCounters[]> {
    const all = [...(await this.tcp(4)), ...(await this.tcp(6))];
    const out: SubflowCounters[] = [];
    for (const d of all) {
      if (d.ulp !== 'mptcp' || d.tcpInfo === undefined || d.tcpInfo.length < 200) continue;
      let ti: TcpInfo;
      try {
        ti = decodeTcpInfo(d.tcpInfo);
      } catch {
        continue;
      }
      out.push({
        ...(d.mptcp?.tokenLoc === undefined ? {} : { token: d.mptcp.tokenLoc }),
        saddr: d.saddr, sport: d.sport, daddr: d.daddr, dport: d.dport,
        ...(d.mptcp?.idLoc === undefined ? {} : { locId: d.mptcp.idLoc }),
        ...(d.mptcp?.idRem === undefined ? {} : { remId: d.mptcp.idRem }),
        bytesSent: Number(ti.bytesSent), bytesAcked: Number(ti.bytesAcked), bytesReceived: Number(ti.bytesReceived),
        bytesRetrans: Number(ti.bytesRetrans), rttMs: ti.rttUs / 1000, minRttMs: ti.minRttUs / 1000, cwnd: ti.sndCwnd,
      });
    }
    return out;
  }

  close(): void {
    this.#ch.close();
  }
}

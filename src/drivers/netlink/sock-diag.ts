import { DuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import {
  decodeInetDiagMsg, ipToBuffer, encodeInetDiagDestroy, encodeInetDiagReq, NETLINK_SOCK_DIAG, SOCK_DESTROY, SOCK_DIAG_BY_FAMILY,
  TCP_CONNECTED_STATES, type TcpDiag,
} from '../../protocols/netlink/index.js';
import { decodeTcpInfo, type TcpInfo } from '../sockets/decode.js';
import { NetlinkChannel } from './channel.js';
import { openKernelTransport, type NetlinkTransport } from './transport.js';

/**
 * The sock_diag driver (NETLINK_SOCK_DIAG), for TCP sockets:
 * - per-subflow counters: every established TCP socket with the "mptcp" ULP is a subflow; its
 *   tcp_info gives bytes and RTT, its ULP info the connection token;
 * - destroy: abort one TCP flow by its 4-tuple (SOCK_DESTROY, kernel CONFIG_INET_DIAG_DESTROY).
 *   Used on MPTCP subflows whose radio just went away, so that the connection reinjects their
 *   data on the surviving subflows at once instead of after retransmission timeouts, and on
 *   joins the in-kernel path manager accepted but the policy refuses.
 *
 *   destroy(tuple)
 *     dump TCP sockets of the tuple's family (for IPv4 also v4-mapped IPv6 ones; stop at the first family that has it)
 *     for each one with that 4-tuple ── SOCK_DESTROY (its own sockid: interface, cookie) ──►
 *     settle on the ACK; ENOENT (gone meanwhile) counts as done
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

/** One TCP flow by its two ends. */
export interface FourTuple {
  local: { address: string; port: number };
  remote: { address: string; port: number };
}

const ENOENT = 2;
const V4_MAPPED = '00000000000000000000ffff';

/** An address as hex of its bytes, v4-mapped IPv6 as the IPv4 it carries: one key per address however written. */
function addressKey(address: string): string {
  const hex = ipToBuffer(address).bytes.toString('hex');
  return hex.startsWith(V4_MAPPED) ? hex.slice(V4_MAPPED.length) : hex;
}

export class SockDiag {
  readonly #ch: NetlinkChannel;
  /** The last IPv4 flow destroyed was a dual-stack socket's (listed as IPv6): look there first. */
  #v4AsMapped = false;

  constructor(transport?: NetlinkTransport) {
    this.#ch = new NetlinkChannel(transport ?? openKernelTransport(NETLINK_SOCK_DIAG));
  }

  async tcp(family: 4 | 6, states?: number): Promise<TcpDiag[]> {
    const parts = await this.#ch.dump(SOCK_DIAG_BY_FAMILY, encodeInetDiagReq(family, states), { what: `sock_diag TCP IPv${family}` });
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

  /**
   * Abort every TCP socket with this 4-tuple (the peer gets a reset; the local socket's owner an
   * ECONNABORTED). Resolves with how many were aborted: 0 when none has that tuple.
   */
  async destroy(t: FourTuple): Promise<number> {
    const local = { address: addressKey(t.local.address), port: t.local.port };
    const remote = { address: addressKey(t.remote.address), port: t.remote.port };
    const v4 = local.address.length === 8;
    const found: TcpDiag[] = [];
    // An IPv4 flow may belong to a dual-stack socket, listed as IPv6 with v4-mapped addresses.
    // A 4-tuple is unique among established sockets of both families, so the search stops at
    // the first family that has it, starting with the one that had the last one (a handover
    // waits for every dump: one fewer round trip on a loaded box is tens of ms).
    const order: ReadonlyArray<4 | 6> = !v4 ? [6] : this.#v4AsMapped ? [6, 4] : [4, 6];
    for (const family of order) {
      for (const d of await this.tcp(family, TCP_CONNECTED_STATES)) {
        if (d.sport === local.port && d.dport === remote.port && addressKey(d.saddr) === local.address && addressKey(d.daddr) === remote.address) found.push(d);
      }
      if (found.length > 0) {
        if (v4) this.#v4AsMapped = family === 6;
        break;
      }
    }
    let n = 0;
    for (const d of found) {
      const what = `SOCK_DESTROY ${d.saddr}:${d.sport} → ${d.daddr}:${d.dport}`;
      try {
        await this.#ch.request(SOCK_DESTROY, encodeInetDiagDestroy(d), { what });
        n++;
      } catch (e) {
        if (e instanceof DuocellError && e.errno === ENOENT) continue; // closed meanwhile
        throw e;
      }
    }
    log.debug({ local, remote, aborted: n }, 'sock_diag destroy');
    return n;
  }

  close(): void {
    this.#ch.close();
  }
}

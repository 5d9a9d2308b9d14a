import fs from 'node:fs';
import net from 'node:net';
import { DuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import { decodeEcho, encodeEcho } from '../../protocols/icmp/echo.js';
import { closePing, openPingSocket, pingSend, type PingSocket } from '../sockets/ping.js';
import { watchFd, type FdWatch } from '../sockets/fd-watch.js';
import type { ProbeSocket, ProbeTransport } from './types.js';

/**
 * Path probes over ICMP echo (IPv4) and ICMPv6 echo (IPv6): what every gateway answers, an LTE
 * operator's PGW and a home router alike, with no responder process (unlike UDP echo, port 7).
 *
 *   open(): ping socket ── SO_BINDTODEVICE(uplink) ── bind(uplink's address) ── id = its port
 *   send(payload): echo request { id (the kernel writes it), seq = next u16, data = payload }
 *   reply: decode ─► echo reply? ─► id is ours? ─► seq one we sent and not yet answered?
 *          ─► onMessage(data)            anything else: dropped and counted (`dropped`)
 *
 * Bound to the uplink's device and its address, a probe never leaves by another path (no route
 * through the device: the send fails, and that path is measured as lossy, not as another's).
 * The kernel already hands a ping socket only echo replies carrying its identifier, and verified
 * their checksum; the checks here keep a raw or buggy delivery from ever reaching the meter.
 * The payload (the meter's probe: session, sequence) is checked again by the meter.
 */
const log = logger('duocell:probe:icmp');

/** Sequences remembered per socket: older ones are forgotten (their probes are long lost). */
const OUTSTANDING = 1024;

const ifindexOf = (dev: string | undefined): number => {
  if (dev === undefined || !/^[A-Za-z0-9_.:@-]{1,15}$/.test(dev)) return 0;
  try {
    return Number(fs.readFileSync(`/sys/class/net/${dev}/ifindex`, 'utf8').trim()) || 0;
  } catch {
    return 0;
  }
};

export interface IcmpProbeCounters {
  sent: number;
  matched: number;
  /** Replies or messages dropped: malformed, not a reply, another identifier, unknown or repeated sequence. */
  dropped: number;
}

/** Counters of every ICMP probe socket of this process (tests, metrics). */
export const icmpProbeCounters: IcmpProbeCounters = { sent: 0, matched: 0, dropped: 0 };

/** The reply filter of one socket, without I/O (exported for the unit tests). */
export class EchoMatcher {
  #next = 0;
  readonly #out = new Set<number>();
  constructor(
    readonly family: 4 | 6,
    readonly id: number,
  ) {}

  /** The next request to send with this payload. */
  request(payload: Buffer): Buffer {
    const seq = this.#next;
    this.#next = (this.#next + 1) & 0xffff;
    this.#out.delete(seq);
    this.#out.add(seq);
    if (this.#out.size > OUTSTANDING) this.#out.delete(this.#out.values().next().value as number);
    return encodeEcho(this.family, { kind: 'request', id: this.id, seq, data: payload });
  }

  /** The payload of a reply to one of our requests, or undefined (dropped). */
  reply(b: Buffer): Buffer | undefined {
    let m;
    try {
      m = decodeEcho(this.family, b);
    } catch {
      return undefined;
    }
    if (m.kind !== 'reply' || m.id !== this.id || !this.#out.delete(m.seq)) return undefined;
    return m.data;
  }
}

export const icmpProbeTransport: ProbeTransport = {
  describe: (target) => `icmp:${target}`,
  open({ local, target, device, onMessage, onError }) {
    if (net.isIP(local) === 0 || net.isIP(target) === 0) return Promise.reject(new DuocellError('DC_PROBE_MALFORMED', `probe addresses must be numeric (${local} → ${target})`));
    if (net.isIP(local) !== net.isIP(target)) return Promise.reject(new DuocellError('DC_PROBE_MALFORMED', `probe source ${local} and target ${target} differ in family`));
    let s: PingSocket;
    try {
      s = openPingSocket({ local, ...(device === undefined ? {} : { device }) });
    } catch (e) {
      return Promise.reject(e as Error);
    }
    // a link-local gateway (fe80::1, what router advertisements give) is reached on the uplink's link
    const scope = net.isIPv6(target) && target.toLowerCase().startsWith('fe80') ? ifindexOf(device) : 0;
    const match = new EchoMatcher(s.family, s.id);
    let watch: FdWatch | undefined;
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      watch?.stop();
      closePing(s);
    };
    try {
      watch = watchFd(
        s.fd,
        (b) => {
          const data = match.reply(b);
          if (data === undefined) {
            icmpProbeCounters.dropped++;
            log.debug({ device, bytes: b.length }, 'ICMP message dropped (not a reply to this socket)');
            return;
          }
          icmpProbeCounters.matched++;
          onMessage(data);
        },
        (errno) => onError(new DuocellError('DC_SOCKET_SYSCALL', `ping socket read failed (errno ${errno})`, { errno, origin: 'kernel' })),
        { dgram: true },
      );
    } catch (e) {
      close();
      return Promise.reject(e as Error);
    }
    return Promise.resolve<ProbeSocket>({
      send(payload) {
        if (closed) return;
        try {
          pingSend(s, match.request(payload), target, scope);
          icmpProbeCounters.sent++;
        } catch (e) {
          onError(e as Error);
        }
      },
      close,
    });
  },
};

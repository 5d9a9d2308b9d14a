import { EventEmitter } from 'node:events';
import { DuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import { Waiter } from '../../core/waiter.js';
import {
  decodeError, encodeMessage, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN, NLM_F_ACK, NLM_F_DUMP,
  NLM_F_DUMP_INTR, NLM_F_MULTI, NLM_F_REQUEST, splitMessages, type NlMessage,
} from '../../protocols/netlink/index.js';
import type { NetlinkTransport } from './transport.js';

/**
 * Requests and replies over one netlink socket.
 *
 *   request(type, payload)            kernel
 *     seq = next ─── REQUEST|ACK ───────►
 *     collect replies with that seq ◄── 0..n messages
 *     settle on ◄──────────────────────── NLMSG_ERROR (0 = ACK, else errno)
 *   dump(type, payload)
 *     seq = next ─── REQUEST|DUMP ──────►
 *     collect ◄───────────────────────── MULTI parts, in one or more datagrams
 *     settle on ◄──────────────────────── NLMSG_DONE (int error) | NLMSG_ERROR
 *
 * Messages with seq 0 from the kernel are notifications (multicast events): emitted as
 * 'notification'. Datagrams not from the kernel (port ≠ 0) or that do not parse are logged and
 * dropped. Reply matching uses the core Waiter (one waiter per sequence number).
 */

const log = logger('duocell:netlink');

export interface ChannelEvents {
  notification: [NlMessage];
  /** ENOBUFS and friends: notifications were lost; listeners should resynchronise. */
  lost: [DuocellError];
}

interface Collector {
  readonly msgs: NlMessage[];
  readonly dump: boolean;
}

interface Terminal {
  readonly seq: number;
  readonly error?: DuocellError;
}

export interface RequestOptions {
  timeoutMs?: number;
  /** Extra NLM_F_* flags (CREATE, EXCL, REPLACE…). */
  flags?: number;
  /** A name for errors and logs ("mptcp_pm ADD_ADDR"). */
  what?: string;
}

export class NetlinkChannel extends EventEmitter<ChannelEvents> {
  readonly transport: NetlinkTransport;
  readonly #collect = new Map<number, Collector>();
  readonly #waiter = new Waiter<Terminal>('DC_NETLINK_TIMEOUT');
  #seq: number;
  #closed = false;
  #listening = false;
  #dumpQueue: Promise<unknown> = Promise.resolve();
  readonly defaultTimeoutMs: number;
  readonly #maxMessages: number;

  constructor(transport: NetlinkTransport, opts: { timeoutMs?: number; maxReplyMessages?: number } = {}) {
    super();
    this.transport = transport;
    this.defaultTimeoutMs = opts.timeoutMs ?? 5000;
    this.#maxMessages = opts.maxReplyMessages ?? 100_000;
    this.#seq = (Math.floor(Math.random() * 0x7fff_0000) + 1) >>> 0;
    transport.onReceive((d, port) => this.#receive(d, port));
    transport.onError((e) => {
      log.warn({ err: e, errno: e.errno }, 'netlink socket error: notifications may have been lost');
      this.emit('lost', e);
    });
    transport.ref(false);
  }

  /** Keep the process alive while listening for notifications. */
  listen(on = true): void {
    this.#listening = on;
    this.#updateRef();
  }

  #updateRef(): void {
    if (this.#closed) return;
    this.transport.ref(this.#listening || this.#collect.size > 0);
  }

  #nextSeq(): number {
    this.#seq = (this.#seq + 1) >>> 0;
    if (this.#seq === 0) this.#seq = 1;
    return this.#seq;
  }

  #receive(datagram: Buffer, fromPort: number): void {
    if (fromPort !== 0) {
      log.debug({ fromPort }, 'netlink datagram not from the kernel dropped');
      return;
    }
    let msgs: NlMessage[];
    try {
      msgs = splitMessages(datagram);
    } catch (e) {
      log.warn({ err: e, hex: datagram.subarray(0, 256).toString('hex') }, 'malformed netlink datagram dropped');
      return;
    }
    for (const m of msgs) {
      try {
        this.#handle(m);
      } catch (e) {
        log.warn({ err: e, type: m.type, seq: m.seq }, 'netlink message dropped');
      }
    }
  }

  #handle(m: NlMessage): void {
    log.trace({ type: m.type, flags: m.flags, seq: m.seq, len: m.payload.length }, 'netlink rx');
    const c = this.#collect.get(m.seq);
    if (c === undefined) {
      if (m.type === NLMSG_ERROR || m.type === NLMSG_DONE || m.type === NLMSG_NOOP || m.type === NLMSG_OVERRUN) {
        if (m.seq !== 0) log.debug({ type: m.type, seq: m.seq }, 'late or unsolicited control message dropped');
        return;
      }
      if (m.seq !== 0) log.debug({ type: m.type, seq: m.seq }, 'reply to no pending request; treated as notification');
      this.emit('notification', m);
      return;
    }
    if (m.type === NLMSG_ERROR) {
      const e = decodeError(m);
      this.#settle(m.seq, e.errno === 0 ? undefined : kernelError(e.errno, e.extMessage));
      return;
    }
    if (m.type === NLMSG_DONE) {
      const err = m.payload.length >= 4 ? m.payload.readInt32LE(0) : 0;
      this.#settle(m.seq, err < 0 ? kernelError(-err, undefined) : undefined);
      return;
    }
    if (m.type === NLMSG_NOOP) return;
    if ((m.flags & NLM_F_DUMP_INTR) !== 0) log.debug({ seq: m.seq }, 'dump interrupted (changed during the dump)');
    if (c.msgs.length >= this.#maxMessages) {
      this.#settle(m.seq, new DuocellError('DC_NETLINK_MALFORMED', `reply exceeds ${this.#maxMessages} messages`));
      return;
    }
    c.msgs.push(m);
    // A non-multipart reply to a plain request is complete without waiting for the ACK only if
    // we asked for none; we always ask for an ACK, so keep collecting until it arrives.
    if (!c.dump && (m.flags & NLM_F_MULTI) === 0) return;
  }

  #settle(seq: number, error?: DuocellError): void {
    this.#waiter.resolve(error === undefined ? { seq } : { seq, error });
  }

  async #exchange(type: number, flags: number, payload: Buffer, dump: boolean, opts: RequestOptions): Promise<NlMessage[]> {
    if (this.#closed) throw new DuocellError('DC_NETLINK_CLOSED', 'netlink channel is closed');
    const seq = this.#nextSeq();
    const what = opts.what ?? `netlink type ${type}`;
    const collector: Collector = { msgs: [], dump };
    this.#collect.set(seq, collector);
    this.#updateRef();
    const done = this.#waiter.wait((t) => t.seq === seq, opts.timeoutMs ?? this.defaultTimeoutMs, `${what} (seq ${seq})`);
    try {
      const datagram = encodeMessage({ type, flags, seq, pid: 0, payload });
      log.trace({ type, flags, seq, hex: datagram.toString('hex') }, 'netlink tx');
      await this.transport.send(datagram);
      const t = await done;
      if (t.error !== undefined) {
        throw new DuocellError(t.error.code, `${what}: ${t.error.message}`, {
          errno: t.error.errno,
          origin: t.error.origin,
          ...t.error.detail,
        });
      }
      return collector.msgs;
    } catch (e) {
      done.catch(() => {}); // the send failed: the waiter will time out unobserved
      throw e;
    } finally {
      this.#collect.delete(seq);
      this.#updateRef();
    }
  }

  /** A request that expects an ACK; resolves with any replies sent before it. */
  request(type: number, payload: Buffer, opts: RequestOptions = {}): Promise<NlMessage[]> {
    return this.#exchange(type, NLM_F_REQUEST | NLM_F_ACK | (opts.flags ?? 0), payload, false, opts);
  }

  /**
   * A dump request; resolves with every part. The kernel runs one dump per socket at a time
   * (a second one is EBUSY), so dumps on this channel are queued.
   */
  dump(type: number, payload: Buffer, opts: RequestOptions = {}): Promise<NlMessage[]> {
    const run = this.#dumpQueue.catch(() => {}).then(() => this.#exchange(type, NLM_F_REQUEST | NLM_F_DUMP | (opts.flags ?? 0), payload, true, opts));
    this.#dumpQueue = run;
    return run;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#waiter.rejectAll(new DuocellError('DC_NETLINK_CLOSED', 'netlink channel closed with a request pending'));
    this.#collect.clear();
    this.transport.close();
  }
}

const ERRNO_NAMES: Record<number, string> = {
  1: 'EPERM', 2: 'ENOENT', 3: 'ESRCH', 12: 'ENOMEM', 13: 'EACCES', 16: 'EBUSY', 17: 'EEXIST', 19: 'ENODEV',
  22: 'EINVAL', 28: 'ENOSPC', 34: 'ERANGE', 61: 'ENODATA', 95: 'EOPNOTSUPP', 97: 'EAFNOSUPPORT', 99: 'EADDRNOTAVAIL',
  101: 'ENETUNREACH', 105: 'ENOBUFS', 113: 'EHOSTUNREACH', 114: 'EALREADY', 115: 'EINPROGRESS',
};

export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno ${errno}`;
}

function kernelError(errno: number, ext: string | undefined): DuocellError {
  return new DuocellError('DC_NETLINK_ERRNO', `kernel said ${errnoName(errno)}${ext === undefined ? '' : ` (${ext})`}`, {
    errno,
    origin: 'kernel',
    ...(ext === undefined ? {} : { extack: ext }),
  });
}

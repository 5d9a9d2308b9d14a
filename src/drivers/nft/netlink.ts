import { DuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import { Waiter } from '../../core/waiter.js';
import { decodeReplies, encodeBatch, encodeGetGen, NETLINK_NETFILTER, type NftOp, type NftReply } from '../../protocols/netlink/nftables.js';
import { errnoName } from '../netlink/channel.js';
import { openKernelTransport, type NetlinkTransport } from '../netlink/transport.js';

/**
 * nf_tables transactions over one persistent nfnetlink socket, without forking `nft`.
 *
 *   commit(ops)                                         kernel
 *     BEGIN, op₁…opₙ (REQUEST|ACK), END  ─ one datagram ──►  all or nothing
 *     wait for an ACK of every op   ◄──── NLMSG_ERROR 0 per op, after the commit
 *     settle at once on             ◄──── NLMSG_ERROR -errno for an op, or for BEGIN (commit failed)
 *
 * One transaction at a time (later ones queue). A refused transaction is DC_NFT_APPLY with the
 * errno and the extended-ACK text (as the `nft` path reports it); local faults keep their
 * netlink codes (DC_NETLINK_TIMEOUT, DC_NETLINK_SOCKET, DC_NETLINK_CLOSED, DC_NETLINK_MALFORMED).
 * The receive callback never throws (an exception there would abort the process: transport.ts).
 */
const log = logger('duocell:nft:netlink');

interface Pending {
  readonly id: number;
  /** Sequence numbers that must each be ACKed. */
  readonly acks: Set<number>;
  /** Every sequence number of the exchange (an error on any of them fails it). */
  readonly all: ReadonlySet<number>;
  readonly replies: NftReply[];
}

interface Settled {
  readonly id: number;
  readonly error?: DuocellError;
}

export class NfTables {
  readonly #t: NetlinkTransport;
  readonly #waiter = new Waiter<Settled>('DC_NETLINK_TIMEOUT');
  readonly #timeoutMs: number;
  #seq: number;
  #ids = 0;
  #pending: Pending | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  /** Transactions committed and refused, datagrams dropped (malformed or unsolicited). */
  readonly stats = { committed: 0, refused: 0, dropped: 0 };

  constructor(transport: NetlinkTransport, opts: { timeoutMs?: number } = {}) {
    this.#t = transport;
    this.#timeoutMs = opts.timeoutMs ?? 2000;
    this.#seq = (Math.floor(Math.random() * 0x7fff_0000) + 1) >>> 0;
    transport.onReceive((d, port) => this.#receive(d, port));
    transport.onError((e) => log.warn({ err: e.message, errno: e.errno }, 'nfnetlink socket error'));
    transport.ref(false);
  }

  /**
   * Open a NETLINK_NETFILTER socket in this network namespace and check that the kernel answers
   * nf_tables requests from us (NFT_MSG_GETGEN: the module is there, we have CAP_NET_ADMIN).
   */
  static async open(opts: { transport?: NetlinkTransport; timeoutMs?: number } = {}): Promise<NfTables> {
    const nft = new NfTables(opts.transport ?? openKernelTransport(NETLINK_NETFILTER, { recvBufferSize: 256 << 10 }), opts);
    try {
      await nft.generation();
      return nft;
    } catch (e) {
      nft.close();
      throw e;
    }
  }

  /** The ruleset generation (bumped by every commit). */
  async generation(): Promise<number> {
    const replies = await this.#serial(() => {
      const seq = this.#nextSeq();
      return this.#exchange(encodeGetGen(seq), [seq], [seq], 'nf_tables GETGEN');
    });
    const gen = replies.find((r) => r.kind === 'gen');
    if (gen === undefined || gen.kind !== 'gen') throw new DuocellError('DC_NETLINK_MALFORMED', 'nf_tables GETGEN: ACK without a NEWGEN reply', { origin: 'local' });
    return gen.genId;
  }

  /** Apply the ops as one transaction: all of them take effect, or none. */
  commit(ops: readonly NftOp[]): Promise<void> {
    return this.#serial(async () => {
      const b = encodeBatch(ops, this.#take(ops.length + 2));
      const what = ops.map((o) => o.what).join(' + ');
      try {
        await this.#exchange(b.datagram, b.seqs, [b.beginSeq, ...b.seqs, b.endSeq], what);
        this.stats.committed++;
      } catch (e) {
        if (e instanceof DuocellError && e.code === 'DC_NFT_APPLY') this.stats.refused++;
        throw e;
      }
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#waiter.rejectAll(new DuocellError('DC_NETLINK_CLOSED', 'nfnetlink socket closed with a transaction pending'));
    this.#pending = undefined;
    this.#t.close();
  }

  #serial<T>(f: () => Promise<T>): Promise<T> {
    const run = this.#queue.catch(() => {}).then(f);
    this.#queue = run;
    return run;
  }

  #nextSeq(): number {
    return this.#take(1);
  }

  /** Reserve n consecutive sequence numbers (never 0: the kernel's notifications use 0). */
  #take(n: number): number {
    if (this.#seq + n > 0xffff_ffff) this.#seq = 1;
    const first = this.#seq;
    this.#seq += n;
    return first;
  }

  async #exchange(datagram: Buffer, acks: readonly number[], all: readonly number[], what: string): Promise<NftReply[]> {
    if (this.#closed) throw new DuocellError('DC_NETLINK_CLOSED', 'nfnetlink socket is closed');
    const id = ++this.#ids;
    const p: Pending = { id, acks: new Set(acks), all: new Set(all), replies: [] };
    this.#pending = p;
    this.#t.ref(true);
    const done = this.#waiter.wait((s) => s.id === id, this.#timeoutMs, what);
    try {
      log.trace({ hex: datagram.toString('hex') }, 'nfnetlink tx');
      await this.#t.send(datagram);
      const s = await done;
      if (s.error !== undefined) throw s.error.code === 'DC_NFT_APPLY' ? new DuocellError('DC_NFT_APPLY', `${what}: ${s.error.message}`, { origin: 'kernel', errno: s.error.errno, ...s.error.detail }) : s.error;
      return p.replies;
    } catch (e) {
      done.catch(() => {}); // a failed send: the waiter times out unobserved
      throw e;
    } finally {
      if (this.#pending === p) this.#pending = undefined;
      if (!this.#closed) this.#t.ref(false);
    }
  }

  #receive(datagram: Buffer, fromPort: number): void {
    if (fromPort !== 0) {
      this.stats.dropped++;
      return;
    }
    let replies: NftReply[];
    try {
      replies = decodeReplies(datagram);
    } catch (e) {
      this.stats.dropped++;
      log.warn({ err: (e as Error).message, hex: datagram.subarray(0, 256).toString('hex') }, 'malformed nfnetlink datagram dropped');
      return;
    }
    for (const r of replies) {
      const p = this.#pending;
      if (p === undefined || !p.all.has(r.seq)) {
        log.debug({ kind: r.kind, seq: r.seq }, 'late or unsolicited nfnetlink message dropped');
        continue;
      }
      p.replies.push(r);
      if (r.kind === 'error') {
        this.#pending = undefined;
        this.#waiter.resolve({ id: p.id, error: kernelError(r.errno, r.extack) });
        return;
      }
      if (r.kind === 'ack') p.acks.delete(r.seq);
      if (p.acks.size === 0) {
        this.#pending = undefined;
        this.#waiter.resolve({ id: p.id });
        return;
      }
    }
  }
}

function kernelError(errno: number, extack: string | undefined): DuocellError {
  return new DuocellError('DC_NFT_APPLY', `the kernel refused the transaction: ${errnoName(errno)}${extack === undefined ? '' : ` (${extack})`}`, {
    errno,
    origin: 'kernel',
    ...(extack === undefined ? {} : { extack }),
  });
}

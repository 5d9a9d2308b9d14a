import { DuocellError } from '../../src/core/errors.js';
import type { NetlinkTransport } from '../../src/drivers/netlink/transport.js';
import {
  attr, encodeAttrs, encodeGenl, encodeMessage, NLMSG_DONE, NLMSG_ERROR, NLM_F_DUMP, NLM_F_MULTI, splitMessages,
  type AttrOut, type NlMessage,
} from '../../src/protocols/netlink/index.js';

/**
 * A scripted kernel behind a NetlinkTransport: answers nlctrl GETFAMILY for the families it
 * knows, hands every other request to `handler`, and can push multicast datagrams.
 */
export interface FakeReply {
  /** Messages to send before the ACK / DONE: [type, payload]. */
  replies?: Array<[number, Buffer]>;
  /** errno to answer with (0 = ACK). */
  errno?: number;
  /** Send nothing at all (to test timeouts). */
  silent?: boolean;
}

export class FakeKernel implements NetlinkTransport {
  readonly port = 4242;
  readonly sent: NlMessage[] = [];
  readonly groups = new Set<number>();
  closed = false;
  families = new Map<string, { id: number; groups: Record<string, number> }>();
  handler: (m: NlMessage) => FakeReply = () => ({ errno: 95 });
  #rx: (d: Buffer, port: number) => void = () => {};
  #err: (e: DuocellError) => void = () => {};

  async send(datagram: Buffer): Promise<void> {
    if (this.closed) throw new DuocellError('DC_NETLINK_CLOSED');
    for (const m of splitMessages(datagram)) {
      this.sent.push(m);
      queueMicrotask(() => this.#answer(m));
    }
  }

  #answer(m: NlMessage): void {
    let r: FakeReply;
    if (m.type === 0x10) {
      const name = (() => {
        const b = m.payload.subarray(4);
        // CTRL_ATTR_FAMILY_NAME is the only attribute we send
        return b.subarray(4, b.readUInt16LE(0) - 1).toString();
      })();
      const f = this.families.get(name);
      if (f === undefined) r = { errno: 2 };
      else {
        const groups: AttrOut[] = Object.entries(f.groups).map(([n, id], i) => attr.nested(i + 1, [attr.u32(2, id), attr.string(1, n)]));
        r = { replies: [[0x10, encodeGenl(1, 2, [attr.u16(1, f.id), attr.string(2, name), attr.u32(3, 1), attr.nested(7, groups)])]] };
      }
    } else {
      r = this.handler(m);
    }
    if (r.silent === true) return;
    const dump = (m.flags & NLM_F_DUMP) === NLM_F_DUMP;
    const out: Buffer[] = [];
    for (const [type, payload] of r.replies ?? []) out.push(encodeMessage({ type, flags: dump ? NLM_F_MULTI : 0, seq: m.seq, pid: this.port, payload }));
    if (dump && (r.errno ?? 0) === 0) {
      out.push(encodeMessage({ type: NLMSG_DONE, flags: NLM_F_MULTI, seq: m.seq, pid: this.port, payload: Buffer.alloc(4) }));
    } else {
      const code = Buffer.alloc(4);
      code.writeInt32LE(-(r.errno ?? 0));
      out.push(encodeMessage({ type: NLMSG_ERROR, flags: 0x100, seq: m.seq, pid: this.port, payload: Buffer.concat([code, encodeMessage({ type: m.type, flags: m.flags, seq: m.seq, pid: m.pid })]) }));
    }
    this.#rx(Buffer.concat(out), 0);
  }

  /** Deliver a datagram as if from the kernel (port 0) or another sender. */
  push(datagram: Buffer, fromPort = 0): void {
    this.#rx(datagram, fromPort);
  }

  /** Deliver one multicast notification. */
  notify(type: number, payload: Buffer): void {
    this.push(encodeMessage({ type, payload }));
  }

  fail(e: DuocellError): void {
    this.#err(e);
  }

  onReceive(cb: (d: Buffer, port: number) => void): void {
    this.#rx = cb;
  }
  onError(cb: (e: DuocellError) => void): void {
    this.#err = cb;
  }
  addMembership(g: number): void {
    this.groups.add(g);
  }
  dropMembership(g: number): void {
    this.groups.delete(g);
  }
  ref(): void {}
  close(): void {
    this.closed = true;
  }
}

export { encodeAttrs };

// The nfnetlink driver (src/drivers/nft/netlink.ts) and the element writer's one-time choice
// (elements.ts), against a fake transport that answers like the kernel. No root.
import t from 'tap';
import { DuocellError } from '../../src/core/errors.js';
import type { NetlinkTransport } from '../../src/drivers/netlink/transport.js';
import { NfTables, NftElements, renewalOps } from '../../src/drivers/nft/index.js';
import { encodeMessage, NLMSG_ERROR, nftType, NFT_MSG_NEWGEN, nfgenmsg, splitMessages, attr, encodeAttrs, NLM_F_ACK } from '../../src/protocols/netlink/index.js';

type Answer = (msgs: ReturnType<typeof splitMessages>) => Buffer[];

/** A transport whose kernel answers every datagram with `answer` (on the next tick). */
function fakeKernel(answer: Answer) {
  const sent: Buffer[] = [];
  let rx: (d: Buffer, port: number) => void = () => {};
  const refs: boolean[] = [];
  let closed = false;
  const tr: NetlinkTransport = {
    port: 4242,
    async send(d) {
      if (closed) throw new DuocellError('DC_NETLINK_CLOSED');
      sent.push(d);
      const out = answer(splitMessages(d));
      setImmediate(() => out.forEach((o) => rx(o, 0)));
    },
    onReceive(cb) { rx = cb; },
    onError() {},
    addMembership() {},
    dropMembership() {},
    ref(on) { refs.push(on); },
    close() { closed = true; },
  };
  return { tr, sent, refs, inject: (d: Buffer, port = 0) => rx(d, port), get closed() { return closed; } };
}

function errMsg(seq: number, errno: number, reqType = 0): Buffer {
  const p = Buffer.alloc(20);
  p.writeInt32LE(-errno, 0);
  p.writeUInt32LE(16, 4);
  p.writeUInt16LE(reqType, 8);
  p.writeUInt32LE(seq, 12);
  return encodeMessage({ type: NLMSG_ERROR, seq, payload: p });
}
const gen = (seq: number, id: number): Buffer => encodeMessage({ type: nftType(NFT_MSG_NEWGEN), seq, payload: Buffer.concat([nfgenmsg(0, id & 0xffff), encodeAttrs([attr.u32(1, id, { be: true })])]) });

/** The kernel: NEWGEN + ACK for GETGEN; an ACK for every op that asks, in one datagram. */
const kernel: Answer = (msgs) => {
  if (msgs.length === 1) return [Buffer.concat([gen(msgs[0]!.seq, 42), errMsg(msgs[0]!.seq, 0)])];
  return [Buffer.concat(msgs.filter((m) => (m.flags & NLM_F_ACK) !== 0).map((m) => errMsg(m.seq, 0)))];
};

t.test('open probes GETGEN; a batch resolves when every op is ACKed; the socket is ref\'d only while waiting', async (t) => {
  const k = fakeKernel(kernel);
  const nl = await NfTables.open({ transport: k.tr });
  t.equal(await nl.generation(), 42);
  await nl.commit(renewalOps('inet', 'duocell', 'alive', [8000, 8002], 1500));
  const msgs = splitMessages(k.sent.at(-1)!);
  t.same(msgs.map((m) => m.type), [0x10, 0x0a0c, 0x0a0e, 0x0a0c, 0x11], 'BEGIN, add, delete, add, END in one datagram');
  t.same(nl.stats, { committed: 1, refused: 0, dropped: 0 });
  t.equal(k.refs.at(-1), false, 'unref\'d when idle');
  t.ok(k.refs.includes(true), 'ref\'d while waiting');
  nl.close();
  t.ok(k.closed);
  await t.rejects(nl.commit(renewalOps('inet', 'duocell', 'alive', [1], 1)), { code: 'DC_NETLINK_CLOSED' });
});

t.test('acks split over several datagrams, before and after noise, still settle the batch', async (t) => {
  const k = fakeKernel((msgs) => {
    if (msgs.length === 1) return [Buffer.concat([gen(msgs[0]!.seq, 1), errMsg(msgs[0]!.seq, 0)])];
    const acked = msgs.filter((m) => (m.flags & NLM_F_ACK) !== 0);
    return [Buffer.from('zz'), errMsg(12345, 0), ...acked.map((m) => errMsg(m.seq, 0))];
  });
  const nl = await NfTables.open({ transport: k.tr });
  await nl.commit(renewalOps('inet', 'duocell', 'alive', [8000], 1500));
  t.same(nl.stats, { committed: 1, refused: 0, dropped: 1 }, 'the malformed datagram was dropped, the stray ACK ignored');
  nl.close();
});

t.test('an errno for an op, or for BEGIN (a failed commit), is DC_NFT_APPLY from the kernel with the errno', async (t) => {
  let fail: 'op' | 'begin' = 'op';
  const k = fakeKernel((msgs) => {
    if (msgs.length === 1) return [Buffer.concat([gen(msgs[0]!.seq, 1), errMsg(msgs[0]!.seq, 0)])];
    const ops = msgs.slice(1, -1);
    if (fail === 'begin') return [errMsg(msgs[0]!.seq, 12 /* ENOMEM */), Buffer.concat(ops.map((m) => errMsg(m.seq, 0)))];
    return [Buffer.concat([errMsg(ops[0]!.seq, 0), errMsg(ops[1]!.seq, 2, ops[1]!.type), errMsg(ops[2]!.seq, 0)])];
  });
  const nl = await NfTables.open({ transport: k.tr });
  const e1 = await nl.commit(renewalOps('inet', 'duocell', 'alive', [8000], 1500)).catch((e: DuocellError) => e);
  t.match(e1, { code: 'DC_NFT_APPLY', origin: 'kernel', errno: 2, message: /delete element inet duocell alive.*ENOENT/ });
  fail = 'begin';
  const e2 = await nl.commit(renewalOps('inet', 'duocell', 'alive', [8000], 1500)).catch((e: DuocellError) => e);
  t.match(e2, { code: 'DC_NFT_APPLY', errno: 12, message: /ENOMEM/ });
  t.same(nl.stats, { committed: 0, refused: 2, dropped: 0 });
  nl.close();
});

t.test('no answer: DC_NETLINK_TIMEOUT, and the next transaction still works; transactions queue', async (t) => {
  let silent = true;
  const k = fakeKernel((msgs) => (silent && msgs.length > 1 ? [] : kernel(msgs)));
  const nl = await NfTables.open({ transport: k.tr, timeoutMs: 100 });
  await t.rejects(nl.commit(renewalOps('inet', 'duocell', 'alive', [8000], 1500)), { code: 'DC_NETLINK_TIMEOUT' });
  silent = false;
  const both = await Promise.all([nl.commit(renewalOps('inet', 'duocell', 'alive', [8000], 1500)), nl.commit(renewalOps('inet', 'duocell', 'alive', [8002], 1500))]);
  t.equal(both.length, 2);
  t.equal(nl.stats.committed, 2);
  nl.close();
});

t.test('a datagram from another port, or one that throws in decoding, never escapes the receive callback', async (t) => {
  const k = fakeKernel(kernel);
  const nl = await NfTables.open({ transport: k.tr });
  t.doesNotThrow(() => k.inject(errMsg(1, 0), 999));
  t.doesNotThrow(() => k.inject(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3])));
  t.same(nl.stats.dropped, 2);
  nl.close();
});

t.test('NftElements: nfnetlink when it opens, else the nft program, chosen once', async (t) => {
  const texts: string[] = [];
  const program = { async applyRuleset(text: string) { texts.push(text); } };
  let opens = 0;
  const down = new NftElements({ program, open: async () => { opens++; throw new DuocellError('DC_NETLINK_SOCKET', 'no nfnetlink'); } });
  await down.renewTimeoutPorts('inet', 'duocell', 'alive', [8000], 1500);
  await down.renewTimeoutPorts('inet', 'duocell', 'alive', [8000], 1500);
  await down.addAddrPortElement('inet', 'duocell', 'mservers4', '192.0.2.9', 443, 3600);
  t.equal(down.via, 'nft');
  t.equal(opens, 1, 'tried once');
  t.same(texts, [
    'add element inet duocell alive { 8000 timeout 1500ms }\ndelete element inet duocell alive { 8000 }\nadd element inet duocell alive { 8000 timeout 1500ms }\n',
    'add element inet duocell alive { 8000 timeout 1500ms }\ndelete element inet duocell alive { 8000 }\nadd element inet duocell alive { 8000 timeout 1500ms }\n',
    'add element inet duocell mservers4 { 192.0.2.9 . 443 timeout 3600s }\n',
  ]);

  const k = fakeKernel(kernel);
  const up = new NftElements({ program, open: () => NfTables.open({ transport: k.tr }) });
  await up.renewTimeoutPorts('inet', 'duocell', 'alive', [8000], 1500);
  await up.addAddrPortElement('inet', 'duocell', 'mservers6', '2001:db8::9', 443, 60);
  t.equal(up.via, 'netlink');
  t.equal(texts.length, 3, 'no program run');
  const last = splitMessages(k.sent.at(-1)!);
  t.equal(last.length, 3, 'the M-server: BEGIN, one add, END');
  await t.rejects(up.addAddrPortElement('inet', 'duocell', 'mservers4', 'not-an-ip', 443, 60), { code: 'DC_NFT_APPLY' });
  await t.rejects(up.renewTimeoutPorts('inet', 'bad name', 'alive', [8000], 1500), { code: 'DC_NFT_APPLY' });
  up.close();
  await new Promise((r) => setImmediate(r));
  t.ok(k.closed, 'close() closes the socket');
});

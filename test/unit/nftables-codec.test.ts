// The nf_tables codec (src/protocols/netlink/nftables.ts) against what `nft` 1.0.6 itself sent and
// received on this kernel (test/fixtures/nftables/captured.txt, made by capture.sh with strace).
import { readFileSync } from 'node:fs';
import t from 'tap';
import {
  addSetElems, decodeGen, decodeReplies, delSetElems, encodeBatch, encodeGetGen, keyAddrPort, keyInetService, NLM_F_ACK, nftType,
  NFT_MSG_DELSETELEM, NFT_MSG_NEWSETELEM, splitMessages,
} from '../../src/protocols/netlink/index.js';

const captured = new Map<string, string>();
for (const line of readFileSync(new URL('../fixtures/nftables/captured.txt', import.meta.url), 'utf8').split('\n')) {
  const m = /^(tx|rx) (.*) => ([0-9a-f]*)$/.exec(line);
  if (m !== null) captured.set(`${m[1]} ${m[2]}`, m[3]!);
}
const cap = (k: string): Buffer => {
  const hex = captured.get(k);
  if (hex === undefined || hex === '') throw new Error(`no capture for ${k}`);
  return Buffer.from(hex, 'hex');
};

/**
 * nft adds NFTA_SET_ELEM_LIST_SET_ID (attribute 4, 8 bytes) to every set-element message; it only
 * matters for a set created in the same batch, and duocell does not send it. Cut it out of the
 * captured datagram (and shorten that message's nlmsg_len by 8): the rest must match byte for byte.
 */
function withoutSetId(d: Buffer): Buffer {
  const out: Buffer[] = [];
  let off = 0;
  while (off < d.length) {
    const len = d.readUInt32LE(off);
    const type = d.readUInt16LE(off + 4);
    const msg = d.subarray(off, off + len);
    if (type === nftType(NFT_MSG_NEWSETELEM) || type === nftType(NFT_MSG_DELSETELEM)) {
      const parts: Buffer[] = [Buffer.from(msg.subarray(0, 20))]; // nlmsghdr (16) + nfgenmsg (4)
      let a = 20;
      while (a < msg.length) {
        const alen = msg.readUInt16LE(a);
        const atype = msg.readUInt16LE(a + 2) & 0x3fff;
        const padded = (alen + 3) & ~3;
        if (atype !== 4) parts.push(msg.subarray(a, a + padded));
        a += padded;
      }
      const m = Buffer.concat(parts);
      m.writeUInt32LE(m.length, 0);
      out.push(m);
    } else out.push(msg);
    off += (len + 3) & ~3;
  }
  return Buffer.concat(out);
}

const alive = (elements: Array<{ key: Buffer; timeoutMs?: number }>, set = 'alive') => ({ family: 'inet' as const, table: 'dctest', set, elements });

t.test('set-element batches are byte for byte what nft sends (seq 0, 1, 2; no ACK asked, as nft)', async (t) => {
  const cases: Array<[string, ReturnType<typeof addSetElems>]> = [
    ['add element inet dctest alive { 8000 timeout 1500ms }', addSetElems(alive([{ key: keyInetService(8000), timeoutMs: 1500 }]))],
    ['add element inet dctest alive { 8000 timeout 1500ms, 8002 timeout 1500ms }', addSetElems(alive([{ key: keyInetService(8000), timeoutMs: 1500 }, { key: keyInetService(8002), timeoutMs: 1500 }]))],
    ['delete element inet dctest alive { 8000, 8002 }', delSetElems(alive([{ key: keyInetService(8000) }, { key: keyInetService(8002) }]))],
    ['add element inet dctest mservers4 { 192.0.2.9 . 443 timeout 3600s }', addSetElems(alive([{ key: keyAddrPort('192.0.2.9', 443), timeoutMs: 3_600_000 }], 'mservers4'))],
    ['add element inet dctest mservers6 { 2001:db8::9 . 443 timeout 60s }', addSetElems(alive([{ key: keyAddrPort('2001:db8::9', 443), timeoutMs: 60_000 }], 'mservers6'))],
    ['delete element inet dctest alive { 7777 }', delSetElems(alive([{ key: keyInetService(7777) }]))],
  ];
  for (const [cmd, op] of cases) {
    const b = encodeBatch([op], 0, { ack: false });
    t.equal(b.datagram.toString('hex'), withoutSetId(cap(`tx ${cmd}`)).toString('hex'), cmd);
    t.same([b.beginSeq, b.seqs, b.endSeq], [0, [1], 2]);
  }
});

t.test('with ACKs (what duocell sends) only the ops carry NLM_F_ACK; sequence numbers run on', async (t) => {
  const op = addSetElems(alive([{ key: keyInetService(8000), timeoutMs: 1500 }]));
  const b = encodeBatch([op, delSetElems(alive([{ key: keyInetService(8000) }])), op], 0xfffffffe);
  const msgs = splitMessages(b.datagram);
  t.same(msgs.map((m) => [m.type, m.flags, m.seq]), [
    [0x10, 0x1, 0xfffffffe],
    [0x0a0c, 0x1 | NLM_F_ACK | 0x400, 0xffffffff],
    [0x0a0e, 0x1 | NLM_F_ACK, 0],
    [0x0a0c, 0x1 | NLM_F_ACK | 0x400, 1],
    [0x11, 0x1, 2],
  ]);
  t.same(b.seqs, [0xffffffff, 0, 1]);
});

t.test('keys: inet_service 2 bytes BE; concatenations in 4-byte slots', async (t) => {
  t.equal(keyInetService(8000).toString('hex'), '1f40');
  t.equal(keyAddrPort('192.0.2.9', 443).toString('hex'), 'c000020901bb0000');
  t.equal(keyAddrPort('2001:db8::9', 443).toString('hex'), '20010db800000000000000000000000901bb0000');
  for (const p of [0, 65536, 1.5, Number.NaN]) t.throws(() => keyInetService(p), { code: 'DC_NETLINK_INVALID_ARG' }, String(p));
  t.throws(() => keyAddrPort('999.1.1.1', 1), { code: 'DC_NETLINK_INVALID_ARG' });
});

t.test('bad requests are refused locally with DC_NETLINK_INVALID_ARG', async (t) => {
  const k = keyInetService(1);
  const bad: Array<[string, () => unknown]> = [
    ['empty table', () => addSetElems({ ...alive([{ key: k }]), table: '' })],
    ['NUL in set', () => addSetElems({ ...alive([{ key: k }]), set: 'a\0b' })],
    ['long name', () => addSetElems({ ...alive([{ key: k }]), set: 'x'.repeat(256) })],
    ['no elements', () => addSetElems(alive([]))],
    ['zero timeout', () => addSetElems(alive([{ key: k, timeoutMs: 0 }]))],
    ['fractional timeout', () => addSetElems(alive([{ key: k, timeoutMs: 1.5 }]))],
    ['empty key', () => addSetElems(alive([{ key: Buffer.alloc(0) }]))],
    ['family', () => addSetElems({ ...alive([{ key: k }]), family: 'arp' as 'inet' })],
    ['empty batch', () => encodeBatch([], 1)],
    ['bad seq', () => encodeBatch([addSetElems(alive([{ key: k }]))], -1)],
  ];
  for (const [what, f] of bad) t.throws(f, { code: 'DC_NETLINK_INVALID_ARG' }, what);
});

t.test('GETGEN is what nft sends (plus the ACK we ask for); its NEWGEN reply and a refusal decode', async (t) => {
  const mine = encodeGetGen(0);
  const theirs = cap('tx getgen');
  mine.writeUInt16LE(mine.readUInt16LE(6) & ~NLM_F_ACK, 6);
  t.equal(mine.toString('hex'), theirs.toString('hex'));

  const gen = decodeReplies(cap('rx getgen'));
  t.equal(gen.length, 1);
  t.match(gen[0], { kind: 'gen', seq: 0, procName: 'nft' });
  t.ok(gen[0]!.kind === 'gen' && gen[0].genId > 0, 'a generation id');

  // the kernel's answer to `nft delete element inet dctest alive { 7777 }`: ENOENT for seq 1,
  // with the request echoed and an extended-ACK offset (no text)
  t.same(decodeReplies(cap('rx delete element inet dctest alive { 7777 }')), [{ kind: 'error', seq: 1, errno: 2, requestType: 0x0a0e }]);
});

t.test('replies: ACKs, DONE, other messages; malformed input is DC_NETLINK_MALFORMED', async (t) => {
  const ack = Buffer.alloc(36);
  ack.writeUInt32LE(36, 0);
  ack.writeUInt16LE(2, 4);
  ack.writeUInt32LE(77, 8);
  ack.writeUInt32LE(16, 20); // the echoed request header (len 16)
  t.same(decodeReplies(ack), [{ kind: 'ack', seq: 77 }]);
  const done = Buffer.from('140000000300020005000000000000000000000000', 'hex').subarray(0, 20);
  t.same(decodeReplies(done), [{ kind: 'done', seq: 5 }]);
  t.throws(() => decodeReplies(ack.subarray(0, 30)), { code: 'DC_NETLINK_MALFORMED' }, 'cut short');
  const short = Buffer.from(ack.subarray(0, 24));
  short.writeUInt32LE(24, 0);
  t.throws(() => decodeReplies(short), { code: 'DC_NETLINK_MALFORMED' }, 'an NLMSG_ERROR without the echoed header');
  const gen = Buffer.from(cap('rx getgen'));
  const noId = Buffer.concat([gen.subarray(0, 20), gen.subarray(28)]);
  noId.writeUInt32LE(noId.length, 0);
  t.throws(() => decodeReplies(noId), { code: 'DC_NETLINK_MALFORMED', message: /NFTA_GEN_ID/ }, 'NEWGEN without its id');
  t.throws(() => decodeGen({ type: 1, flags: 0, seq: 0, pid: 0, payload: Buffer.alloc(4) }), { code: 'DC_NETLINK_MALFORMED' });
});

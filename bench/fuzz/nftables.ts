import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { DuocellError } from '../../src/core/errors.js';
import {
  addSetElems, decodeReplies, delSetElems, encodeBatch, encodeMessage, keyAddrPort, keyInetService, NLMSG_DONE, NLMSG_ERROR, nftType,
  NFT_MSG_NEWGEN, nfgenmsg, splitMessages, attr, encodeAttrs,
} from '../../src/protocols/netlink/index.js';
import { prng } from './netlink.js';

/**
 * Fuzz the nf_tables reply decoder (what the kernel sends back on the nfnetlink socket: ACKs,
 * errors with and without extended ACK, NEWGEN, DONE) with real captures
 * (test/fixtures/nftables/captured.txt), generated replies, and their mutations. A rejection must
 * be a DuocellError with a code; a decoded reply must be sane (u32 seq, errno 1..4095, u32
 * generation). The batch encoder is checked on random valid ops: it always splits back into
 * BEGIN, the ops, END with consecutive sequence numbers.
 *
 *   node --import <ts loader> bench/fuzz/nftables.ts [iterations=200000] [seed=1]
 */

function seedsFromCapture(): Buffer[] {
  try {
    const text = readFileSync(new URL('../../test/fixtures/nftables/captured.txt', import.meta.url), 'utf8');
    return [...text.matchAll(/^rx .* => ([0-9a-f]+)$/gm)].map((m) => Buffer.from(m[1]!, 'hex'));
  } catch {
    return [];
  }
}

function generated(r: () => number): Buffer {
  const int = (n: number): number => Math.floor(r() * n);
  const parts: Buffer[] = [];
  for (let i = 0, n = 1 + int(3); i < n; i++) {
    const k = r();
    const seq = int(2 ** 32);
    if (k < 0.5) {
      const code = Buffer.alloc(4);
      code.writeInt32LE(r() < 0.5 ? 0 : -int(140));
      const ext = r() < 0.5 ? encodeAttrs([attr.string(1, 'x'.repeat(int(20))), attr.u32(2, int(200))]) : Buffer.alloc(0);
      const echoed = encodeMessage({ type: nftType(12), flags: 5, seq, payload: nfgenmsg(1, 0) });
      parts.push(encodeMessage({ type: NLMSG_ERROR, flags: ext.length > 0 ? 0x300 : 0, seq, payload: Buffer.concat([code, echoed.subarray(0, 16), ext]) }));
    } else if (k < 0.8) {
      const attrs = encodeAttrs([attr.u32(1, int(2 ** 32), { be: true }), attr.u32(2, int(65536), { be: true }), attr.string(3, 'nft')].filter(() => r() < 0.9));
      parts.push(encodeMessage({ type: nftType(NFT_MSG_NEWGEN), seq, payload: Buffer.concat([nfgenmsg(0, int(65536)), attrs]) }));
    } else if (k < 0.9) parts.push(encodeMessage({ type: NLMSG_DONE, flags: 2, seq, payload: Buffer.alloc(4) }));
    else parts.push(encodeMessage({ type: int(0x10000), seq, payload: Buffer.from(Array.from({ length: int(24) }, () => int(256))) }));
  }
  return Buffer.concat(parts);
}

function mutate(r: () => number, b: Buffer): Buffer {
  const out = Buffer.from(b);
  const k = r();
  if (out.length === 0) return Buffer.from([Math.floor(r() * 256)]);
  if (k < 0.35) {
    for (let i = 0, n = 1 + Math.floor(r() * 4); i < n; i++) out[Math.floor(r() * out.length)] = Math.floor(r() * 256);
    return out;
  }
  if (k < 0.55) return out.subarray(0, Math.floor(r() * out.length));
  if (k < 0.75) {
    const off = Math.floor(r() * Math.max(1, out.length - 2)) & ~3;
    if (off + 2 <= out.length) out.writeUInt16LE(Math.floor(r() * 0x10000), off);
    return out;
  }
  if (k < 0.9) return Buffer.concat([out, Buffer.from(Array.from({ length: Math.floor(r() * 24) }, () => Math.floor(r() * 256)))]);
  return Buffer.from(Array.from({ length: Math.floor(r() * 96) }, () => Math.floor(r() * 256)));
}

function checkEncoder(r: () => number): void {
  const int = (n: number): number => Math.floor(r() * n);
  const ops = Array.from({ length: 1 + int(4) }, () => {
    const v6 = r() < 0.3;
    const els = Array.from({ length: 1 + int(3) }, () => ({
      key: r() < 0.5 ? keyInetService(1 + int(65535)) : keyAddrPort(v6 ? `2001:db8::${int(65536).toString(16)}` : `10.${int(256)}.${int(256)}.${int(256)}`, 1 + int(65535)),
      timeoutMs: 1 + int(2 ** 31),
    }));
    const t = { family: 'inet' as const, table: 't' + int(1000), set: 's' + int(1000), elements: els };
    return r() < 0.5 ? addSetElems(t) : delSetElems(t);
  });
  const first = int(2 ** 32);
  const b = encodeBatch(ops, first);
  const msgs = splitMessages(b.datagram);
  if (msgs.length !== ops.length + 2) throw new Error(`batch of ${ops.length} split into ${msgs.length}`);
  msgs.forEach((m, i) => {
    if (m.seq !== ((first + i) >>> 0)) throw new Error(`message ${i}: seq ${m.seq}, want ${(first + i) >>> 0}`);
  });
  if (msgs[0]!.type !== 0x10 || msgs.at(-1)!.type !== 0x11) throw new Error('batch not framed by BEGIN/END');
}

export function fuzz(iterations: number, seed: number): { iterations: number; decoded: number; rejected: Record<string, number> } {
  const r = prng(seed);
  const seeds = seedsFromCapture();
  const rejected: Record<string, number> = {};
  let decoded = 0;
  for (let i = 0; i < iterations; i++) {
    if (i % 50 === 0) checkEncoder(r);
    const base = seeds.length > 0 && r() < 0.3 ? Buffer.from(seeds[Math.floor(r() * seeds.length)]!) : generated(r);
    const input = r() < 0.3 ? base : mutate(r, base);
    try {
      for (const x of decodeReplies(input)) {
        if (!Number.isInteger(x.seq) || x.seq < 0 || x.seq > 0xffffffff) throw new Error(`insane seq ${x.seq}`);
        if (x.kind === 'error' && (!Number.isInteger(x.errno) || x.errno < 1 || x.errno > 4095)) throw new Error(`insane errno ${x.errno}`);
        if (x.kind === 'gen' && (!Number.isInteger(x.genId) || x.genId < 0 || x.genId > 0xffffffff)) throw new Error(`insane generation ${x.genId}`);
      }
      decoded++;
    } catch (e) {
      if (!(e instanceof DuocellError)) throw new Error(`uncoded ${(e as Error).name} on ${input.toString('hex')}: ${(e as Error).message}`);
      rejected[e.code] = (rejected[e.code] ?? 0) + 1;
    }
  }
  return { iterations, decoded, rejected };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(JSON.stringify(fuzz(Number(process.argv[2] ?? 200_000), Number(process.argv[3] ?? 1))) + '\n');
}

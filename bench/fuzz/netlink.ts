import { DuocellError } from '../../src/core/errors.js';
import {
  attr, Attrs, decodeAttrs, decodeError, decodeGenl, encodeAttrs, encodeGenl, encodeMessage, NLMSG_ERROR,
  splitMessages, type AttrOut,
  decodeFamily, decodeInetDiagMsg, decodeRtnl, encodeAddressMsg, encodeRouteMsg, encodeRuleMsg,
} from '../../src/protocols/netlink/index.js';
import { decodeEndpoint, decodeLimits, parseEvent } from '../../src/protocols/mptcp-pm/index.js';
import { decodeInterface, decodeScanResult, decodeStation } from '../../src/protocols/nl80211/index.js';

/**
 * Fuzz the netlink codecs: random and mutated datagrams through the message splitter, the
 * generic-netlink header, the attribute decoder (walking every nest), the error decoder and
 * the family decoders registered in DECODERS. Every rejection must be a DuocellError with a
 * code; anything else (a TypeError, a RangeError from a Buffer read) is a bug and is thrown.
 */

/** Family decoders run on every message of every input (mptcp_pm, rtnetlink, nl80211). */
export const DECODERS: Array<{ name: string; decode: (b: Buffer) => unknown }> = [
  { name: 'mptcp_pm event', decode: (b) => splitMessages(b).map((m) => parseEvent(m.payload)) },
  { name: 'mptcp_pm endpoint', decode: (b) => splitMessages(b).map((m) => decodeEndpoint(m.payload)) },
  { name: 'mptcp_pm limits', decode: (b) => splitMessages(b).map((m) => decodeLimits(m.payload)) },
  { name: 'nlctrl family', decode: (b) => splitMessages(b).map((m) => decodeFamily(m.payload)) },
  { name: 'nl80211 interface', decode: (b) => splitMessages(b).map((m) => decodeInterface(m.payload)) },
  { name: 'nl80211 station', decode: (b) => splitMessages(b).map((m) => decodeStation(m.payload)) },
  { name: 'nl80211 scan', decode: (b) => splitMessages(b).map((m) => decodeScanResult(m.payload)) },
  { name: 'sock_diag', decode: (b) => splitMessages(b).map((m) => decodeInetDiagMsg(m.payload)) },
  { name: 'rtnetlink', decode: (b) => splitMessages(b).map((m) => [16, 20, 24, 32].map((t) => decodeRtnl(t, m.payload))) },
];

/** mulberry32: small deterministic PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function walk(buf: Buffer, depth: number, budget: { n: number }): void {
  for (const a of decodeAttrs(buf)) {
    if (--budget.n <= 0) return;
    if (depth < 8 && a.value.length >= 4) {
      try {
        walk(a.value, depth + 1, budget);
      } catch (e) {
        if (!(e instanceof DuocellError)) throw e;
      }
    }
  }
}

function randomAttrs(r: () => number, depth: number): AttrOut[] {
  const out: AttrOut[] = [];
  const n = Math.floor(r() * 5);
  for (let i = 0; i < n; i++) {
    const type = Math.floor(r() * 40);
    const k = r();
    if (k < 0.2 && depth < 3) out.push(attr.nested(type, randomAttrs(r, depth + 1)));
    else if (k < 0.4) out.push(attr.u32(type, Math.floor(r() * 2 ** 32)));
    else if (k < 0.55) out.push(attr.u16(type, Math.floor(r() * 65536), { be: r() < 0.5, flag: r() < 0.5 }));
    else if (k < 0.7) out.push(attr.u8(type, Math.floor(r() * 256)));
    else if (k < 0.8) out.push(attr.string(type, 'x'.repeat(Math.floor(r() * 9))));
    else out.push(attr.binary(type, Buffer.from(Array.from({ length: Math.floor(r() * 20) }, () => Math.floor(r() * 256)))));
  }
  return out;
}

/** A plausible datagram: one to three generic-netlink messages, sometimes an NLMSG_ERROR. */
function validDatagram(r: () => number, seeds: readonly Buffer[]): Buffer {
  if (seeds.length > 0 && r() < 0.5) return Buffer.from(seeds[Math.floor(r() * seeds.length)]!);
  const msgs: Buffer[] = [];
  const n = 1 + Math.floor(r() * 3);
  for (let i = 0; i < n; i++) {
    if (r() < 0.15) {
      const code = Buffer.alloc(4);
      code.writeInt32LE(-Math.floor(r() * 130));
      msgs.push(encodeMessage({ type: NLMSG_ERROR, flags: r() < 0.5 ? 0x300 : 0, payload: Buffer.concat([code, encodeMessage({ type: 0x20, seq: 1 }), encodeAttrs(randomAttrs(r, 0))]) }));
    } else {
      msgs.push(encodeMessage({ type: 0x10 + Math.floor(r() * 32), flags: 2, seq: Math.floor(r() * 1000), payload: encodeGenl(Math.floor(r() * 40), 1, randomAttrs(r, 0)) }));
    }
  }
  return Buffer.concat(msgs);
}

function mutate(r: () => number, b: Buffer): Buffer {
  const out = Buffer.from(b);
  const k = r();
  if (out.length === 0) return Buffer.from([Math.floor(r() * 256)]);
  if (k < 0.3) {
    const flips = 1 + Math.floor(r() * 4);
    for (let i = 0; i < flips; i++) out[Math.floor(r() * out.length)] = Math.floor(r() * 256);
    return out;
  }
  if (k < 0.5) return out.subarray(0, Math.floor(r() * out.length));
  if (k < 0.7) {
    // corrupt a length field (u16 at an attribute-ish offset or the u32 nlmsg length)
    const off = Math.floor(r() * Math.max(1, out.length - 2)) & ~3;
    if (off + 2 <= out.length) out.writeUInt16LE(Math.floor(r() * 0x10000), off);
    return out;
  }
  if (k < 0.85) return Buffer.concat([out, Buffer.from(Array.from({ length: Math.floor(r() * 16) }, () => Math.floor(r() * 256)))]);
  return Buffer.from(Array.from({ length: Math.floor(r() * 64) }, () => Math.floor(r() * 256)));
}

function tryDecode(buf: Buffer, rejected: Record<string, number>): void {
  runFamilyDecoders(buf, rejected);
  const msgs = splitMessages(buf);
  for (const m of msgs) {
    if (m.type === NLMSG_ERROR) {
      decodeError(m);
      continue;
    }
    const g = decodeGenl(m.payload);
    walk(g.attrs, 0, { n: 10_000 });
    const a = new Attrs(decodeAttrs(g.attrs));
    for (const x of a.list) {
      a.uint(x.type);
      a.string(x.type);
    }
  }
}

function runFamilyDecoders(buf: Buffer, rejected: Record<string, number>): void {
  for (const d of DECODERS) {
    try {
      d.decode(buf);
    } catch (e) {
      if (!(e instanceof DuocellError)) throw new Error(`${d.name} threw a non-DuocellError: ${String(e)}`, { cause: e });
      if (e.code !== 'DC_NETLINK_MALFORMED') rejected[e.code] = (rejected[e.code] ?? 0) + 1;
    }
  }
}

/** Valid datagrams of each family to mutate: mptcp_pm events, endpoints, rtnetlink objects. */
function builtinSeeds(): Buffer[] {
  const ev = (cmd: number, attrs: AttrOut[]): Buffer => encodeMessage({ type: 28, payload: encodeGenl(cmd, 1, attrs) });
  const v4 = (t: number, ip: number[]): AttrOut => attr.binary(t, Buffer.from(ip));
  const be16 = (t: number, p: number): AttrOut => attr.u16(t, p, { be: true });
  return [
    ev(1, [attr.u32(1, 0x1234), attr.u16(2, 2), v4(5, [10, 0, 0, 1]), v4(7, [10, 0, 0, 2]), be16(9, 5000), be16(10, 80), attr.u16(13, 1)]),
    ev(10, [attr.u32(1, 0x1234), attr.u16(2, 2), attr.u8(3, 1), attr.u8(4, 0), v4(5, [10, 0, 1, 1]), v4(7, [10, 0, 0, 2]), be16(9, 5001), be16(10, 80), attr.u8(11, 0), attr.s32(15, 3)]),
    ev(6, [attr.u32(1, 0x1234), attr.u8(4, 5), be16(10, 99), attr.binary(8, Buffer.alloc(16, 1))]),
    ev(3, [attr.u32(1, 0x1234)]),
    ev(15, [attr.u16(2, 10), attr.binary(6, Buffer.alloc(16)), be16(9, 80)]),
    encodeMessage({ type: 28, payload: encodeGenl(3, 1, [attr.nested(1, [attr.u16(1, 2), attr.u8(2, 1), v4(3, [10, 0, 0, 1]), attr.u32(6, 2), attr.s32(7, 3)])]) }),
    // nl80211: an interface, a station with rates, a scan result with IEs
    encodeMessage({ type: 26, payload: encodeGenl(7, 1, [attr.u32(3, 3), attr.string(4, 'wlan0'), attr.u32(5, 2), attr.u64(153, 1n), attr.binary(6, Buffer.alloc(6, 2))]) }),
    encodeMessage({ type: 26, payload: encodeGenl(19, 1, [attr.u32(3, 3), attr.binary(6, Buffer.alloc(6, 2)), attr.nested(21, [attr.u8(7, 0xe2), attr.nested(8, [attr.u32(5, 1300), attr.u8(2, 15)]), attr.nested(25, [attr.u8(0, 0xe1)]), attr.u64(23, 5n)])]) }),
    encodeMessage({ type: 26, payload: encodeGenl(34, 1, [attr.u32(3, 3), attr.nested(47, [attr.binary(1, Buffer.alloc(6, 1)), attr.s32(7, -4300), attr.u32(9, 1), attr.binary(6, Buffer.from([0, 3, 0x61, 0x62, 0x63, 3, 1, 36]))])]) }),
    encodeMessage({ type: 24, payload: encodeRouteMsg({ dst: '0.0.0.0/0', table: 300, oif: 3, gateway: '10.0.0.1' }) }),
    encodeMessage({ type: 32, payload: encodeRuleMsg({ src: 'fd00::1/128', table: 300, priority: 1300 }) }),
    encodeMessage({ type: 20, payload: encodeAddressMsg({ index: 3, address: '10.0.0.1', prefixLen: 24 }) }),
  ];
}

export async function fuzz(iterations: number, seed = 1, extraSeeds: readonly Buffer[] = []): Promise<{ iterations: number; rejected: Record<string, number> }> {
  const r = prng(seed);
  const seeds = [...builtinSeeds(), ...extraSeeds];
  const rejected: Record<string, number> = {};
  for (let i = 0; i < iterations; i++) {
    const input = r() < 0.1 ? validDatagram(r, seeds) : mutate(r, validDatagram(r, seeds));
    try {
      tryDecode(input, rejected);
    } catch (e) {
      if (!(e instanceof DuocellError)) {
        throw new Error(`fuzz iteration ${i} (seed ${seed}) input ${input.toString('hex')}: ${String(e)}`, { cause: e });
      }
      rejected[e.code] = (rejected[e.code] ?? 0) + 1;
    }
  }
  return { iterations, rejected };
}

// `node --import ./scripts/ts-loader.mjs bench/fuzz/netlink.ts [iterations] [seed]`
if (import.meta.url === `file://${process.argv[1]}`) {
  const n = Number(process.argv[2] ?? 1_000_000);
  const seed = Number(process.argv[3] ?? 1);
  const t0 = Date.now();
  const res = await fuzz(n, seed);
  console.log(JSON.stringify({ ...res, ms: Date.now() - t0 }));
}

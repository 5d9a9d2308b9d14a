import { isDeepStrictEqual } from 'node:util';
import { pathToFileURL } from 'node:url';
import { DuocellError } from '../../src/core/errors.js';
import {
  decodeBytes,
  encodeIndication,
  encodeRequest,
  encodeResponse,
  ipv6ToString,
  MESSAGES,
  printable,
  QmiStreamParser,
  decodeFrame,
  type Field,
  type MessageDef,
  type TlvDef,
} from '../../src/protocols/qmi/index.js';
import { rng } from './at.js';

/**
 * Fuzz the QMI codec. Each iteration makes one of: a well-formed message of a random described
 * kind with random field values (which must decode back to the same values: the generic encoder
 * and decoder agree), a mutation of such a frame (bit flips, cut, length fields bent, bytes
 * spliced), or noise. Every input goes through decodeFrame → decodeMessage → printable, and
 * through one long-lived stream parser in random chunks. Checked: a rejection is a DuocellError
 * whose code starts DC_QMI_; the stream parser's buffer stays under one maximal frame plus one
 * chunk; no input takes more than 5 s (hang guard). Anything else is thrown as a bug.
 *
 *   node --import <ts loader> bench/fuzz/qmi.ts [iterations=1000000] [seed=1]
 */

const int = (r: () => number, n: number): number => Math.floor(r() * n);
const PRINTABLE = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_';

function value(r: () => number, f: Field, depth = 0): unknown {
  switch (f.t) {
    case 'u8':
      return f.enum && r() < 0.7 ? Number(pick(r, Object.keys(f.enum))) & 0xff : int(r, 0x100);
    case 'u16':
      return int(r, 0x10000);
    case 'u32':
      return f.enum && r() < 0.7 ? Number(pick(r, Object.keys(f.enum))) : int(r, 0x100000000);
    case 'i8':
      return int(r, 0x100) - 0x80;
    case 'i16':
      return int(r, 0x10000) - 0x8000;
    case 'i32':
      return int(r, 0x100000000) - 0x80000000;
    case 'string': {
      const n = f.size !== undefined ? int(r, f.size + 1) : int(r, 24);
      let s = '';
      for (let i = 0; i < n; i++) s += PRINTABLE[int(r, PRINTABLE.length)];
      return s;
    }
    case 'bytes':
      return Buffer.from(Array.from({ length: int(r, 12) }, () => int(r, 256))).toString('hex');
    case 'ipv4':
      return [int(r, 256), int(r, 256), int(r, 256), int(r, 256)].join('.');
    case 'ipv6':
      return ipv6ToString(Buffer.from(Array.from({ length: 16 }, () => (r() < 0.4 ? 0 : int(r, 256)))));
    case 'struct':
      return Object.fromEntries(f.fields.map(([k, sub]) => [k, value(r, sub, depth + 1)]));
    case 'array':
      return Array.from({ length: depth > 2 ? 0 : int(r, 4) }, () => value(r, f.of, depth + 1));
  }
}

function pick<T>(r: () => number, a: readonly T[]): T {
  return a[int(r, a.length)]!;
}

export function randomValues(r: () => number, defs: readonly TlvDef[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const d of defs) if (d.mandatory || r() < 0.6) out[d.name] = value(r, d.field);
  return out;
}

function wellFormed(r: () => number): { bytes: Buffer; def: MessageDef; values: Record<string, unknown> } {
  const def = pick(r, MESSAGES);
  const a = { client: def.service === 0 ? 0 : 1 + int(r, 254), tid: def.service === 0 ? int(r, 256) : int(r, 0x10000) };
  if (def.indication) {
    const values = randomValues(r, def.output);
    return { bytes: encodeIndication(def.key, a.client, values), def, values };
  }
  if (r() < 0.5) {
    const values = randomValues(r, def.input);
    return { bytes: encodeRequest(def.key, a, values), def, values };
  }
  const values = randomValues(r, def.output);
  return { bytes: encodeResponse(def.key, a, values, r() < 0.2 ? 1 + int(r, 90) : 0), def, values };
}

function mutate(r: () => number, b: Buffer): Buffer {
  let x = Buffer.from(b);
  const n = 1 + int(r, 3);
  for (let i = 0; i < n; i++) {
    const k = r();
    if (k < 0.25 && x.length > 0) x[int(r, x.length)]! ^= 1 << int(r, 8);
    else if (k < 0.4 && x.length > 0) x[int(r, x.length)] = int(r, 256);
    else if (k < 0.55) x = x.subarray(0, int(r, x.length + 1));
    else if (k < 0.65 && x.length > 3) x.writeUInt16LE(int(r, 0x10000), 1); // QMUX length
    else if (k < 0.8 && x.length > 14) x.writeUInt16LE(int(r, 0x200), 10 + int(r, 4)); // SDU tlv length / a TLV length
    else if (k < 0.9) x = Buffer.concat([x, Buffer.from(Array.from({ length: int(r, 16) }, () => int(r, 256)))]);
    else if (x.length > 0) {
      const at = int(r, x.length);
      x = Buffer.concat([x.subarray(0, at), x.subarray(at + 1 + int(r, 4))]);
    }
  }
  return x;
}

export async function fuzz(iterations: number, seed = 1): Promise<{ iterations: number; rejected: Record<string, number> }> {
  const r = rng(seed);
  const rejected: Record<string, number> = {};
  const count = (k: string): void => {
    rejected[k] = (rejected[k] ?? 0) + 1;
  };
  const stream = new QmiStreamParser(); // one parser for the whole run, never reset
  for (let i = 0; i < iterations; i++) {
    const t0 = Date.now();
    const k = r();
    let input: Buffer;
    if (k < 0.3) {
      const w = wellFormed(r);
      input = w.bytes;
      const m = decodeBytes(input); // must not throw
      if (m.key !== w.def.key) throw new Error(`decoded as ${m.key}, encoded as ${w.def.key}`);
      if (!isDeepStrictEqual(m.values, w.values))
        throw new Error(`round trip differs for ${w.def.key}: ${JSON.stringify(w.values)} → ${JSON.stringify(m.values)}`);
      count('ok:roundtrip');
    } else if (k < 0.9) input = mutate(r, wellFormed(r).bytes);
    else input = Buffer.from(Array.from({ length: int(r, 96) }, () => (r() < 0.1 ? 1 : int(r, 256))));
    try {
      const f = decodeFrame(input);
      printable(f);
      decodeBytes(input);
      count('ok');
    } catch (e) {
      if (!(e instanceof DuocellError) || !e.code.startsWith('DC_QMI_')) throw new Error(`non-QMI rejection on ${input.toString('hex')}: ${String(e)}`);
      count(e.code);
    }
    let off = 0;
    while (off < input.length) {
      const n = 1 + int(r, 48);
      for (const item of stream.push(input.subarray(off, off + n))) {
        if ('error' in item) {
          if (!(item.error instanceof DuocellError)) throw new Error('stream error without a code');
          count(`stream:${item.error.code}`);
        } else count('stream:frame');
      }
      off += n;
      if (stream.buffered > 0x10001 + 48) throw new Error(`stream buffer grew to ${stream.buffered}`);
    }
    const ms = Date.now() - t0;
    if (ms > 5000) throw new Error(`input took ${ms} ms: ${input.toString('hex')}`);
  }
  return { iterations, rejected };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const n = Number(process.argv[2] ?? 1_000_000);
  const t0 = Date.now();
  const res = await fuzz(n, Number(process.argv[3] ?? 1));
  console.log(JSON.stringify({ ...res, ms: Date.now() - t0, heapMiB: Math.round(process.memoryUsage().heapUsed / 1048576) }));
}

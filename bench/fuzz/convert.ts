import { pathToFileURL } from 'node:url';
import { DuocellError } from '../../src/core/errors.js';
import { STEERING_MODES } from '../../src/core/model.js';
import {
  encodeConvertMessage,
  encodeFaultReply,
  parseConvertMessage,
  validateRequest,
  validateResponse,
  type ConvertParse,
  type ConvertTlv,
} from '../../src/protocols/convert/index.js';

/**
 * Fuzz the RFC 8803 codec: well-formed messages (random TLV mixes), the same mutated (bit
 * flips, byte writes, truncation, extension, splices, lying lengths), and pure noise, through
 * parseConvertMessage, both role checks and the fault reply encoder. Checked on every input:
 * - every rejection is a DuocellError with a code and a numeric detail.convertError;
 * - the incremental parser is consistent: any prefix answers "need more than I have" or the
 *   very same fault as the whole input (a split never changes the verdict);
 * - a decoded message re-encodes to bytes that decode to the same TLVs;
 * - the Error reply to a fault parses back and carries that fault's code.
 * Anything else (TypeError, RangeError, a mismatch) is a bug and is thrown.
 */

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

const int = (r: () => number, n: number): number => Math.floor(r() * n);
const bytes = (r: () => number, n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(r, 256)));

function randomAddress(r: () => number): string {
  if (r() < 0.5) return `${1 + int(r, 126)}.${int(r, 256)}.${int(r, 256)}.${1 + int(r, 254)}`;
  const g = Array.from({ length: 8 }, () => int(r, 65536).toString(16));
  g[0] = (0x2000 + int(r, 0x1000)).toString(16);
  return g.join(':');
}

function randomTlv(r: () => number): ConvertTlv {
  switch (int(r, 9)) {
    case 0:
      return { type: 'info' };
    case 1:
      return {
        type: 'connect',
        address: randomAddress(r),
        port: 1 + int(r, 65535),
        tcpOptions: Array.from({ length: int(r, 4) }, () => ({ kind: 2 + int(r, 254), data: bytes(r, int(r, 12)) })),
      };
    case 2:
      return { type: 'extended-tcp-header', tcpOptions: Buffer.from([2, 4, 5, 0xb4, 1, 3, 3, int(r, 15)]).subarray(0, int(r, 9)) };
    case 3:
      return { type: 'supported-tcp-extensions', kinds: Array.from({ length: int(r, 8) }, () => 3 + int(r, 253)) };
    case 4:
      return { type: 'cookie', cookie: bytes(r, 1 + int(r, 40)) };
    case 5:
      return { type: 'error', code: int(r, 128), value: bytes(r, int(r, 12)) };
    case 6:
      return { type: 'grant-request' };
    case 7: {
      const cellular = int(r, 101);
      const name = (): string => String.fromCodePoint(...Array.from({ length: 1 + int(r, 12) }, () => (r() < 0.8 ? 0x61 + int(r, 26) : 0x100 + int(r, 0x2000))));
      return {
        type: 'grant',
        grant: {
          subscriber: r() < 0.3 ? null : name(),
          policy: name(),
          maxSessionsPerUe: int(r, 2_000_000),
          maxSessionsPerNServer: int(r, 2_000_000),
          maxSubflowsPerSession: int(r, 9),
          steeringMode: STEERING_MODES[int(r, STEERING_MODES.length)]!,
          ratio: { cellular, wlan: 100 - cellular },
        },
      };
    }
    default:
      // another party's Private Use TLV (skipped by clients, refused by converters)
      return { type: 'private', code: 192 + int(r, 64), value: bytes(r, 2 + 4 * int(r, 3)) };
  }
}

function wellFormed(r: () => number): Buffer {
  const tlvs = Array.from({ length: 1 + int(r, 4) }, () => randomTlv(r));
  try {
    return encodeConvertMessage(tlvs);
  } catch (e) {
    if (e instanceof DuocellError && e.code === 'DC_CONVERT_ENCODE') return encodeConvertMessage([{ type: 'info' }]);
    throw e;
  }
}

function mutate(r: () => number, b: Buffer): Buffer {
  let x = Buffer.from(b);
  const n = 1 + int(r, 3);
  for (let i = 0; i < n; i++) {
    const k = r();
    if (k < 0.25 && x.length > 0) x[int(r, x.length)] ^= 1 << int(r, 8);
    else if (k < 0.45 && x.length > 0) x[int(r, x.length)] = int(r, 256);
    else if (k < 0.55) x = x.subarray(0, int(r, x.length + 1));
    else if (k < 0.65) x = Buffer.concat([x, bytes(r, int(r, 16))]);
    else if (k < 0.75 && x.length > 1) x[1] = int(r, 256); // lie about the total length
    else if (k < 0.85 && x.length > 5) x[5] = int(r, 256); // lie about the first TLV length
    else if (k < 0.92 && x.length > 4) x[4] = [1, 10, 20, 21, 22, 30, 0xd0, int(r, 256)][int(r, 8)]!; // swap the TLV type
    else {
      const at = int(r, x.length + 1);
      x = Buffer.concat([x.subarray(0, at), bytes(r, 1 + int(r, 8)), x.subarray(at)]);
    }
  }
  return x;
}

type Verdict = { kind: 'need'; need: number } | { kind: 'ok'; consumed: number; tlvs: ConvertTlv[] } | { kind: 'fault'; code: string; convertError: number };

function verdict(b: Buffer): Verdict {
  let r: ConvertParse;
  try {
    r = parseConvertMessage(b);
  } catch (e) {
    if (!(e instanceof DuocellError)) throw e;
    if (typeof e.detail.convertError !== 'number') throw new Error(`fault without convertError: ${e.code} ${e.message}`);
    return { kind: 'fault', code: e.code, convertError: e.detail.convertError };
  }
  if ('need' in r) return { kind: 'need', need: r.need };
  return { kind: 'ok', consumed: r.consumed, tlvs: r.message.tlvs };
}

function stable(tlvs: readonly ConvertTlv[]): string {
  return JSON.stringify(tlvs, (_k, v: unknown) => (Buffer.isBuffer(v) ? v.toString('hex') : v));
}

export async function fuzz(iterations: number, seed = 1): Promise<{ iterations: number; rejected: Record<string, number> }> {
  const r = prng(seed);
  const rejected: Record<string, number> = {};
  const reject = (code: string): void => {
    rejected[code] = (rejected[code] ?? 0) + 1;
  };
  for (let i = 0; i < iterations; i++) {
    const k = r();
    const input = k < 0.3 ? wellFormed(r) : k < 0.9 ? mutate(r, wellFormed(r)) : bytes(r, int(r, 64));
    const v = verdict(input);
    // A split never changes the verdict.
    const cut = int(r, input.length + 1);
    if (cut < input.length) {
      const p = verdict(input.subarray(0, cut));
      if (p.kind === 'ok') {
        if (v.kind !== 'ok' || p.consumed !== v.consumed) throw new Error(`prefix ${cut} of ${input.toString('hex')} parsed differently`);
      } else if (p.kind === 'need') {
        if (p.need <= cut) throw new Error(`prefix ${cut} of ${input.toString('hex')}: need ${p.need} is not more`);
      } else if (v.kind !== 'fault' || v.code !== p.code) {
        throw new Error(`prefix ${cut} of ${input.toString('hex')} faulted ${p.code}, whole gave ${v.kind}`);
      }
    }
    if (v.kind === 'need') {
      reject('need-more');
      continue;
    }
    if (v.kind === 'fault') {
      reject(v.code);
      const reply = encodeFaultReply(
        new DuocellError(v.code as DuocellError['code'], 'fuzz', { convertError: v.convertError }),
        input,
      );
      const back = verdict(reply);
      if (back.kind !== 'ok') throw new Error(`fault reply does not parse: ${reply.toString('hex')}`);
      const res = validateResponse({ tlvs: back.tlvs });
      if (res.error?.code !== v.convertError) throw new Error(`fault reply carries ${res.error?.code}, not ${v.convertError}`);
      continue;
    }
    // Whole message: role checks, and re-encoding is stable.
    for (const check of [validateRequest, validateResponse]) {
      try {
        check({ tlvs: v.tlvs });
      } catch (e) {
        if (!(e instanceof DuocellError) || typeof e.detail.convertError !== 'number') throw e;
        reject(`${check.name}:${e.code}`);
      }
    }
    const again = verdict(encodeConvertMessage(v.tlvs));
    if (again.kind !== 'ok' || stable(again.tlvs) !== stable(v.tlvs)) {
      throw new Error(`re-encoding changed ${input.toString('hex')}`);
    }
    if (i % 5000 === 4999) await new Promise((res) => setImmediate(res));
  }
  return { iterations, rejected };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const n = Number(process.argv[2] ?? 1_000_000);
  const t0 = Date.now();
  const res = await fuzz(n, Number(process.argv[3] ?? 1));
  console.log(JSON.stringify({ ...res, ms: Date.now() - t0 }));
}

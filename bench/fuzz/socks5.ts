import { pathToFileURL } from 'node:url';
import { DuocellError } from '../../src/core/errors.js';
import {
  encodeGreeting,
  encodeReply,
  encodeRequest,
  encodeUserPassRequest,
  parseGreeting,
  parseMethodSelection,
  parseReply,
  parseRequest,
  parseUserPassReply,
  parseUserPassRequest,
  type SocksParse,
} from '../../src/protocols/socks5/index.js';
import { prng } from './convert.js';

/**
 * Fuzz the SOCKS5 / RFC 1929 codec: well-formed messages of every kind, mutated, and noise,
 * through every parser. Checked on every input: rejections are DuocellErrors with a code
 * (request faults also carry a numeric detail.socksReply); any prefix answers "need more than
 * I have" or the same fault as the whole; a parsed request/reply re-encodes and parses back
 * the same. Anything else is a bug and is thrown.
 */

const int = (r: () => number, n: number): number => Math.floor(r() * n);
const bytes = (r: () => number, n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(r, 256)));

const PARSERS: Array<[string, (b: Uint8Array) => SocksParse<unknown>]> = [
  ['greeting', parseGreeting],
  ['method', parseMethodSelection],
  ['userpass', parseUserPassRequest],
  ['userpass-reply', parseUserPassReply],
  ['request', parseRequest],
  ['reply', parseReply],
];

function host(r: () => number): string {
  const k = r();
  if (k < 0.33) return `${int(r, 256)}.${int(r, 256)}.${int(r, 256)}.${int(r, 256)}`;
  if (k < 0.66) return Array.from({ length: 8 }, () => int(r, 65536).toString(16)).join(':');
  const label = (): string => Array.from({ length: 1 + int(r, 10) }, () => 'abcxyz019-'[int(r, 9)]).join('');
  return `${label()}.${label()}`.replace(/^-|-$/g, 'a').replace(/-\./g, 'a.').replace(/\.-/g, '.a');
}

function wellFormed(r: () => number): Buffer {
  switch (int(r, 5)) {
    case 0:
      return encodeGreeting(Array.from({ length: 1 + int(r, 5) }, () => int(r, 256)));
    case 1:
      return encodeUserPassRequest('u'.repeat(1 + int(r, 20)), 'p'.repeat(1 + int(r, 20)));
    case 2:
      return encodeRequest(1 + int(r, 3), host(r), int(r, 65536));
    case 3:
      return encodeReply(int(r, 9), { host: host(r).includes('.') && !/[a-z]/.test(host(r)) ? '10.0.0.1' : '::1', port: int(r, 65536) });
    default:
      return Buffer.from([r() < 0.5 ? 5 : 1, int(r, 256)]);
  }
}

function mutate(r: () => number, b: Buffer): Buffer {
  let x = Buffer.from(b);
  const k = r();
  if (k < 0.3 && x.length > 0) x[int(r, x.length)] ^= 1 << int(r, 8);
  else if (k < 0.5 && x.length > 0) x[int(r, x.length)] = int(r, 256);
  else if (k < 0.65) x = x.subarray(0, int(r, x.length + 1));
  else if (k < 0.8) x = Buffer.concat([x, bytes(r, int(r, 8))]);
  else if (k < 0.9 && x.length > 4) x[4] = int(r, 256); // domain length / address bytes
  else if (x.length > 3) x[3] = [1, 3, 4, int(r, 256)][int(r, 4)]!; // address type
  return x;
}

type Verdict = { kind: 'need'; need: number } | { kind: 'ok'; consumed: number; value: unknown } | { kind: 'fault'; code: string };

function verdict(parse: (b: Uint8Array) => SocksParse<unknown>, b: Buffer, name: string): Verdict {
  try {
    const r = parse(b);
    return 'need' in r ? { kind: 'need', need: r.need } : { kind: 'ok', consumed: r.consumed, value: r.value };
  } catch (e) {
    if (!(e instanceof DuocellError)) throw e;
    if (name === 'request' && typeof e.detail.socksReply !== 'number') throw new Error(`request fault ${e.code} has no reply code`);
    return { kind: 'fault', code: e.code };
  }
}

export async function fuzz(iterations: number, seed = 1): Promise<{ iterations: number; rejected: Record<string, number> }> {
  const r = prng(seed);
  const rejected: Record<string, number> = {};
  for (let i = 0; i < iterations; i++) {
    const k = r();
    const input = k < 0.25 ? wellFormed(r) : k < 0.9 ? mutate(r, wellFormed(r)) : bytes(r, int(r, 40));
    const [name, parse] = PARSERS[int(r, PARSERS.length)]!;
    const v = verdict(parse, input, name);
    const cut = int(r, input.length + 1);
    if (cut < input.length) {
      const p = verdict(parse, input.subarray(0, cut), name);
      if (p.kind === 'ok' && (v.kind !== 'ok' || p.consumed !== v.consumed)) throw new Error(`${name}: prefix ${cut} of ${input.toString('hex')} differs`);
      if (p.kind === 'need' && p.need <= cut) throw new Error(`${name}: prefix ${cut} need ${p.need}`);
      if (p.kind === 'fault' && (v.kind !== 'fault' || v.code !== p.code)) throw new Error(`${name}: prefix ${cut} of ${input.toString('hex')} faulted ${p.code}`);
    }
    if (v.kind === 'fault') rejected[v.code] = (rejected[v.code] ?? 0) + 1;
    else if (v.kind === 'need') rejected['need-more'] = (rejected['need-more'] ?? 0) + 1;
    else if (name === 'request' || name === 'reply') {
      // Re-encode and parse back: the same request/reply.
      const val = v.value as { command?: number; reply?: number; host?: string; address?: { host: string }; port: number };
      const h = val.host ?? val.address!.host;
      const again = name === 'request' ? encodeRequest(val.command!, h, val.port) : encodeReply(val.reply!, { host: h, port: val.port });
      const back = verdict(parse, again, name);
      if (back.kind !== 'ok' || JSON.stringify(back.value) !== JSON.stringify(v.value)) {
        throw new Error(`${name}: re-encoding ${input.toString('hex')} changed it`);
      }
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

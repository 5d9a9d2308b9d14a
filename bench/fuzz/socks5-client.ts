import { pathToFileURL } from 'node:url';
import { DuocellError } from '../../src/core/errors.js';
import { Socks5ClientHandshake, encodeReply, type Socks5Connected } from '../../src/protocols/socks5/index.js';
import { prng } from './convert.js';

/**
 * Fuzz the SOCKS5 client handshake (protocols/socks5/client.ts) with what a proxy could send:
 * well-formed answers (every method, RFC 1929 status, reply code and address type, with random
 * server bytes behind the reply), mutated ones, and noise; fed whole and again cut at random
 * places. Checked on every input: a rejection is a DuocellError with a DC_SOCKS_* code (a failure
 * reply also carries detail.socksReply and detail.outcome); the cuts give the same outcome as the
 * whole, and on success the bytes behind the reply (what the handshake hands back plus what was
 * not fed yet) are exactly the whole feed's. Anything else is a bug and is thrown.
 */

const int = (r: () => number, n: number): number => Math.floor(r() * n);
const bytes = (r: () => number, n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(r, 256)));

function bound(r: () => number): { host: string; port: number } {
  const k = r();
  const port = int(r, 65536);
  if (k < 0.4) return { host: `${int(r, 256)}.${int(r, 256)}.${int(r, 256)}.${int(r, 256)}`, port };
  if (k < 0.8) return { host: Array.from({ length: 8 }, () => int(r, 65536).toString(16)).join(':'), port };
  return { host: `h${int(r, 1000)}.example`, port };
}

/** What a proxy answers to a client with (`auth`) or without credentials. */
function answer(r: () => number, auth: boolean): Buffer {
  const parts: Buffer[] = [];
  const m = r();
  const method = m < 0.45 ? 0 : m < 0.85 ? (auth ? 2 : 0) : m < 0.93 ? 0xff : int(r, 256);
  parts.push(Buffer.from([5, method]));
  if (method === 2) parts.push(Buffer.from([1, r() < 0.85 ? 0 : 1 + int(r, 255)]));
  parts.push(encodeReply(r() < 0.6 ? 0 : int(r, 256), bound(r)));
  parts.push(bytes(r, int(r, 64)));
  return Buffer.concat(parts);
}

function mutate(r: () => number, b: Buffer): Buffer {
  const x = Buffer.from(b);
  const k = r();
  if (k < 0.4 && x.length > 0) x[int(r, x.length)] ^= 1 << int(r, 8);
  else if (k < 0.7 && x.length > 0) x[int(r, x.length)] = int(r, 256);
  else return x.subarray(0, int(r, x.length + 1));
  return x;
}

type Outcome = { kind: 'need' } | { kind: 'done'; value: Socks5Connected; tail: Buffer } | { kind: 'fault'; code: string; reply?: unknown; outcome?: unknown };

function run(auth: boolean, input: Buffer, cuts: number[]): { outcome: Outcome; sent: string } {
  const hs = new Socks5ClientHandshake({ host: '192.0.2.1', port: 443, ...(auth ? { auth: { username: 'u', password: 'p' } } : {}) });
  const sent: string[] = [hs.start().toString('hex')];
  const edges = [0, ...cuts.filter((c) => c > 0 && c < input.length).sort((a, b) => a - b), input.length];
  try {
    for (let i = 0; i + 1 < edges.length; i++) {
      const chunk = input.subarray(edges[i], edges[i + 1]);
      if (chunk.length === 0) continue;
      const s = hs.feed(chunk);
      if (s.send !== undefined) sent.push(s.send.toString('hex'));
      if (s.done !== undefined) return { outcome: { kind: 'done', value: s.done, tail: Buffer.concat([s.done.rest, input.subarray(edges[i + 1])]) }, sent: sent.join('') };
    }
    return { outcome: { kind: 'need' }, sent: sent.join('') };
  } catch (e) {
    if (!(e instanceof DuocellError)) throw e;
    if (!/^DC_SOCKS_[A-Z_]+$/.test(e.code)) throw new Error(`fault ${e.code} is not a SOCKS code: ${input.toString('hex')}`);
    return { outcome: { kind: 'fault', code: e.code, reply: e.detail.socksReply, outcome: e.detail.outcome }, sent: sent.join('') };
  }
}

export async function fuzz(iterations: number, seed = 1): Promise<{ iterations: number; rejected: Record<string, number>; connected: number }> {
  const r = prng(seed);
  const rejected: Record<string, number> = {};
  let connected = 0;
  for (let i = 0; i < iterations; i++) {
    const auth = r() < 0.5;
    const k = r();
    const input = k < 0.5 ? answer(r, auth) : k < 0.9 ? mutate(r, answer(r, auth)) : bytes(r, int(r, 40));
    const whole = run(auth, input, []);
    const cut = run(auth, input, Array.from({ length: 1 + int(r, 4) }, () => int(r, input.length + 1)));
    const a = whole.outcome;
    const b = cut.outcome;
    if (a.kind !== b.kind) throw new Error(`cut changed ${a.kind} to ${b.kind}: ${input.toString('hex')}`);
    // (A fault drops what the same feed would have sent: only the outcome counts then.)
    if (a.kind !== 'fault' && whole.sent !== cut.sent) throw new Error(`cut changed what was sent: ${input.toString('hex')}`);
    if (a.kind === 'fault' && b.kind === 'fault') {
      if (a.code !== b.code) throw new Error(`cut changed ${a.code} to ${b.code}: ${input.toString('hex')}`);
      if (a.code !== 'DC_SOCKS_PEER_AUTH' && a.reply !== undefined && typeof a.outcome !== 'string') throw new Error(`failure reply without an outcome: ${input.toString('hex')}`);
      rejected[a.code] = (rejected[a.code] ?? 0) + 1;
    } else if (a.kind === 'done' && b.kind === 'done') {
      if (!a.tail.equals(b.tail) || JSON.stringify(a.value.bound) !== JSON.stringify(b.value.bound)) throw new Error(`cut changed the result: ${input.toString('hex')}`);
      if (!input.subarray(input.length - a.tail.length).equals(a.tail)) throw new Error(`the bytes behind the reply are not the input's tail: ${input.toString('hex')}`);
      connected++;
    } else rejected['need-more'] = (rejected['need-more'] ?? 0) + 1;
    if (i % 5000 === 4999) await new Promise((res) => setImmediate(res));
  }
  return { iterations, rejected, connected };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const n = Number(process.argv[2] ?? 1_000_000);
  const t0 = Date.now();
  const res = await fuzz(n, Number(process.argv[3] ?? 1));
  console.log(JSON.stringify({ ...res, ms: Date.now() - t0 }));
}

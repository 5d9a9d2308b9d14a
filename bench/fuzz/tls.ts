import { pathToFileURL } from 'node:url';
import { EXT_ECH, MAX_PREFIX, parseClientHello, type ClientHelloResult } from '../../src/protocols/tls/index.js';
import { prng } from './convert.js';

/**
 * Fuzz the ClientHello server-name parser: well-formed ClientHellos built here (random
 * extensions, names, ECH, framed in random record sizes), mutated, and noise. Checked on every
 * input: the parser returns (never throws) one of its kinds with a DC_TLS_ code; a well-formed
 * hello gives back the name it was built with; any prefix answers "need more than I have" or
 * the same verdict as the whole; `need` never exceeds MAX_PREFIX. Anything else is thrown.
 */

const int = (r: () => number, n: number): number => Math.floor(r() * n);
const bytes = (r: () => number, n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(r, 256)));
const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);

function name(r: () => number): string {
  const label = (): string => Array.from({ length: 1 + int(r, 12) }, () => 'abcxyzABC019-_'[int(r, 14)]).join('');
  return Array.from({ length: 1 + int(r, 4) }, label).join('.');
}

export function buildHello(r: () => number): { wire: Buffer; serverName: string | null; ech: boolean } {
  const sn = r() < 0.85 ? name(r) : null;
  const ech = r() < 0.2;
  const exts: Buffer[] = [];
  const used = new Set<number>([0, EXT_ECH]);
  for (let i = int(r, 6); i > 0; i--) {
    const type = int(r, 65536);
    if (used.has(type)) continue;
    used.add(type);
    const data = bytes(r, int(r, 40));
    exts.push(Buffer.concat([u16(type), u16(data.length), data]));
  }
  if (sn !== null) {
    const host = Buffer.from(sn, 'latin1');
    const entry = Buffer.concat([Buffer.from([0]), u16(host.length), host]);
    const list = Buffer.concat([u16(entry.length), entry]);
    exts.splice(int(r, exts.length + 1), 0, Buffer.concat([u16(0), u16(list.length), list]));
  }
  if (ech) {
    const data = bytes(r, 1 + int(r, 60));
    exts.splice(int(r, exts.length + 1), 0, Buffer.concat([u16(EXT_ECH), u16(data.length), data]));
  }
  const sid = bytes(r, [0, 32][int(r, 2)]!);
  const suites = bytes(r, 2 * (1 + int(r, 20)));
  const noExt = sn === null && !ech && exts.length === 0 && r() < 0.5;
  const extBlock = Buffer.concat(exts);
  const body = Buffer.concat([
    Buffer.from([3, 3]),
    bytes(r, 32),
    Buffer.from([sid.length]),
    sid,
    u16(suites.length),
    suites,
    Buffer.from([1, 0]),
    ...(noExt ? [] : [u16(extBlock.length), extBlock]),
  ]);
  const msg = Buffer.concat([Buffer.from([1, 0, body.length >> 8, body.length & 0xff]), body]);
  const size = r() < 0.6 ? msg.length : 1 + int(r, Math.max(1, msg.length));
  const recs: Buffer[] = [];
  for (let i = 0; i < msg.length; i += size) {
    const frag = msg.subarray(i, i + size);
    recs.push(Buffer.from([22, 3, 1 + int(r, 3), frag.length >> 8, frag.length & 0xff]), frag);
  }
  if (r() < 0.3) recs.push(bytes(r, int(r, 30))); // whatever the client sends next
  return { wire: Buffer.concat(recs), serverName: sn === null ? null : sn.toLowerCase(), ech };
}

function mutate(r: () => number, b: Buffer): Buffer {
  let x = Buffer.from(b);
  const k = r();
  if (k < 0.35 && x.length > 0) x[int(r, x.length)] ^= 1 << int(r, 8);
  else if (k < 0.55 && x.length > 0) x[int(r, x.length)] = int(r, 256);
  else if (k < 0.7) x = x.subarray(0, int(r, x.length + 1));
  else if (k < 0.8 && x.length > 9) x[3 + int(r, 7)] = [0, 0xff, 0x40, int(r, 256)][int(r, 4)]!; // record / handshake lengths
  else if (k < 0.9) x = Buffer.concat([x.subarray(0, int(r, x.length + 1)), bytes(r, int(r, 16)), x.subarray(int(r, x.length + 1))]);
  else x = Buffer.concat([x, bytes(r, int(r, 8))]);
  return x;
}

const CODES = new Set(['DC_TLS_NOT_CLIENT_HELLO', 'DC_TLS_MALFORMED', 'DC_TLS_TOO_LARGE', 'DC_TLS_SERVER_NAME']);

function same(a: ClientHelloResult, b: ClientHelloResult): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'hello' && b.kind === 'hello') return a.serverName === b.serverName && a.ech === b.ech && a.consumed === b.consumed;
  if (a.kind === 'need-more') return true;
  return 'code' in a && 'code' in b && a.code === b.code;
}

export async function fuzz(iterations: number, seed = 1): Promise<{ iterations: number; verdicts: Record<string, number> }> {
  const r = prng(seed);
  const verdicts: Record<string, number> = {};
  for (let i = 0; i < iterations; i++) {
    const k = r();
    const built = buildHello(r);
    const input = k < 0.3 ? built.wire : k < 0.9 ? mutate(r, built.wire) : bytes(r, int(r, 60));
    const v = parseClientHello(input);
    const key = v.kind === 'hello' ? 'hello' : v.kind === 'need-more' ? 'need-more' : v.code;
    if (v.kind !== 'hello' && v.kind !== 'need-more' && !CODES.has(v.code)) throw new Error(`unknown code ${v.code}`);
    if (v.kind === 'need-more' && (v.need <= input.length || v.need > MAX_PREFIX)) throw new Error(`need ${v.need} for ${input.length} octets: ${input.toString('hex')}`);
    if (v.kind === 'hello' && (v.consumed > input.length || v.consumed < 9)) throw new Error(`consumed ${v.consumed} of ${input.length}`);
    if (k < 0.3) {
      const whole = built.wire;
      if (v.kind !== 'hello' || v.serverName !== built.serverName || v.ech !== built.ech) {
        const fine = v.kind === 'invalid' && v.code === 'DC_TLS_TOO_LARGE'; // many tiny records
        if (!fine) throw new Error(`well-formed ${whole.toString('hex')} gave ${JSON.stringify(v)}`);
      }
    }
    const cut = int(r, input.length + 1);
    if (cut < input.length) {
      const p = parseClientHello(input.subarray(0, cut));
      if (p.kind === 'need-more' ? p.need <= cut : !same(p, v)) throw new Error(`prefix ${cut} of ${input.toString('hex')}: ${JSON.stringify(p)} vs ${JSON.stringify(v)}`);
    }
    verdicts[key] = (verdicts[key] ?? 0) + 1;
    if (i % 5000 === 4999) await new Promise((res) => setImmediate(res));
  }
  return { iterations, verdicts };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const n = Number(process.argv[2] ?? 1_000_000);
  const t0 = Date.now();
  const res = await fuzz(n, Number(process.argv[3] ?? 1));
  console.log(JSON.stringify({ ...res, ms: Date.now() - t0 }));
}

import { PassThrough } from 'node:stream';
import type net from 'node:net';
import { pathToFileURL } from 'node:url';
import { DuocellError } from '../../src/core/errors.js';
import { ConvertErrorCode, encodeConvertError, encodeConvertMessage, parseConvertMessage, type ConvertTlv } from '../../src/protocols/convert/index.js';
import { checkReply, readReplyMessage } from '../../src/services/proxy/convert-client.js';
import { prng } from './convert.js';

/**
 * Fuzz the Convert client's reply reader (services/proxy/convert-client.ts readReplyMessage +
 * checkReply: the downstream of the 0-RTT data path) with what a converter could send: replies
 * (Extended TCP Header, Supported TCP Extensions, every Error code) with random server bytes
 * behind them, mutated ones and noise, written to a stream cut at random places, then ended.
 * Checked on every input: the outcome is the one the codec gives for the whole input (a go, an
 * Error TLV as DC_CONVERT_PEER_ERROR with its code, a DC_CONVERT_* fault, or DC_CONVERT_TRUNCATED
 * for an input the codec still waits on); on a go the bytes behind the reply plus what the stream
 * still holds are exactly the input's tail. Anything else is a bug and is thrown.
 */

const int = (r: () => number, n: number): number => Math.floor(r() * n);
const bytes = (r: () => number, n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(r, 256)));
const ERRORS: number[] = Object.values(ConvertErrorCode).filter((v) => typeof v === 'number');

function reply(r: () => number): Buffer {
  const k = r();
  if (k < 0.35) return encodeConvertError(ERRORS[int(r, ERRORS.length)]!, { delaySeconds: int(r, 256), icmpCode: int(r, 256), kinds: [3 + int(r, 253)], received: bytes(r, int(r, 40)) });
  const tlvs: ConvertTlv[] = [{ type: 'extended-tcp-header', tcpOptions: bytes(r, int(r, 3) * 4) }];
  if (r() < 0.4) tlvs.push({ type: 'supported-tcp-extensions', kinds: Array.from({ length: int(r, 5) }, () => 3 + int(r, 253)) });
  return encodeConvertMessage(tlvs);
}

function mutate(r: () => number, b: Buffer): Buffer {
  const x = Buffer.from(b);
  const k = r();
  if (k < 0.4 && x.length > 0) x[int(r, x.length)] ^= 1 << int(r, 8);
  else if (k < 0.7 && x.length > 0) x[int(r, x.length)] = int(r, 256);
  else return x.subarray(0, int(r, x.length + 1));
  return x;
}

type Outcome = { kind: 'go'; tail: Buffer } | { kind: 'fault'; code: string; convertError?: unknown };

/** What the codec alone says of the whole input. */
function expected(input: Buffer): Outcome {
  try {
    const p = parseConvertMessage(input);
    if ('need' in p) return { kind: 'fault', code: 'DC_CONVERT_TRUNCATED' };
    checkReply(p.message);
    return { kind: 'go', tail: input.subarray(p.consumed) };
  } catch (e) {
    if (!(e instanceof DuocellError)) throw e;
    return { kind: 'fault', code: e.code, convertError: e.detail.convertError };
  }
}

async function viaStream(input: Buffer, cuts: number[]): Promise<Outcome> {
  const s = new PassThrough();
  const edges = [0, ...cuts.filter((c) => c > 0 && c < input.length).sort((a, b) => a - b), input.length];
  const feeding = (async () => {
    for (let i = 0; i + 1 < edges.length; i++) {
      if (edges[i] === edges[i + 1]) continue;
      s.write(input.subarray(edges[i], edges[i + 1]));
      await new Promise((res) => setImmediate(res));
    }
    s.end();
  })();
  try {
    const { msg, rest } = await readReplyMessage(s as unknown as net.Socket, 5000, new AbortController().signal);
    checkReply(msg);
    await feeding;
    const later: Buffer[] = [rest];
    for (let c = s.read() as Buffer | null; c !== null; c = s.read() as Buffer | null) later.push(c);
    return { kind: 'go', tail: Buffer.concat(later) };
  } catch (e) {
    await feeding;
    if (!(e instanceof DuocellError)) throw e;
    return { kind: 'fault', code: e.code, convertError: e.detail.convertError };
  }
}

export async function fuzz(iterations: number, seed = 1): Promise<{ iterations: number; go: number; outcomes: Record<string, number> }> {
  const r = prng(seed);
  const outcomes: Record<string, number> = {};
  let go = 0;
  for (let i = 0; i < iterations; i++) {
    const k = r();
    const base = Buffer.concat([reply(r), bytes(r, int(r, 48))]);
    const input = k < 0.45 ? base : k < 0.9 ? mutate(r, base) : bytes(r, int(r, 64));
    const cuts = Array.from({ length: int(r, 4) }, () => int(r, input.length + 1));
    const want = expected(input);
    const got = await viaStream(input, cuts);
    const same =
      want.kind === 'go'
        ? got.kind === 'go' && got.tail.equals(want.tail)
        : got.kind === 'fault' && got.code === want.code && got.convertError === want.convertError;
    if (!same) throw new Error(`convert reply fuzz: input ${input.toString('hex')} cut at ${cuts.join(',')}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
    if (got.kind === 'go') go++;
    const key = got.kind === 'go' ? 'go' : `${got.code}${got.convertError === undefined ? '' : `:${String(got.convertError)}`}`;
    outcomes[key] = (outcomes[key] ?? 0) + 1;
  }
  return { iterations, go, outcomes };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const n = Number(process.argv[2] ?? 10_000);
  const seed = Number(process.argv[3] ?? 1);
  const t0 = Date.now();
  void fuzz(n, seed).then((res) => process.stdout.write(`${JSON.stringify(res)} in ${Date.now() - t0} ms\n`));
}

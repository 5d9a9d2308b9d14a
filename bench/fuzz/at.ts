import { pathToFileURL } from 'node:url';
import { DuocellError } from '../../src/core/errors.js';
import { AtFramer } from '../../src/protocols/at/framer.js';
import {
  parseCesq,
  parseCgdcont,
  parseCgpaddr,
  parseCops,
  parseCpin,
  parseCsq,
  parseHcsq,
  parseQengServingCell,
  parseRegistration,
  parseSysinfoex,
} from '../../src/protocols/at/parsers.js';
import { parseCpsi, parseGstatus, parseQeng, parseRfsts } from '../../src/protocols/at/cells.js';
import { AT_PARSE_REASONS, type AtResult } from '../../src/protocols/at/result.js';
import { decodeGprsTimer2, decodeGprsTimer3, parseCereg, parseCesqExtended, parseCgpaddrAll, parseCpinState } from '../../src/protocols/at/threegpp.js';
import { FORMS } from '../../test/fixtures/at-vendor-forms.js';

/**
 * Fuzz the AT codec: real replies (EC25, Huawei, 27.007 forms), mutated, and noise, through
 * every parser and through one long-lived framer that is never reset (a modem streaming
 * garbage forever). Checked on every input: a parser returns or throws a DuocellError with a
 * code; the framer's buffer stays ≤ maxLine and a reply keeps ≤ maxLines lines; no input takes
 * more than 5 s (a hang guard: no pathological regex). Anything else is thrown as a bug.
 * The non-throwing parsers (threegpp.ts, cells.ts: vendor serving cell, +CEREG n=3/4, +CESQ
 * with NR, +CGPADDR, +CPIN) must return, never throw: an error result with DC_AT_PARSE and a
 * listed reason, or a value whose every number is finite and no field is undefined. About 2 %
 * of inputs are 10,000-character lines (alone, or in the middle of a real reply).
 *
 *   node --import <ts loader> bench/fuzz/at.ts [iterations=1000000] [seed=1]
 */

export function rng(seed: number): () => number {
  let s = (seed >>> 0) || 0x9e3779b9;
  return () => {
    // xorshift32
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

const CORPUS = [
  '+CREG: 1,3', '+CREG: 2,1,"CE00","01CEAD8F"', '+CREG: 2,1,000B,2816, B, C2816', '+CGREG: 1,"1422","00000142",3,"00"',
  '+CEREG: 2,1, 1F00, 20 ,79D903 ,7', '+C5GREG: 2,1,1F00,79D903,11,6,ABCDEF', '+CEREG: 1,"00C3","0000D8FA",7',
  '+CPIN: SIM PIN', '+CPIN: READY', '+CME ERROR: 10', '+CSQ: 20,99', '+CESQ: 99,99,255,255,20,80', '+COPS: 1,0,"CHINA MOBILE",7',
  '+CGDCONT: 1,"IPV4V6","internet","0.0.0.0",0,0,0,0', '+CGPADDR: 1,"10.1.2.3","32.1.13.184.0.0.0.0.0.0.0.0.0.0.0.1"',
  '+QENG: "servingcell","NOCONN","LTE","FDD",262,01,1A2D001,123,1300,3,5,5,A1B2,-95,-11,-65,120,9,-,30',
  '+QENG: "servingcell","NOCONN","WCDMA",460,01,A4E0,5B3E07,10713,289,1,-85,-6,-,-,-,-,-',
  '^SYSINFOEX:2,4,5,1,,3,"WCDMA",41,"HSPA+"', '^HCSQ: "LTE",30,19,66,0', 'OK', 'ERROR', 'NO CARRIER', 'RING', '+QIND: "csq",20,99', 'RDY',
  // every vendor / 3GPP form of test/fixtures/at-vendor-forms.ts, and the PSM timer octets alone
  ...FORMS.map((f) => f.text),
  '"00100001"', '00111000', '11100000', '"01011111"', '+CSQ: 31,0', '+CSQ: 99,99', '+CSQ: 7,3', '+CSQ: 12,99',
];

const RESULT_PARSERS: [string, (s: string) => AtResult<unknown>][] = [
  ['gstatus', parseGstatus],
  ['cpsi', parseCpsi],
  ['rfsts', parseRfsts],
  ['qeng5g', (s) => parseQeng(s)],
  ['cereg', (s) => parseCereg(s)],
  ['cesq9', parseCesqExtended],
  ['cgpaddr-all', parseCgpaddrAll],
  ['cpin-state', parseCpinState],
  ['timer2', decodeGprsTimer2],
  ['timer3', decodeGprsTimer3],
];

/** Every number finite, no property present with the value undefined. */
function wellFormed(v: unknown): boolean {
  if (typeof v === 'number') return Number.isFinite(v);
  if (v === undefined) return false;
  if (v !== null && typeof v === 'object') return Object.values(v).every(wellFormed);
  return true;
}

const PARSERS: [string, (s: string) => unknown][] = [
  ['registration', parseRegistration],
  ['cpin', (s) => parseCpin(s)],
  ['cpin-bare', (s) => parseCpin(s, false)],
  ['csq', parseCsq],
  ['cesq', parseCesq],
  ['cops', parseCops],
  ['cgdcont', parseCgdcont],
  ['cgpaddr', parseCgpaddr],
  ['qeng', parseQengServingCell],
  ['sysinfoex', parseSysinfoex],
  ['hcsq', parseHcsq],
];

const int = (r: () => number, n: number): number => Math.floor(r() * n);
const ALPHABET = '0123456789ABCDEFabcdef,"+:^ \r\n-.=?SIMPUKCREG';

function mutate(r: () => number, s: string): string {
  let x = s;
  const n = 1 + int(r, 3);
  for (let i = 0; i < n; i++) {
    const k = r();
    const at = int(r, x.length + 1);
    if (k < 0.25) x = x.slice(0, at) + ALPHABET[int(r, ALPHABET.length)] + x.slice(at);
    else if (k < 0.45) x = x.slice(0, at) + x.slice(at + 1 + int(r, 4));
    else if (k < 0.6) x = x.slice(0, at);
    else if (k < 0.75) x = x.slice(0, at) + ','.repeat(1 + int(r, 8)) + x.slice(at);
    else if (k < 0.85) x = x.slice(0, at) + String(int(r, 100000)) + x.slice(at);
    else if (k < 0.95) x = x + CORPUS[int(r, CORPUS.length)]!;
    else x = x.slice(0, at) + String.fromCharCode(int(r, 256)) + x.slice(at);
  }
  return x;
}

function noise(r: () => number): string {
  const n = int(r, 200);
  let s = '';
  for (let i = 0; i < n; i++) s += r() < 0.7 ? ALPHABET[int(r, ALPHABET.length)] : String.fromCharCode(int(r, 256));
  return s;
}

export async function fuzz(iterations: number, seed = 1): Promise<{ iterations: number; rejected: Record<string, number> }> {
  const r = rng(seed);
  const rejected: Record<string, number> = {};
  const count = (k: string): void => {
    rejected[k] = (rejected[k] ?? 0) + 1;
  };
  const maxLine = 512;
  const maxLines = 64;
  const framer = new AtFramer({ maxLine, maxLines }); // one framer for the whole run, never reset
  for (let i = 0; i < iterations; i++) {
    const k = r();
    let input = k < 0.15 ? CORPUS[int(r, CORPUS.length)]! : k < 0.85 ? mutate(r, CORPUS[int(r, CORPUS.length)]!) : noise(r);
    if (r() < 0.02) {
      // a 10,000-character line: alone, or inside a real reply
      const long = (input.replace(/[\r\n]/g, '') || 'A').repeat(Math.ceil(10_000 / Math.max(1, input.length))).slice(0, 10_000);
      input = r() < 0.5 ? long : `${CORPUS[int(r, CORPUS.length)]!}\r\n${long}\r\nOK`;
      count('long-line');
    }
    const t0 = Date.now();
    for (const [name, p] of RESULT_PARSERS) {
      let res: AtResult<unknown>;
      try {
        res = p(input);
      } catch (e) {
        throw new Error(`parser ${name} threw on ${JSON.stringify(input.slice(0, 200))}: ${String(e)}`);
      }
      if (res.ok) {
        if (!wellFormed(res.value)) throw new Error(`parser ${name} returned a NaN/undefined field on ${JSON.stringify(input.slice(0, 200))}: ${JSON.stringify(res.value)}`);
        count(`ok:${name}`);
      } else {
        if (res.code !== 'DC_AT_PARSE' || !(AT_PARSE_REASONS as readonly string[]).includes(res.reason) || typeof res.message !== 'string')
          throw new Error(`parser ${name} returned a malformed error: ${JSON.stringify(res)}`);
        count(res.code);
        count(`reason:${res.reason}`);
      }
    }
    for (const [name, p] of PARSERS) {
      try {
        p(input);
        count(`ok:${name}`);
      } catch (e) {
        if (!(e instanceof DuocellError)) throw new Error(`parser ${name} threw a non-DuocellError on ${JSON.stringify(input)}: ${String(e)}`);
        count(e.code);
      }
    }
    if (r() < 0.3) framer.begin(r() < 0.5 ? 'AT+CREG?' : 'AT+CSQ');
    let off = 0;
    while (off < input.length) {
      const n = 1 + int(r, 64);
      for (const ev of framer.feed(Buffer.from(input.slice(off, off + n), 'latin1'))) {
        if (ev.type === 'response' && ev.response.lines.length > maxLines) throw new Error('framer kept more lines than maxLines');
        if (ev.type === 'overflow') count('framer:overflow');
        else count(`framer:${ev.type}`);
      }
      off += n;
      if (framer.buffered > maxLine) throw new Error(`framer buffer grew to ${framer.buffered}`);
    }
    if (r() < 0.01) {
      // a burst of garbage without any line terminator
      for (let j = 0; j < 50; j++) framer.feed(Buffer.alloc(100, 0x41 + int(r, 26)));
      if (framer.buffered > maxLine) throw new Error(`framer buffer grew to ${framer.buffered}`);
    }
    if (r() < 0.05) framer.feed('\r\n');
    const ms = Date.now() - t0;
    if (ms > 5000) throw new Error(`input took ${ms} ms: ${JSON.stringify(input)}`);
  }
  return { iterations, rejected };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const n = Number(process.argv[2] ?? 1_000_000);
  const t0 = Date.now();
  const res = await fuzz(n, Number(process.argv[3] ?? 1));
  console.log(JSON.stringify({ ...res, ms: Date.now() - t0, heapMiB: Math.round(process.memoryUsage().heapUsed / 1048576) }));
}

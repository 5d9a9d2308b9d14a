import { DuocellError } from '../../core/errors.js';

/**
 * The result type of the non-throwing AT parsers (threegpp.ts, cells.ts) and the small,
 * allocation-light field readers they share. Pure; no regular expression here can backtrack
 * (every pattern is anchored and linear), so a 10,000-character line costs linear time.
 *
 * A parser never throws on what a modem sends: it returns `{ ok: true, value }` or an
 * `AtParseError` with the stable code DC_AT_PARSE, the command it was parsing and a `reason`
 * from a closed list (also stable: tests and logs key on it). Numbers in a value are always
 * finite: a field that is absent, '-', '---' or not a number is left out, never NaN.
 */

export const AT_PARSE_REASONS = [
  /** no line carried the command's prefix (or the text was empty) */
  'no-prefix',
  /** a line longer than MAX_AT_LINE, or more text than MAX_AT_TEXT */
  'too-long',
  /** the number of fields matches none of the documented forms */
  'field-count',
  /** a required field is not a number / not the documented token */
  'bad-field',
  /** a number outside the documented range */
  'out-of-range',
  /** a token (system mode, state, RAT) that the documentation does not list */
  'unknown-form',
] as const;
export type AtParseReason = (typeof AT_PARSE_REASONS)[number];

export interface AtParseError {
  readonly ok: false;
  readonly code: 'DC_AT_PARSE';
  /** The command whose reply was parsed, e.g. '+CEREG', '!GSTATUS'. */
  readonly command: string;
  readonly reason: AtParseReason;
  readonly message: string;
}

export interface AtParsed<T> {
  readonly ok: true;
  readonly value: T;
}

export type AtResult<T> = AtParsed<T> | AtParseError;

/** Longest line a parser looks at (a real !GSTATUS line is < 100; the framer caps lines too). */
export const MAX_AT_LINE = 1024;
/** Most text a parser looks at (a multi-line !GSTATUS reply is ~1.5 KiB). */
export const MAX_AT_TEXT = 16384;

export function ok<T>(value: T): AtParsed<T> {
  return { ok: true, value };
}

export function parseError(command: string, reason: AtParseReason, what: string, text: string): AtParseError {
  return { ok: false, code: 'DC_AT_PARSE', command, reason, message: `${command}: ${what}: ${JSON.stringify(text.slice(0, 120))}` };
}

/** The value, or a DuocellError(DC_AT_PARSE) thrown — for callers that prefer exceptions. */
export function unwrap<T>(r: AtResult<T>): T {
  if (r.ok) return r.value;
  throw new DuocellError('DC_AT_PARSE', r.message, { origin: 'local', command: r.command, reason: r.reason });
}

/**
 * Non-empty trimmed lines of a reply, or an error when the text or a line is too long. Both
 * CR and LF end a line (modems mix them).
 */
export function replyLines(text: string, command: string): AtResult<string[]> {
  if (typeof text !== 'string') return parseError(command, 'no-prefix', 'not text', '');
  if (text.length > MAX_AT_TEXT) return parseError(command, 'too-long', `reply of ${text.length} characters`, text);
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i === text.length ? 10 : text.charCodeAt(i);
    if (c !== 10 && c !== 13) continue;
    if (i - start > MAX_AT_LINE) return parseError(command, 'too-long', `line of ${i - start} characters`, text.slice(start));
    const l = text.slice(start, i).trim();
    if (l.length > 0) out.push(l);
    start = i + 1;
  }
  return ok(out);
}

/**
 * The parameters after `prefix` (case-insensitive, e.g. '+CEREG:') on every line that has it,
 * in order; lines without it are skipped (echo, OK, URCs that slipped in).
 */
export function prefixed(lines: readonly string[], prefix: string): string[] {
  const p = prefix.toUpperCase();
  const out: string[] = [];
  for (const l of lines) if (l.length >= p.length && l.slice(0, p.length).toUpperCase() === p) out.push(l.slice(p.length).trim());
  return out;
}

/** Split on commas outside double quotes; fields are trimmed. Linear. */
export function fields(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let q = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch === '"') q = !q;
    if (ch === ',' && !q) {
      out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  out.push(cur.trim());
  return out;
}

/** Strip one pair of surrounding double quotes (and spaces). */
export function unq(s: string | undefined): string {
  const t = (s ?? '').trim();
  return t.length >= 2 && t.charCodeAt(0) === 34 && t.charCodeAt(t.length - 1) === 34 ? t.slice(1, -1).trim() : t;
}

/** A decimal integer field (optional sign), quotes allowed; undefined for '', '-', '---', garbage. */
export function int(s: string | undefined): number | undefined {
  const t = unq(s);
  if (t.length === 0 || t.length > 12) return undefined;
  let i = t.charCodeAt(0) === 45 || t.charCodeAt(0) === 43 ? 1 : 0;
  if (i === t.length) return undefined;
  for (; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c < 48 || c > 57) return undefined;
  }
  const n = Number(t);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** A decimal number with an optional fraction ('-9.8', '25.4'); undefined otherwise. */
export function num(s: string | undefined): number | undefined {
  const t = unq(s);
  if (t.length === 0 || t.length > 16) return undefined;
  let i = t.charCodeAt(0) === 45 || t.charCodeAt(0) === 43 ? 1 : 0;
  let digits = 0;
  let dot = false;
  for (; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c === 46 && !dot) dot = true;
    else if (c >= 48 && c <= 57) digits++;
    else return undefined;
  }
  if (digits === 0) return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

/** A hexadecimal field (quotes and an optional 0x allowed, ≤ 13 digits); undefined otherwise. */
export function hex(s: string | undefined): number | undefined {
  let t = unq(s);
  if (t.length > 2 && t[0] === '0' && (t[1] === 'x' || t[1] === 'X')) t = t.slice(2);
  if (t.length === 0 || t.length > 13) return undefined;
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i) | 0x20;
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return undefined;
  }
  return parseInt(t, 16);
}

/** `{ [k]: v }` when v is defined, else `{}` — so optional fields stay absent, never undefined/NaN. */
export function opt<K extends string, V>(k: K, v: V | undefined): { [P in K]?: V } {
  return (v === undefined || (typeof v === 'number' && !Number.isFinite(v)) ? {} : { [k]: v }) as { [P in K]?: V };
}

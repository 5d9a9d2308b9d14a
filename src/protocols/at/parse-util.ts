import { DuocellError } from '../../core/errors.js';

/** Field helpers shared by the throwing AT parsers (parsers.ts, pdp-parsers.ts, vendor-parsers.ts). */

export function fail(what: string, text: string): never {
  throw new DuocellError('DC_AT_PARSE', `${what}: cannot parse ${JSON.stringify(text.slice(0, 120))}`, { origin: 'local' });
}

/** Split a parameter list on commas outside double quotes. Fields keep surrounding spaces. */
export function splitFields(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let q = false;
  for (const ch of s) {
    if (ch === '"') q = !q;
    if (ch === ',' && !q) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

export function unquote(s: string): string {
  const t = s.trim();
  return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1) : t;
}

export function lines(text: string): string[] {
  return text.split(/[\r\n]+/).map((l) => l.trim()).filter((l) => l.length > 0);
}

/** The parameters after `prefix` on the first line that carries it. */
export function afterPrefix(text: string, prefix: string, what: string): string {
  for (const l of lines(text)) if (l.toUpperCase().startsWith(prefix.toUpperCase())) return l.slice(prefix.length).trim();
  return fail(what, text);
}

export function dec(s: string | undefined, what: string, text: string): number {
  const t = (s ?? '').trim();
  if (!/^-?\d{1,10}$/.test(t)) fail(what, text);
  return Number(t);
}

/** Leading hex digits of a field (quotes and spaces ignored), 0 when none — as ModemManager. */
export function hexLead(s: string | undefined): number {
  const m = /^[0-9a-fA-F]{1,8}/.exec(unquote(s ?? ''));
  return m ? parseInt(m[0], 16) : 0;
}

export function opt<K extends string>(k: K, v: number | undefined): { [P in K]?: number } {
  return (v === undefined ? {} : { [k]: v }) as { [P in K]?: number };
}

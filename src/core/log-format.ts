/**
 * One pino JSON line → one line a person reads on a terminal:
 *
 *   17:14:30.466 WARN  duocell:proxy  session refused  code=DC_SOCKS_TRUNCATED listener=socks5-1080-0
 *
 * time (UTC, as logged), level, component (ns), message, then the other fields as key=value
 * (strings bare when they hold no space or quote, everything else as JSON). pid is left out.
 * A line that is not a JSON object is returned unchanged. Pure: no I/O.
 */

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const SKIP = new Set(['time', 'level', 'ns', 'msg', 'pid', 'hostname']);

function value(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}

export function formatLogLine(line: string, opts: { color?: boolean } = {}): string {
  let o: Record<string, unknown>;
  try {
    const p = JSON.parse(line) as unknown;
    if (p === null || typeof p !== 'object' || Array.isArray(p)) return line;
    o = p as Record<string, unknown>;
  } catch {
    return line;
  }
  const t = typeof o.time === 'string' ? (/T(\d\d:\d\d:\d\d(?:\.\d+)?)/.exec(o.time)?.[1] ?? o.time) : typeof o.time === 'number' ? new Date(o.time).toISOString().slice(11, 23) : '';
  const lv = typeof o.level === 'number' ? (LEVELS[o.level] ?? String(o.level)) : String(o.level ?? '');
  const level = opts.color === true ? paint(lv) : lv.padEnd(5);
  const parts = [t, level, typeof o.ns === 'string' ? o.ns : '-', typeof o.msg === 'string' ? o.msg : ''];
  const rest: string[] = [];
  for (const [k, v] of Object.entries(o)) if (!SKIP.has(k)) rest.push(`${k}=${value(v)}`);
  return `${parts.join(' ')}${rest.length > 0 ? `  ${rest.join(' ')}` : ''}\n`;
}

function paint(lv: string): string {
  const c = lv === 'ERROR' || lv === 'FATAL' ? 31 : lv === 'WARN' ? 33 : lv === 'INFO' ? 32 : 90;
  return `\u001b[${c}m${lv.padEnd(5)}\u001b[0m`;
}

import type { Logger } from './logger.js';

/**
 * Repeated log lines, rate-limited per code: the first line of a code in a window is written,
 * the rest are only counted, and when the window closes one summary line says how many were
 * left out ("41 more DC_SOCKS_TRUNCATED in 60 s"). Counting elsewhere (metrics) is untouched:
 * only the log is thinned.
 *
 *   hit(code) ── window of code open? ──no──► write the line, open a window of windowMs
 *                        │yes
 *                        ▼
 *                 count it; at the window's end (timer, unref'd) ─► summary line if count > 0
 */

export interface LogLimiterOptions {
  log: Pick<Logger, 'warn' | 'info' | 'error'>;
  /** Window per code (default 60 s). */
  windowMs?: number;
  now?: () => number;
  /** Timers (tests): default setTimeout/clearTimeout, unref'd. */
  setTimer?: (fn: () => void, ms: number) => { cancel(): void };
}

interface Window {
  until: number;
  more: number;
  level: 'warn' | 'info' | 'error';
  timer: { cancel(): void } | undefined;
}

function defaultTimer(fn: () => void, ms: number): { cancel(): void } {
  const t = setTimeout(fn, ms);
  t.unref();
  return { cancel: () => clearTimeout(t) };
}

export class LogLimiter {
  readonly #o: Required<Omit<LogLimiterOptions, 'log'>> & Pick<LogLimiterOptions, 'log'>;
  readonly #windows = new Map<string, Window>();

  constructor(o: LogLimiterOptions) {
    this.#o = { windowMs: 60_000, now: Date.now, setTimer: defaultTimer, ...o };
  }

  warn(code: string, fields: Record<string, unknown>, msg: string): boolean {
    return this.#hit('warn', code, fields, msg);
  }

  info(code: string, fields: Record<string, unknown>, msg: string): boolean {
    return this.#hit('info', code, fields, msg);
  }

  error(code: string, fields: Record<string, unknown>, msg: string): boolean {
    return this.#hit('error', code, fields, msg);
  }

  /** Lines left out so far in the open window of `code`. */
  suppressed(code: string): number {
    return this.#windows.get(code)?.more ?? 0;
  }

  /** Write the pending summaries now and forget every window (shutdown, tests). */
  flush(): void {
    for (const code of [...this.#windows.keys()]) this.#close(code);
  }

  /** true when the line was written, false when it was only counted. */
  #hit(level: Window['level'], code: string, fields: Record<string, unknown>, msg: string): boolean {
    const now = this.#o.now();
    const w = this.#windows.get(code);
    if (w !== undefined && now < w.until) {
      w.more++;
      if (w.timer === undefined) w.timer = this.#o.setTimer(() => this.#close(code), Math.max(0, w.until - now));
      return false;
    }
    if (w !== undefined) this.#close(code);
    this.#windows.set(code, { until: now + this.#o.windowMs, more: 0, level, timer: undefined });
    this.#o.log[level]({ ...fields, code }, msg);
    return true;
  }

  #close(code: string): void {
    const w = this.#windows.get(code);
    if (w === undefined) return;
    this.#windows.delete(code);
    w.timer?.cancel();
    if (w.more > 0) {
      const s = Math.round(this.#o.windowMs / 1000);
      this.#o.log[w.level]({ code, suppressed: w.more, windowS: s }, `${w.more} more ${code} in ${s} s`);
    }
  }
}

/**
 * AT line framer and response assembler. Pure: bytes in, events out, no I/O.
 *
 *   bytes ──► line splitter (CR/LF, bounded) ──► classifier ──► AtEvent[]
 *                                                   │
 *                 pending command? ─ yes ─► echo | intermediate | final ─► 'response'
 *                                  └ no ──► URC (known prefix) | stray line ─► 'urc' | 'stray'
 *
 * Final result codes (V.250 / 27.007 / 27.005): OK, CONNECT[ text], ERROR, +CME ERROR: <n|text>,
 * +CMS ERROR: <n|text>, NO CARRIER, BUSY, NO ANSWER, NO DIALTONE.
 * While a command is pending, a line that starts with a known URC prefix is a URC unless it also
 * starts with the prefix the command's reply uses (e.g. `+CREG:` while `AT+CREG?` runs): the
 * same ambiguity every AT stack has; solicited and unsolicited +CREG forms parse alike anyway.
 *
 * Memory is bounded whatever the modem sends: a line longer than `maxLine` is dropped up to its
 * terminator (an 'overflow' event says so), and a reply keeps at most `maxLines` lines.
 */

export type AtFinal = 'OK' | 'CONNECT' | 'ERROR' | 'CME ERROR' | 'CMS ERROR' | 'NO CARRIER' | 'BUSY' | 'NO ANSWER' | 'NO DIALTONE';

export interface AtResponse {
  /** The command line that was sent, without AT prefix stripping (e.g. `AT+CPIN?`). */
  readonly command: string;
  /** Intermediate lines in order (echo removed). */
  readonly lines: string[];
  readonly final: AtFinal;
  /** The text after the final code: the CME/CMS number or text, or CONNECT's text. */
  readonly finalText: string;
  /** CME/CMS error number when the modem gave a numeric one. */
  readonly errorCode?: number;
  /** True when lines were dropped because the reply exceeded maxLines. */
  readonly truncated: boolean;
}

export type AtEvent =
  | { readonly type: 'response'; readonly response: AtResponse }
  | { readonly type: 'urc'; readonly line: string; readonly name: string }
  | { readonly type: 'stray'; readonly line: string }
  | { readonly type: 'echo'; readonly line: string }
  | { readonly type: 'prompt' }
  | { readonly type: 'overflow'; readonly dropped: number };

/** URC prefixes (27.007, Quectel EC2x, Huawei). Matched on the start of a line. */
export const URC_PREFIXES: readonly string[] = [
  '+CREG:', '+CGREG:', '+CEREG:', '+C5GREG:', 'RING', '+CRING:', '+CLIP:', '+CMTI:', '+CMT:', '+CDS:',
  '+CUSD:', '+CGEV:', '+CTZV:', '+CTZE:', '+CIEV:', '+CPIN:', '+CFUN:', '+QIND:', '+QIURC:', '+QUSIM:',
  '+QNETDEVSTATUS:', '+QSTAT:', 'RDY', 'POWERED DOWN', '^HCSQ:', '^RSSI:', '^MODE:', '^SYSINFOEX:', '^SRVST:',
  '^SIMST:', '^NDISSTAT:', '^BOOT:', 'NO CARRIER',
];

const FINAL_BARE = new Set(['OK', 'ERROR', 'NO CARRIER', 'BUSY', 'NO ANSWER', 'NO DIALTONE']);

/** 27.007 §9.2 +CME ERROR numbers a modem manager meets (meaning in words). */
export const CME_ERRORS: Readonly<Record<number, string>> = {
  0: 'phone failure', 3: 'operation not allowed', 4: 'operation not supported', 10: 'SIM not inserted',
  11: 'SIM PIN required', 12: 'SIM PUK required', 13: 'SIM failure', 14: 'SIM busy', 15: 'SIM wrong',
  16: 'incorrect password', 17: 'SIM PIN2 required', 18: 'SIM PUK2 required', 20: 'memory full', 21: 'invalid index',
  22: 'not found', 30: 'no network service', 31: 'network timeout', 32: 'network not allowed - emergency calls only',
  50: 'incorrect parameters', 100: 'unknown', 103: 'illegal MS', 106: 'illegal ME', 107: 'GPRS services not allowed',
  111: 'PLMN not allowed', 112: 'location area not allowed', 113: 'roaming not allowed in this location area',
  132: 'service option not supported', 133: 'requested service option not subscribed', 134: 'service option temporarily out of order',
  148: 'unspecified GPRS error', 149: 'PDP authentication failure',
};

export interface AtFinalParse {
  readonly final: AtFinal;
  readonly text: string;
  readonly code?: number;
}

/** Is this line a final result code? Returns its parse, or undefined. */
export function parseFinal(line: string): AtFinalParse | undefined {
  const l = line.trim();
  if (FINAL_BARE.has(l)) return { final: l as AtFinal, text: '' };
  if (l === 'CONNECT' || l.startsWith('CONNECT ')) return { final: 'CONNECT', text: l.slice(7).trim() };
  const m = /^\+(CME|CMS) ERROR:\s*(.*)$/.exec(l);
  if (m) {
    const text = m[2]!.trim();
    const n = /^\d{1,5}$/.test(text) ? Number(text) : undefined;
    return { final: m[1] === 'CME' ? 'CME ERROR' : 'CMS ERROR', text, ...(n === undefined ? {} : { code: n }) };
  }
  return undefined;
}

/** The URC name of a line (its prefix without ':'), or undefined. */
export function urcName(line: string): string | undefined {
  for (const p of URC_PREFIXES) {
    if (line.startsWith(p)) {
      if (p.endsWith(':')) return p.slice(0, -1);
      // bare words (RING, RDY) must be the whole line or followed by a space
      if (line.length === p.length || line[p.length] === ' ') return p;
    }
  }
  return undefined;
}

export interface AtFramerOptions {
  /** Longest line kept, in bytes (default 1024). */
  readonly maxLine?: number;
  /** Most intermediate lines kept for one reply (default 256). */
  readonly maxLines?: number;
}

interface PendingCommand {
  readonly command: string;
  readonly prefix: string | undefined;
  readonly lines: string[];
  truncated: boolean;
}

/**
 * Feeds bytes, returns events. Call `begin()` right before writing a command; the next final
 * result code completes it. Call `abort()` when the caller gave up on it (timeout).
 */
export class AtFramer {
  readonly #maxLine: number;
  readonly #maxLines: number;
  #buf = '';
  #dropping = false;
  #dropped = 0;
  #pending: PendingCommand | undefined;
  /** Count of lines dropped as too long since creation. */
  overflows = 0;

  constructor(opts: AtFramerOptions = {}) {
    this.#maxLine = opts.maxLine ?? 1024;
    this.#maxLines = opts.maxLines ?? 256;
  }

  /** Bytes held waiting for a line terminator (always ≤ maxLine). */
  get buffered(): number {
    return this.#buf.length;
  }

  get pending(): string | undefined {
    return this.#pending?.command;
  }

  /**
   * A command is about to be written. `prefix` is the response prefix of its intermediate lines
   * (e.g. `+CREG:`); derived from the command when omitted (`AT+CREG?` → `+CREG:`).
   */
  begin(command: string, prefix?: string): void {
    this.#pending = { command, prefix: prefix ?? responsePrefix(command), lines: [], truncated: false };
  }

  abort(): void {
    this.#pending = undefined;
  }

  feed(chunk: Uint8Array | string): AtEvent[] {
    const s = typeof chunk === 'string' ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('latin1');
    const out: AtEvent[] = [];
    let start = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c !== 0x0d && c !== 0x0a) continue;
      this.#append(s.slice(start, i), out);
      start = i + 1;
      this.#endLine(out);
    }
    if (start < s.length) this.#append(s.slice(start), out);
    // SMS-style "> " prompt arrives without a terminator
    if (this.#pending !== undefined && !this.#dropping && this.#buf === '> ') {
      this.#buf = '';
      out.push({ type: 'prompt' });
    }
    return out;
  }

  #append(part: string, out: AtEvent[]): void {
    if (part.length === 0) return;
    if (this.#dropping) {
      this.#dropped += part.length;
      return;
    }
    if (this.#buf.length + part.length > this.#maxLine) {
      this.#dropping = true;
      this.#dropped = this.#buf.length + part.length;
      this.#buf = '';
      this.overflows++;
      void out;
      return;
    }
    this.#buf += part;
  }

  #endLine(out: AtEvent[]): void {
    if (this.#dropping) {
      this.#dropping = false;
      out.push({ type: 'overflow', dropped: this.#dropped });
      this.#dropped = 0;
      return;
    }
    const line = this.#buf;
    this.#buf = '';
    if (line.trim().length === 0) return;
    this.#line(line, out);
  }

  #line(raw: string, out: AtEvent[]): void {
    const line = raw.trim();
    const p = this.#pending;
    if (p === undefined) {
      const name = urcName(line);
      if (name !== undefined) out.push({ type: 'urc', line, name });
      else out.push({ type: 'stray', line });
      return;
    }
    if (line === p.command || (p.lines.length === 0 && line.toUpperCase() === p.command.toUpperCase())) {
      out.push({ type: 'echo', line });
      return;
    }
    const fin = parseFinal(line);
    if (fin !== undefined) {
      this.#pending = undefined;
      out.push({
        type: 'response',
        response: {
          command: p.command,
          lines: p.lines,
          final: fin.final,
          finalText: fin.text,
          ...(fin.code === undefined ? {} : { errorCode: fin.code }),
          truncated: p.truncated,
        },
      });
      return;
    }
    const name = urcName(line);
    if (name !== undefined && !(p.prefix !== undefined && line.startsWith(p.prefix))) {
      out.push({ type: 'urc', line, name });
      return;
    }
    if (p.lines.length >= this.#maxLines) p.truncated = true;
    else p.lines.push(line);
  }
}

/** `AT+CREG?` → `+CREG:`, `AT^SYSINFOEX` → `^SYSINFOEX:`, `AT+QENG="servingcell"` → `+QENG:`. */
export function responsePrefix(command: string): string | undefined {
  const m = /^AT([+^$%#][A-Z0-9]+)/i.exec(command.trim());
  return m ? `${m[1]!.toUpperCase()}:` : undefined;
}

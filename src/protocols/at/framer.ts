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
  | { readonly type: 'overflow'; readonly dropped: number }
  /** Bytes that are not AT text (control or 8-bit bytes) removed from a line; never part of a reply. */
  | { readonly type: 'garbage'; readonly bytes: number; readonly sample: string }
  /** The final result of a command that was given up (expire()): drained, never a later command's. */
  | { readonly type: 'late'; readonly response: AtResponse };

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
  /** read `AT+X?`, test `AT+X=?`, set `AT+X=…`, exec anything else. */
  readonly kind: 'read' | 'test' | 'set' | 'exec';
  readonly lines: string[];
  truncated: boolean;
  /** Given up by the caller: its final result is reported as 'late', its lines dropped. */
  expired: boolean;
}

/** Registration URCs share their prefix with the read command's reply. */
const REGISTRATION = new Set(['+CREG:', '+CGREG:', '+CEREG:', '+C5GREG:']);

function commandKind(command: string): PendingCommand['kind'] {
  const c = command.trim();
  if (/=\?$/.test(c)) return 'test';
  if (/\?$/.test(c)) return 'read';
  if (/^AT[+^$%#][A-Z0-9]+=/i.test(c)) return 'set';
  return 'exec';
}

/**
 * Is a `+CxREG:` line the answer to the pending command, or a URC that arrived in the middle?
 * 27.007 §7.2/§10.1.19: the read command answers `<n>,<stat>[,…]` (two unquoted numbers first);
 * the URC is `<stat>[,<lac/tac>,…]` (one number, then a quoted area code, or nothing). A set
 * command (`AT+CEREG=2`) has no information response at all, and a read answers only once.
 */
function solicitedRegistration(p: PendingCommand, line: string): boolean {
  if (p.kind === 'test') return true;
  if (p.kind !== 'read' || p.lines.some((l) => p.prefix !== undefined && l.startsWith(p.prefix))) return false;
  const fields = line.slice(line.indexOf(':') + 1).split(',').map((f) => f.trim());
  return fields.length >= 2 && /^\d+$/.test(fields[0]!) && /^\d+$/.test(fields[1]!);
}

/**
 * Commands whose information response carries no prefix (27.007 §5: identification; 27.005
 * SMS listings continue with PDU/text lines), so any line is part of the answer.
 */
const BARE_REPLY = /^AT[+](CGMI|CGMM|CGMR|CGSN|CIMI|GMI|GMM|GMR|GSN|CMGL|CMGR|CUSD|CPBR|CPBF|CNUM)\b/i;

/** AT text is printable ASCII (and tab); anything else is line noise. */
const NOT_TEXT = /[^\x20-\x7e\t]/g;

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
    this.#pending = { command, prefix: prefix ?? responsePrefix(command), kind: commandKind(command), lines: [], truncated: false, expired: false };
  }

  abort(): void {
    this.#pending = undefined;
  }

  /**
   * The caller gave up on the pending command (timeout) but its reply may still come: keep
   * consuming that reply so it is never matched to a later command. Its final result is
   * reported as a 'late' event; `begin()` of another command replaces it.
   */
  expire(): void {
    if (this.#pending !== undefined) this.#pending.expired = true;
  }

  /** True while a given-up command's final result is still outstanding. */
  get draining(): boolean {
    return this.#pending?.expired === true;
  }

  /** Bytes of line noise removed since creation. */
  garbage = 0;

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
    let text = raw;
    const p = this.#pending;
    NOT_TEXT.lastIndex = 0;
    if (NOT_TEXT.test(raw)) {
      // Noise glued to a line: keep the text only when what remains is unmistakably AT (a final
      // result code, a URC, the pending command's own prefix); otherwise the whole line is noise.
      const cleaned = raw.replace(NOT_TEXT, '').trim();
      const keep = cleaned.length > 0 && (parseFinal(cleaned) !== undefined || urcName(cleaned) !== undefined || (p?.prefix !== undefined && cleaned.startsWith(p.prefix)));
      text = keep ? cleaned : '';
      const bytes = raw.length - text.length;
      this.garbage += bytes;
      out.push({ type: 'garbage', bytes, sample: Buffer.from(raw.slice(0, 32), 'latin1').toString('hex') });
    }
    const line = text.trim();
    if (line.length === 0) return;
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
        type: p.expired ? 'late' : 'response',
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
    const own = p.prefix !== undefined && line.startsWith(p.prefix) && (!REGISTRATION.has(p.prefix) || solicitedRegistration(p, line));
    if (name !== undefined && !own) {
      out.push({ type: 'urc', line, name });
      return;
    }
    if (!own && p.prefix !== undefined && !BARE_REPLY.test(p.command.trim())) {
      // 27.007 §4.1: a +X command's information responses start with "+X:". Anything else in its
      // reply is an unsolicited line (an unknown URC) or noise, never a line of the answer.
      const m = /^([+^$%#!*][A-Z0-9_]+):/i.exec(line);
      if (m !== null) out.push({ type: 'urc', line, name: m[1]! });
      else {
        this.garbage += line.length;
        out.push({ type: 'garbage', bytes: line.length, sample: Buffer.from(line.slice(0, 32), 'latin1').toString('hex') });
      }
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

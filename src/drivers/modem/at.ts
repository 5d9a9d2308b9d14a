import { EventEmitter } from 'node:events';
import { DuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import { Waiter } from '../../core/waiter.js';
import { AtFramer, CME_ERRORS, type AtResponse } from '../../protocols/at/framer.js';
import type { ModemTransport } from './transport.js';

const log = logger('duocell:modem:at');

export interface AtCommandOptions {
  /** Per-command timeout (default 3 s; the client default can be changed). */
  readonly timeoutMs?: number;
  /** Response prefix of intermediate lines when it cannot be derived from the command. */
  readonly prefix?: string;
  /** Resynchronise after a timeout (default true); probing turns it off (the port may not be AT at all). */
  readonly resync?: boolean;
}

export interface AtUrc {
  readonly name: string;
  readonly line: string;
}

/**
 * AT command queue over one transport: one command in flight, each with its own timeout; URCs
 * are emitted as 'urc' whenever they arrive (also between a command's echo and its final).
 *
 * Resynchronisation after a timeout (so a late reply never answers a later command):
 *
 *   command times out ─► caller rejected at once (DC_AT_TIMEOUT); the queue stays held
 *     1. drain: the framer keeps the timed-out command pending ('expired'); its lines and final
 *        result, if they come within `drainMs`, are consumed and dropped ('late')
 *     2. otherwise a marker: wait for `quietMs` of silence, send `AT`, wait for its final result
 *        and `quietMs` more (a second final would be the marker's own: also consumed); up to 3×
 *     3. release the queue; if nothing answered, the next command runs anyway and 'desync' is
 *        emitted with DC_AT_RESYNC (the manager treats a wedged port as lost)
 *
 * Line noise ('garbage': control/8-bit bytes, or unprefixed lines inside a +X reply) is counted
 * (`garbageBytes`) and logged with DC_AT_GARBAGE, never returned as a reply line. An error final result rejects with a device-origin
 * DuocellError (DC_AT_ERROR / DC_AT_CME_ERROR / DC_AT_CMS_ERROR / DC_AT_NO_CARRIER); a timeout
 * with DC_AT_TIMEOUT; the port closing with DC_MODEM_PORT (queued commands too).
 *
 * Events: 'urc' (AtUrc), 'close' (err?).
 */
export class AtClient extends EventEmitter {
  readonly transport: ModemTransport;
  readonly #framer = new AtFramer();
  readonly #waiter = new Waiter<AtResponse>('DC_AT_TIMEOUT');
  #queue: Promise<unknown> = Promise.resolve();
  #closed: DuocellError | undefined;
  #detached = false;
  #resync: Promise<void> | undefined;
  #lastRx = 0;
  #lastGarbageLog = 0;
  #late: (() => void) | undefined;
  defaultTimeoutMs = 3000;
  /** How long a timed-out command's late reply is waited for before a marker is sent. */
  drainMs = 1000;
  /** Silence around the resynchronisation marker. */
  quietMs = 100;
  /** Bytes of line noise seen (counted by the framer). */
  get garbageBytes(): number {
    return this.#framer.garbage;
  }
  /** Overlong lines dropped. */
  get overflows(): number {
    return this.#framer.overflows;
  }
  /** Late replies drained after a timeout. */
  lateReplies = 0;

  constructor(transport: ModemTransport) {
    super();
    this.transport = transport;
    transport.on('data', this.#onData);
    transport.on('close', this.#onClose);
  }

  readonly #onData = (chunk: Buffer): void => {
    log.debug({ path: this.transport.path, rx: chunk.toString('latin1') }, 'at rx');
    this.#lastRx = Date.now();
    for (const ev of this.#framer.feed(chunk)) {
      switch (ev.type) {
        case 'response':
          this.#waiter.resolve(ev.response);
          break;
        case 'urc':
          this.emit('urc', { name: ev.name, line: ev.line } satisfies AtUrc);
          break;
        case 'late':
          this.lateReplies++;
          log.info({ path: this.transport.path, code: 'DC_AT_RESYNC', command: ev.response.command, final: ev.response.final, lines: ev.response.lines.length }, 'late reply to a timed-out command drained');
          this.#late?.();
          break;
        case 'overflow':
          log.warn({ path: this.transport.path, code: 'DC_AT_OVERFLOW', dropped: ev.dropped }, 'overlong AT line dropped');
          break;
        case 'garbage': {
          const now = Date.now();
          if (now - this.#lastGarbageLog > 5000) {
            this.#lastGarbageLog = now;
            log.warn({ path: this.transport.path, code: 'DC_AT_GARBAGE', bytes: ev.bytes, total: this.#framer.garbage, sample: ev.sample }, 'line noise on the AT port dropped');
          }
          break;
        }
        case 'stray':
          log.debug({ path: this.transport.path, line: ev.line }, 'stray line');
          break;
        default:
          break;
      }
    }
  };

  readonly #onClose = (err?: DuocellError): void => {
    this.#closed = err ?? new DuocellError('DC_MODEM_CLOSED', `${this.transport.path}: AT port closed`);
    this.#waiter.rejectAll(this.#closed);
    this.emit('close', err);
  };

  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /** Send one command (without CR) and wait for its final result code. */
  command(cmd: string, opts: AtCommandOptions = {}): Promise<AtResponse> {
    const run = async (): Promise<AtResponse> => {
      if (this.#closed) throw this.#closed;
      const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs;
      this.#framer.begin(cmd, opts.prefix);
      const p = this.#waiter.wait(() => true, timeoutMs, `final result of ${cmd}`);
      // handled where it is awaited; this only keeps a timeout during a slow write from being 'unhandled'
      p.catch(() => undefined);
      log.debug({ path: this.transport.path, tx: cmd }, 'at tx');
      try {
        await this.transport.write(`${cmd}\r`);
      } catch (e) {
        this.#framer.abort();
        this.#waiter.rejectAll(e as Error);
        await p.catch(() => undefined);
        throw e;
      }
      let r: AtResponse;
      try {
        r = await p;
      } catch (e) {
        if ((e as DuocellError).code === 'DC_AT_TIMEOUT' && !this.#closed && !this.#detached && opts.resync !== false) {
          this.#framer.expire();
          this.#resync = this.#resynchronise(cmd);
        } else this.#framer.abort();
        throw e;
      }
      return checkFinal(r);
    };
    const next = this.#queue.then(run, run);
    this.#queue = next.catch(() => undefined).then(() => {
      const r = this.#resync;
      this.#resync = undefined;
      return r;
    });
    return next;
  }

  async #resynchronise(timedOut: string): Promise<void> {
    // 1. drain: the timed-out command's own final result, if it is only late
    if (await this.#until(() => !this.#framer.draining, this.drainMs)) return;
    // 2. marker: silence, `AT`, its final, silence again (absorbs a final that raced the marker)
    for (let attempt = 0; attempt < 3 && !this.#closed && !this.#detached; attempt++) {
      await this.#until(() => Date.now() - this.#lastRx >= this.quietMs, this.drainMs);
      this.#framer.begin('AT');
      const p = this.#waiter.wait(() => true, Math.max(this.quietMs * 5, 500), 'resynchronisation marker AT');
      // handled where it is awaited; this only keeps a timeout during a slow write from being 'unhandled'
      p.catch(() => undefined);
      try {
        await this.transport.write('AT\r');
        await p;
        await this.#until(() => Date.now() - this.#lastRx >= this.quietMs, this.drainMs);
        log.info({ path: this.transport.path, code: 'DC_AT_RESYNC', after: timedOut }, 'AT port back in step (marker answered)');
        return;
      } catch {
        this.#framer.expire();
        await p.catch(() => undefined);
      }
    }
    if (this.#closed || this.#detached) return;
    this.#framer.abort();
    const err = new DuocellError('DC_AT_RESYNC', `${this.transport.path}: no answer to the resynchronisation marker after ${timedOut} timed out`, { origin: 'device', command: timedOut });
    log.warn({ path: this.transport.path, code: err.code }, err.message);
    this.emit('desync', err);
  }

  /** Resolve true once `cond` holds (checked on data and every 20 ms), false after `ms`. */
  #until(cond: () => boolean, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      if (cond()) return resolve(true);
      const t0 = Date.now();
      const check = (): void => {
        if (cond() || this.#closed || this.#detached) {
          clearInterval(iv);
          this.#late = undefined;
          resolve(cond());
        } else if (Date.now() - t0 >= ms) {
          clearInterval(iv);
          this.#late = undefined;
          resolve(false);
        }
      };
      const iv = setInterval(check, 20);
      this.#late = check;
    });
  }

  /** Send a command and return its intermediate lines joined with CRLF (the parsers' input). */
  async text(cmd: string, opts: AtCommandOptions = {}): Promise<string> {
    return (await this.command(cmd, opts)).lines.join('\r\n');
  }

  /** Stop listening to the transport without closing it (probing tries another protocol). */
  detach(): void {
    this.#detached = true;
    this.transport.off('data', this.#onData);
    this.transport.off('close', this.#onClose);
    this.#waiter.rejectAll(new DuocellError('DC_MODEM_CLOSED', `${this.transport.path}: client detached`));
  }

  async close(): Promise<void> {
    this.transport.off('data', this.#onData);
    await this.transport.close();
    if (!this.#closed) this.#onClose();
  }
}

/** Map an error final result code to a device-origin DuocellError; pass OK/CONNECT through. */
export function checkFinal(r: AtResponse): AtResponse {
  switch (r.final) {
    case 'OK':
    case 'CONNECT':
      return r;
    case 'CME ERROR':
      throw new DuocellError(
        'DC_AT_CME_ERROR',
        `${r.command}: +CME ERROR: ${r.finalText}${r.errorCode !== undefined && CME_ERRORS[r.errorCode] ? ` (${CME_ERRORS[r.errorCode]})` : ''}`,
        { origin: 'device', cme: r.errorCode ?? r.finalText, command: r.command },
      );
    case 'CMS ERROR':
      throw new DuocellError('DC_AT_CMS_ERROR', `${r.command}: +CMS ERROR: ${r.finalText}`, { origin: 'device', cms: r.errorCode ?? r.finalText, command: r.command });
    case 'NO CARRIER':
      throw new DuocellError('DC_AT_NO_CARRIER', `${r.command}: NO CARRIER`, { origin: 'device', command: r.command });
    default:
      throw new DuocellError('DC_AT_ERROR', `${r.command}: ${r.final}`, { origin: 'device', final: r.final, command: r.command });
  }
}

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
}

export interface AtUrc {
  readonly name: string;
  readonly line: string;
}

/**
 * AT command queue over one transport: one command in flight, each with its own timeout; URCs
 * are emitted as 'urc' whenever they arrive. An error final result rejects with a device-origin
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
  defaultTimeoutMs = 3000;

  constructor(transport: ModemTransport) {
    super();
    this.transport = transport;
    transport.on('data', this.#onData);
    transport.on('close', this.#onClose);
  }

  readonly #onData = (chunk: Buffer): void => {
    log.debug({ path: this.transport.path, rx: chunk.toString('latin1') }, 'at rx');
    for (const ev of this.#framer.feed(chunk)) {
      switch (ev.type) {
        case 'response':
          this.#waiter.resolve(ev.response);
          break;
        case 'urc':
          this.emit('urc', { name: ev.name, line: ev.line } satisfies AtUrc);
          break;
        case 'overflow':
          log.warn({ path: this.transport.path, dropped: ev.dropped }, 'overlong line dropped');
          break;
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
        this.#framer.abort();
        throw e;
      }
      return checkFinal(r);
    };
    const next = this.#queue.then(run, run);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /** Send a command and return its intermediate lines joined with CRLF (the parsers' input). */
  async text(cmd: string, opts: AtCommandOptions = {}): Promise<string> {
    return (await this.command(cmd, opts)).lines.join('\r\n');
  }

  /** Stop listening to the transport without closing it (probing tries another protocol). */
  detach(): void {
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

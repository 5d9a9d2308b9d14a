import { EventEmitter } from 'node:events';
import { DuocellError, toDuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import { Waiter } from '../../core/waiter.js';
import {
  decodeCtlAllocateCid,
  decodeMessage,
  encodeRequest,
  messageByKey,
  QmiStreamParser,
  SERVICE,
  SERVICE_NAMES,
  type QmiMessage,
  type QmiObject,
  type Tlv,
} from '../../protocols/qmi/index.js';
import type { ModemTransport } from './transport.js';

const log = logger('duocell:modem:qmi');

export interface QmiRequestOptions {
  readonly timeoutMs?: number;
  /** Resolve with a failed Result instead of throwing DC_QMI_RESULT. */
  readonly allowFailure?: boolean;
}

/**
 * QMI client over one transport (cdc-wdm device or a pty). Allocates client ids through CTL,
 * numbers transactions per service (CTL u8, others u16) and matches responses with a Waiter on
 * (service, client, transaction, message). Indications are emitted as 'indication'
 * (QmiMessage); frames that do not decode are logged and dropped, never thrown.
 *
 * Events: 'indication' (QmiMessage), 'close' (err?).
 */
/** What the waiter hands back: a decoded response, or the error that kept it from decoding. */
type Reply = QmiMessage & { readonly decodeError?: DuocellError };

export class QmiClient extends EventEmitter {
  readonly transport: ModemTransport;
  readonly #parser = new QmiStreamParser();
  readonly #waiter = new Waiter<Reply>('DC_QMI_TIMEOUT');
  readonly #clients = new Map<number, number>();
  #ctlTid = 0;
  #tid = 0;
  #closed: DuocellError | undefined;
  defaultTimeoutMs = 5000;

  constructor(transport: ModemTransport) {
    super();
    this.transport = transport;
    transport.on('data', this.#onData);
    transport.on('close', this.#onClose);
  }

  readonly #onData = (chunk: Buffer): void => {
    log.debug({ path: this.transport.path, rx: chunk.toString('hex') }, 'qmi rx');
    for (const item of this.#parser.push(chunk)) {
      if ('error' in item) {
        log.warn({ path: this.transport.path, code: item.error.code, err: item.error.message }, 'bad QMUX frame dropped');
        continue;
      }
      if (item.frame.kind === 'request') continue; // our own echo on a misconfigured tty
      let m: QmiMessage;
      try {
        m = decodeMessage(item.frame);
      } catch (e) {
        const err = toDuocellError(e);
        log.warn({ path: this.transport.path, code: err.code, err: err.message }, 'QMI message dropped');
        // still wake the waiter so the caller gets the decode error rather than a timeout
        if (item.frame.kind === 'response') this.#waiter.resolve({ frame: item.frame, values: {}, unknown: [], decodeError: err });
        continue;
      }
      if (m.frame.kind === 'indication') this.emit('indication', m);
      else if (!this.#waiter.resolve(m)) log.debug({ tid: m.frame.tid, msg: m.frame.message }, 'unmatched QMI response');
    }
  };

  readonly #onClose = (err?: DuocellError): void => {
    this.#closed = err ?? new DuocellError('DC_MODEM_CLOSED', `${this.transport.path}: QMI port closed`);
    this.#waiter.rejectAll(this.#closed);
    this.#clients.clear();
    this.emit('close', err);
  };

  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /** The client id held for a service, if any. */
  clientId(service: number): number | undefined {
    return this.#clients.get(service);
  }

  /** Send a request described by `key` (e.g. 'wds.startNetwork') and await its response. */
  async request(key: string, values: Readonly<Record<string, unknown>> = {}, opts: QmiRequestOptions & { client?: number } = {}): Promise<QmiMessage> {
    if (this.#closed) throw this.#closed;
    const def = messageByKey(key);
    if (def === undefined) throw new DuocellError('DC_QMI_UNKNOWN_MESSAGE', `no QMI message described as ${key}`);
    const service = def.service;
    let client = 0;
    if (service !== SERVICE.CTL) client = opts.client ?? (await this.#ensureClient(service));
    const tid = service === SERVICE.CTL ? (this.#ctlTid = (this.#ctlTid % 0xff) + 1) : (this.#tid = (this.#tid % 0xffff) + 1);
    const frame = encodeRequest(key, { client, tid }, values);
    const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs;
    const p = this.#waiter.wait(
      (m) => m.frame.service === service && m.frame.client === client && m.frame.tid === tid && m.frame.message === def.id,
      timeoutMs,
      `QMI ${key} response (client ${client}, tid ${tid})`,
    );
    // handled where it is awaited; this only keeps a timeout during a slow write from being 'unhandled'
    p.catch(() => undefined);
    log.debug({ path: this.transport.path, key, tx: frame.toString('hex') }, 'qmi tx');
    try {
      await this.transport.write(frame);
    } catch (e) {
      p.catch(() => undefined);
      throw e;
    }
    const m = await p;
    if (m.decodeError) throw m.decodeError;
    if (m.result && !m.result.ok && !opts.allowFailure)
      throw new DuocellError('DC_QMI_RESULT', `QMI ${key} failed: ${m.result.errorName} (${m.result.error})`, {
        origin: 'device',
        qmiError: m.result.error,
        qmiErrorName: m.result.errorName,
        values: m.values,
        /** the reply's TLVs, for a typed decoder of a failed reply's extra TLVs */
        tlvs: m.frame.tlvs,
      });
    return m;
  }

  /** Values of a successful response (shorthand). */
  async call(key: string, values: Readonly<Record<string, unknown>> = {}, opts: QmiRequestOptions & { client?: number } = {}): Promise<QmiObject> {
    return (await this.request(key, values, opts)).values;
  }

  /** A successful response read by a typed decoder from protocols/qmi/replies.ts. */
  async ask<T>(key: string, decode: (tlvs: readonly Tlv[]) => T, values: Readonly<Record<string, unknown>> = {}, opts: QmiRequestOptions & { client?: number } = {}): Promise<T> {
    return decode((await this.request(key, values, opts)).frame.tlvs);
  }

  async #ensureClient(service: number): Promise<number> {
    const have = this.#clients.get(service);
    if (have !== undefined) return have;
    return this.allocateClient(service);
  }

  /** Allocate a new client id for `service` (kept as the default client for it). */
  async allocateClient(service: number, keepAsDefault = true): Promise<number> {
    const info = await this.ask('ctl.allocateCid', decodeCtlAllocateCid, { service });
    if (info.service !== service) throw new DuocellError('DC_QMI_TLV_MISSING', `CTL Allocate CID for ${SERVICE_NAMES[service]} returned no allocation info`);
    if (keepAsDefault && !this.#clients.has(service)) this.#clients.set(service, info.cid);
    return info.cid;
  }

  async releaseClient(service: number, cid: number): Promise<void> {
    if (this.#clients.get(service) === cid) this.#clients.delete(service);
    await this.call('ctl.releaseCid', { release_info: { service, cid } }, { timeoutMs: 2000 });
  }

  /** CTL Sync: the modem drops every client id (done once when taking over a port). */
  async sync(timeoutMs = 2000): Promise<void> {
    await this.call('ctl.sync', {}, { timeoutMs });
    this.#clients.clear();
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

import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import { SerialPort } from 'serialport';
import { DuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';

/**
 * Byte transports for modem ports. The AT client, the QMI client and the manager see only this
 * interface; whether it is a USB serial port, a cdc-wdm character device or a pty is decided by
 * whoever opens it (board profile, simulator, tests).
 *
 * Events: 'data' (Buffer), 'close' (err?: DuocellError — set when the port failed or vanished).
 */
export interface ModemTransport {
  readonly path: string;
  readonly isOpen: boolean;
  write(data: Uint8Array | string): Promise<void>;
  close(): Promise<void>;
  on(event: 'data', listener: (chunk: Buffer) => void): this;
  on(event: 'close', listener: (err?: DuocellError) => void): this;
  off(event: 'data', listener: (chunk: Buffer) => void): this;
  off(event: 'close', listener: (err?: DuocellError) => void): this;
}

export type TransportOpener = (path: string) => Promise<ModemTransport>;

const log = logger('duocell:modem:port');

function portError(path: string, what: string, e: unknown): DuocellError {
  const err = e as NodeJS.ErrnoException;
  return new DuocellError('DC_MODEM_PORT', `${path}: ${what}: ${err?.message ?? String(e)}`, {
    origin: 'kernel',
    cause: e,
    path,
    ...(typeof err?.errno === 'number' ? { errno: Math.abs(err.errno) } : {}),
  });
}

/** A serial port (USB tty, or a pty in the simulator) through npm serialport. */
export class SerialTransport extends EventEmitter implements ModemTransport {
  readonly path: string;
  readonly #port: SerialPort;
  #open = false;

  private constructor(path: string, port: SerialPort) {
    super();
    this.path = path;
    this.#port = port;
  }

  static open(path: string, baudRate = 115200): Promise<SerialTransport> {
    return new Promise((resolve, reject) => {
      const port = new SerialPort({ path, baudRate, autoOpen: false });
      const t = new SerialTransport(path, port);
      port.open((err) => {
        if (err) return reject(portError(path, 'open', err));
        t.#open = true;
        port.on('data', (d: Buffer) => t.emit('data', d));
        port.on('error', (e) => log.debug({ path, err: e.message }, 'port error'));
        port.on('close', (e?: Error & { disconnected?: boolean }) => {
          const was = t.#open;
          t.#open = false;
          if (was) t.emit('close', e ? portError(path, e.message.includes('disconnect') || e.disconnected ? 'vanished' : 'closed', e) : undefined);
        });
        resolve(t);
      });
    });
  }

  get isOpen(): boolean {
    return this.#open;
  }

  write(data: Uint8Array | string): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!this.#open) return reject(new DuocellError('DC_MODEM_PORT', `${this.path}: not open`));
      this.#port.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : Buffer.from(data), (err) => (err ? reject(portError(this.path, 'write', err)) : resolve()));
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.#open) return resolve();
      this.#open = false;
      this.#port.close(() => {
        this.emit('close');
        resolve();
      });
    });
  }
}

/**
 * A character device opened read/write with plain fs (the cdc-wdm QMI device, /dev/cdc-wdmN).
 * Each read returns one QMUX message from the kernel; reads run in the libuv pool.
 */
export class CharDeviceTransport extends EventEmitter implements ModemTransport {
  readonly path: string;
  #fd: number;
  #open = true;
  readonly #buf = Buffer.alloc(0x10000);

  private constructor(path: string, fd: number) {
    super();
    this.path = path;
    this.#fd = fd;
  }

  static async open(path: string): Promise<CharDeviceTransport> {
    const fd = await new Promise<number>((resolve, reject) =>
      fs.open(path, fs.constants.O_RDWR | fs.constants.O_NOCTTY, (err, fd) => (err ? reject(portError(path, 'open', err)) : resolve(fd))),
    );
    const t = new CharDeviceTransport(path, fd);
    t.#readLoop();
    return t;
  }

  get isOpen(): boolean {
    return this.#open;
  }

  #readLoop(): void {
    if (!this.#open) return;
    fs.read(this.#fd, this.#buf, 0, this.#buf.length, null, (err, n) => {
      if (!this.#open) return;
      if (err || n === 0) {
        this.#fail(err ? portError(this.path, 'read', err) : new DuocellError('DC_MODEM_PORT', `${this.path}: end of file (device gone)`, { path: this.path }));
        return;
      }
      this.emit('data', Buffer.from(this.#buf.subarray(0, n)));
      this.#readLoop();
    });
  }

  #fail(e: DuocellError): void {
    if (!this.#open) return;
    this.#open = false;
    fs.close(this.#fd, () => undefined);
    this.emit('close', e);
  }

  write(data: Uint8Array | string): Promise<void> {
    const b = typeof data === 'string' ? Buffer.from(data, 'latin1') : Buffer.from(data);
    return new Promise((resolve, reject) => {
      if (!this.#open) return reject(new DuocellError('DC_MODEM_PORT', `${this.path}: not open`));
      fs.write(this.#fd, b, (err) => {
        if (err) {
          const e = portError(this.path, 'write', err);
          this.#fail(e);
          reject(e);
        } else resolve();
      });
    });
  }

  async close(): Promise<void> {
    if (!this.#open) return;
    this.#open = false;
    await new Promise<void>((r) => fs.close(this.#fd, () => r()));
    this.emit('close');
  }
}

/** The default opener: cdc-wdm devices with fs, everything else as a serial port. */
export const openModemPort: TransportOpener = async (path) => (/cdc-wdm/.test(path) ? CharDeviceTransport.open(path) : SerialTransport.open(path));

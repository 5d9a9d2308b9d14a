import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import { SerialPort } from 'serialport';
import { DuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import { fdWatchAvailable, watchFd, type FdWatch } from '../sockets/fd-watch.js';

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
  // node's fs messages end in ", open '<path>'": the path is already at the front
  const msg = (err?.message ?? String(e)).replace(/, \w+ '[^']*'$/, '');
  return new DuocellError('DC_MODEM_PORT', `${path}: ${what}: ${msg}`, {
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
 * A character device (the cdc-wdm QMI device /dev/cdc-wdmN, or a pty) opened O_NONBLOCK and read
 * when it is readable (native fdWatch: uv_poll, read until EAGAIN), never by a read blocked in the
 * thread pool. close() therefore really cancels: nothing is left reading the old descriptor, a
 * reopened port gets its own replies, and a process with the device open can exit at once.
 * Each read of a cdc-wdm device returns one QMUX message. Without the native watcher (an old
 * addon build) the descriptor is polled every `pollMs` instead: slower, but still cancellable.
 */
export class CharDeviceTransport extends EventEmitter implements ModemTransport {
  readonly path: string;
  readonly #fd: number;
  #open = true;
  #watch: FdWatch | undefined;
  #timer: NodeJS.Timeout | undefined;

  private constructor(path: string, fd: number) {
    super();
    this.path = path;
    this.#fd = fd;
  }

  static async open(path: string, opts: { pollMs?: number } = {}): Promise<CharDeviceTransport> {
    const fd = await new Promise<number>((resolve, reject) =>
      fs.open(path, fs.constants.O_RDWR | fs.constants.O_NOCTTY | fs.constants.O_NONBLOCK, (err, fd) => (err ? reject(portError(path, 'open', err)) : resolve(fd))),
    );
    const t = new CharDeviceTransport(path, fd);
    if (fdWatchAvailable()) {
      t.#watch = watchFd(fd, (b) => t.#open && t.emit('data', b), (errno) => t.#ended(errno));
    } else {
      log.warn({ path }, 'native fdWatch missing (rebuild the addon): polling the device instead');
      const buf = Buffer.alloc(0x10000);
      t.#timer = setInterval(() => {
        for (let i = 0; i < 64 && t.#open; i++) {
          let n: number;
          try {
            n = fs.readSync(fd, buf, 0, buf.length, null);
          } catch (e) {
            const code = (e as NodeJS.ErrnoException).code;
            if (code !== 'EAGAIN') t.#ended(Math.abs((e as NodeJS.ErrnoException).errno ?? 5));
            return;
          }
          if (n === 0) return t.#ended(0);
          t.emit('data', Buffer.from(buf.subarray(0, n)));
        }
      }, opts.pollMs ?? 10);
    }
    return t;
  }

  get isOpen(): boolean {
    return this.#open;
  }

  #ended(errno: number): void {
    const e =
      errno === 0
        ? new DuocellError('DC_MODEM_PORT', `${this.path}: end of file (device gone)`, { origin: 'kernel', path: this.path })
        : new DuocellError('DC_MODEM_PORT', `${this.path}: vanished: read failed (errno ${errno})`, { origin: 'kernel', path: this.path, errno });
    this.#fail(e);
  }

  #release(): void {
    this.#open = false;
    this.#watch?.stop();
    this.#watch = undefined;
    clearInterval(this.#timer);
    try {
      fs.closeSync(this.#fd);
    } catch {
      /* already gone */
    }
  }

  #fail(e: DuocellError): void {
    if (!this.#open) return;
    this.#release();
    this.emit('close', e);
  }

  async write(data: Uint8Array | string): Promise<void> {
    let b = typeof data === 'string' ? Buffer.from(data, 'latin1') : Buffer.from(data);
    const deadline = Date.now() + 2000;
    while (b.length > 0) {
      if (!this.#open) throw new DuocellError('DC_MODEM_PORT', `${this.path}: not open`);
      let n = 0;
      try {
        n = fs.writeSync(this.#fd, b);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') {
          const e = portError(this.path, 'write', err);
          this.#fail(e);
          throw e;
        }
        if (Date.now() > deadline) throw new DuocellError('DC_MODEM_PORT', `${this.path}: write: device not accepting data for 2 s`, { origin: 'kernel', path: this.path });
        await new Promise((r) => setTimeout(r, 5));
      }
      b = b.subarray(n);
    }
  }

  async close(): Promise<void> {
    if (!this.#open) return;
    this.#release();
    this.emit('close');
  }
}

/** The default opener: cdc-wdm devices with fs, everything else as a serial port. */
export const openModemPort: TransportOpener = async (path) => (/cdc-wdm/.test(path) ? CharDeviceTransport.open(path) : SerialTransport.open(path));

import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import { DuocellError } from '../../core/errors.js';

/**
 * One simulated modem port: a pseudo-terminal whose slave is reachable at `link` (what the
 * host opens, like /dev/ttyUSB2 or /dev/cdc-wdm0) and whose master side is bridged to this
 * process by socat (`PTY,raw,echo=0,link=… STDIO`). Node has no openpty; socat does it and
 * keeps the line discipline raw so QMI bytes pass untouched.
 *
 * vanish() kills the bridge: the link disappears and the host sees its port hang up, as when
 * the USB device is unplugged. appear() creates it again at the same path.
 *
 * Events: 'data' (Buffer from the host), 'up', 'down'.
 */
export class PtyPort extends EventEmitter {
  readonly link: string;
  #proc: ChildProcess | undefined;

  constructor(link: string) {
    super();
    this.link = link;
  }

  get up(): boolean {
    return this.#proc !== undefined;
  }

  async appear(timeoutMs = 3000): Promise<void> {
    if (this.#proc) return;
    try {
      fs.unlinkSync(this.link);
    } catch {
      /* not there */
    }
    const p = spawn('socat', [`PTY,raw,echo=0,link=${this.link},mode=600`, 'STDIO'], { stdio: ['pipe', 'pipe', 'ignore'] });
    this.#proc = p;
    p.stdout!.on('data', (d: Buffer) => this.emit('data', d));
    p.stdin!.on('error', () => undefined);
    p.on('exit', () => {
      if (this.#proc === p) {
        this.#proc = undefined;
        this.emit('down');
      }
    });
    const t0 = Date.now();
    while (!fs.existsSync(this.link)) {
      if (Date.now() - t0 > timeoutMs || this.#proc !== p) throw new DuocellError('DC_SIM_STATE', `socat did not create ${this.link}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    this.emit('up');
  }

  write(b: Uint8Array | string): void {
    const p = this.#proc;
    if (!p || !p.stdin || p.stdin.destroyed) return;
    p.stdin.write(typeof b === 'string' ? Buffer.from(b, 'latin1') : b);
  }

  async vanish(): Promise<void> {
    const p = this.#proc;
    if (!p) return;
    this.#proc = undefined;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGTERM');
    await gone;
    try {
      fs.unlinkSync(this.link);
    } catch {
      /* socat removed it */
    }
    this.emit('down');
  }
}

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';

/**
 * The simulated AT-only module's ECM/NCM side: the module is the DHCP server of the small
 * network on its USB netdev (what Quectel's ECM mode does with 192.168.225.0/24). Here a real
 * dnsmasq (Debian package dnsmasq-base, DHCP only: `--port=0` turns its DNS off) runs on the
 * modem's end of the veth whose other end is the cell's `usb0`, started when the simulator
 * reports the AT data-session activation ('at-data' up) and stopped when it ends — before
 * that, nothing answers DHCP, as on the hardware. The simulator never puts an address on
 * usb0: duocell obtains it by DHCP and configures it itself.
 */

const log = logger('duocell:sim:ecm');

export interface EcmServerOptions {
  /** Network namespace of the modem's end ('' = this one). */
  readonly ns: string;
  /** The modem's end of the veth (already addressed with `gateway`/prefix). */
  readonly ifname: string;
  /** The one address offered to the host (the cell). */
  readonly offer: string;
  readonly gateway: string;
  readonly netmask: string;
  readonly mtu?: number;
  readonly leaseSeconds?: number;
}

export class EcmDhcpServer {
  readonly #o: EcmServerOptions;
  #proc: ChildProcess | undefined;
  #dir: string | undefined;
  /** How many times it was started (tests). */
  starts = 0;

  constructor(o: EcmServerOptions) {
    this.#o = o;
  }

  get running(): boolean {
    return this.#proc !== undefined;
  }

  async start(): Promise<void> {
    if (this.#proc) return;
    this.starts++;
    const o = this.#o;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'duocell-ecm-'));
    this.#dir = dir;
    const args = [
      '--keep-in-foreground',
      '--conf-file=/dev/null',
      '--no-resolv',
      '--no-hosts',
      '--port=0',
      `--interface=${o.ifname}`,
      '--bind-interfaces',
      '--except-interface=lo',
      `--dhcp-range=${o.offer},${o.offer},${o.netmask},${Math.max(120, o.leaseSeconds ?? 3600)}`,
      `--dhcp-option=option:router,${o.gateway}`,
      `--dhcp-option=option:dns-server,${o.gateway}`,
      ...(o.mtu === undefined ? [] : [`--dhcp-option=option:mtu,${o.mtu}`]),
      '--dhcp-authoritative',
      '--no-ping', // a module answers at once; dnsmasq's ping check before an offer would delay the first lease by seconds
      `--dhcp-leasefile=${path.join(dir, 'leases')}`,
      '--pid-file=',
      '--user=root',
      '--log-facility=-',
      '--log-dhcp',
    ];
    const [cmd, argv] = o.ns === '' ? ['dnsmasq', args] : ['ip', ['netns', 'exec', o.ns, 'dnsmasq', ...args]];
    const p = spawn(cmd, argv as string[], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#proc = p;
    let err = '';
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => resolve(), 1500); // started quietly: go on
      p.stderr!.on('data', (d: Buffer) => {
        err = (err + d.toString()).slice(-2000);
        if (/DHCP, IP range|started, version/.test(err)) {
          clearTimeout(t);
          resolve();
        }
      });
      p.once('exit', (code) => {
        clearTimeout(t);
        if (this.#proc === p) this.#proc = undefined;
        reject(new DuocellError('DC_SIM_STATE', `dnsmasq exited (${code}): ${err.trim().slice(-300)}`));
      });
      p.once('error', (e) => reject(new DuocellError('DC_SIM_STATE', `dnsmasq could not start (Debian package dnsmasq-base): ${e.message}`)));
    });
    p.stderr!.on('data', (d: Buffer) => log.debug({ dnsmasq: d.toString().trim() }, 'dnsmasq'));
    log.info({ ns: o.ns, ifname: o.ifname, offer: o.offer }, 'modem DHCP server up (ECM data session active)');
  }

  async stop(): Promise<void> {
    const p = this.#proc;
    this.#proc = undefined;
    if (p && p.exitCode === null && p.signalCode === null) {
      const gone = new Promise<void>((r) => p.once('exit', () => r()));
      p.kill('SIGTERM');
      const t = setTimeout(() => p.kill('SIGKILL'), 1000);
      await gone;
      clearTimeout(t);
    }
    if (this.#dir) fs.rmSync(this.#dir, { recursive: true, force: true });
    this.#dir = undefined;
  }
}

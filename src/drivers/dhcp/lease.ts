import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { DuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import type { FamilySettings } from '../modem/types.js';

/**
 * A DHCP lease on an interface duocell addresses itself: the WLAN uplink (wlan0, once
 * wpa_supplicant has connected: drivers/dhcp/uplink.ts) and an AT-controlled modem's USB network
 * interface (ECM/NCM/RNDIS: usb0, at-data.ts), where the module is the DHCP server of a small private network and routes/NATs it into the PDP
 * context (Quectel's ECM mode hands out 192.168.225.x by default).
 *
 * The client is busybox `udhcpc` (Debian package `udhcpc`), not our own: DHCP before the
 * interface has an address needs a packet socket (or SO_BINDTODEVICE plus a broadcast reply),
 * which Node's dgram cannot do; udhcpc is small, on every OpenWrt box already, and does the
 * renew/rebind timers. It never configures anything itself here: its script (written below)
 * only prints one line per event, which `parseLeaseLine` turns into a typed event, and duocell
 * applies the lease through rtnetlink (DataInterface, the same path as the QMI wwan0 session).
 *
 *   start() ─► udhcpc -f -i usb0 -s SCRIPT -O mtu -R     (foreground, release on exit)
 *                 │ script argv[1] = deconfig | bound | renew | leasefail | nak
 *                 ▼
 *   stdout: "duocell-dhcp|bound|10.21.0.2|255.255.255.0|10.21.0.1|10.21.0.1|1500|3600|usb0"
 *                 ▼ parseLeaseLine
 *   'lease' (bound, renew with new values)   'lost' (deconfig after a lease, nak)
 *
 * Errors: the client's own (no client binary, no lease within the timeout, client died) carry
 * the caller's code (DC_MODEM_DHCP by default, DC_WLAN_DHCP for the WLAN uplink); a malformed
 * lease line is DC_MODEM_DHCP (parseLeaseLine).
 */

const log = logger('duocell:dhcp');

export const LEASE_TAG = 'duocell-dhcp';
export const LEASE_EVENTS = ['deconfig', 'bound', 'renew', 'leasefail', 'nak'] as const;
export type LeaseEventName = (typeof LEASE_EVENTS)[number];

export interface Lease extends FamilySettings {
  readonly leaseSeconds?: number;
}

export type LeaseLine = { readonly event: 'bound' | 'renew'; readonly lease: Lease } | { readonly event: 'deconfig' | 'leasefail' | 'nak' };

/** Longest line looked at: a real one is < 200 characters. */
export const MAX_LEASE_LINE = 1024;

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** Dotted netmask → prefix length; undefined for a mask that is not contiguous ones. */
export function maskToPrefix(mask: string): number | undefined {
  if (/^\d{1,2}$/.test(mask)) {
    const n = Number(mask);
    return n <= 32 ? n : undefined;
  }
  if (!IPV4.test(mask)) return undefined;
  const v = mask.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  let len = 0;
  while (len < 32 && Math.floor(v / 2 ** (31 - len)) % 2 === 1) len++;
  // everything below the ones must be zero
  return v % 2 ** (32 - len) === 0 ? len : undefined;
}

/**
 * One line the lease script printed: `duocell-dhcp|EVENT|ip|mask|routers|dns|mtu|lease|iface`
 * (routers and dns space-separated). Pure; returns undefined for anything that is not such a
 * line (udhcpc's own messages share the stream), throws DC_MODEM_DHCP for a tagged line whose
 * fields are not what a DHCP server may send.
 */
export function parseLeaseLine(line: string): LeaseLine | undefined {
  if (line.length > MAX_LEASE_LINE) {
    if (line.startsWith(`${LEASE_TAG}|`)) throw new DuocellError('DC_MODEM_DHCP', `lease line too long (${line.length} characters)`, { origin: 'local' });
    return undefined;
  }
  const f = line.replace(/\r$/, '').split('|');
  if (f[0] !== LEASE_TAG) return undefined;
  const ev = f[1] as LeaseEventName;
  if (!(LEASE_EVENTS as readonly string[]).includes(ev)) throw new DuocellError('DC_MODEM_DHCP', `unknown lease event ${JSON.stringify((f[1] ?? '').slice(0, 20))}`, { origin: 'local' });
  if (ev !== 'bound' && ev !== 'renew') return { event: ev };
  if (f.length !== 9) throw new DuocellError('DC_MODEM_DHCP', `lease line with ${f.length} fields (9 expected)`, { origin: 'local' });
  const [, , ip = '', mask = '', routers = '', dns = '', mtu = '', lease = ''] = f;
  if (!IPV4.test(ip) || ip === '0.0.0.0') throw new DuocellError('DC_MODEM_DHCP', `lease without a usable address (${JSON.stringify(ip.slice(0, 40))})`, { origin: 'device' });
  const prefixLength = mask === '' ? 32 : maskToPrefix(mask);
  if (prefixLength === undefined || prefixLength === 0) throw new DuocellError('DC_MODEM_DHCP', `lease with a bad subnet mask ${JSON.stringify(mask.slice(0, 40))}`, { origin: 'device' });
  const list = (s: string): string[] => s.split(' ').filter((x) => IPV4.test(x));
  const gateway = list(routers)[0];
  const m = /^\d{1,5}$/.test(mtu) ? Number(mtu) : undefined;
  const secs = /^\d{1,10}$/.test(lease) ? Number(lease) : undefined;
  return {
    event: ev,
    lease: {
      address: ip,
      prefixLength,
      ...(gateway === undefined ? {} : { gateway }),
      dns: list(dns).slice(0, 4),
      ...(m !== undefined && m >= 576 && m <= 9216 ? { mtu: m } : {}),
      ...(secs === undefined ? {} : { leaseSeconds: secs }),
    },
  };
}

/** The script udhcpc runs: prints one tagged line per event, changes nothing. */
export const LEASE_SCRIPT = `#!/bin/sh
# written by duocell: report the DHCP event; duocell configures the interface itself
printf '${LEASE_TAG}|%s|%s|%s|%s|%s|%s|%s|%s\\n' "$1" "$ip" "$subnet" "$router" "$dns" "$mtu" "$lease" "$interface"
exit 0
`;

/** Where the DHCP client is: udhcpc on PATH or in the sbin directories, else busybox's applet. */
export function findUdhcpc(): { cmd: string; pre: string[] } | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  for (const d of dirs) {
    if (d === '') continue;
    const p = path.join(d, 'udhcpc');
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return { cmd: p, pre: [] };
    } catch {
      /* next */
    }
  }
  for (const d of dirs) {
    if (d === '') continue;
    const p = path.join(d, 'busybox');
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return { cmd: p, pre: ['udhcpc'] };
    } catch {
      /* next */
    }
  }
  return undefined;
}

export interface DhcpLeaseOptions {
  readonly ifname: string;
  /** Directory for the event script (default: a fresh one under the OS temp dir). */
  readonly scriptDir?: string;
  /** Override the client (tests). */
  readonly client?: { cmd: string; pre: string[] };
  /** The code of the client's errors (default DC_MODEM_DHCP). */
  readonly code?: 'DC_MODEM_DHCP' | 'DC_WLAN_DHCP';
  /** Said in the no-lease error: what must hold for a server to answer. */
  readonly hint?: string;
}

/**
 * One DHCP client on one interface. Events: 'lease' (Lease: bound, or renewed with changes),
 * 'lost' (reason), 'exit' (code). `acquire()` starts the client and resolves with the first lease.
 */
export class DhcpLease extends EventEmitter {
  readonly #o: DhcpLeaseOptions;
  #proc: ChildProcess | undefined;
  #dir: string | undefined;
  #lease: Lease | undefined;

  constructor(o: DhcpLeaseOptions) {
    super();
    this.#o = o;
  }

  get lease(): Lease | undefined {
    return this.#lease;
  }

  get running(): boolean {
    return this.#proc !== undefined;
  }

  /** Start udhcpc on the interface (which must be up) and wait for the first lease. */
  acquire(timeoutMs: number): Promise<Lease> {
    if (this.#proc) throw new DuocellError('DC_INTERNAL', 'DHCP client already running');
    const client = this.#o.client ?? findUdhcpc();
    if (client === undefined) return Promise.reject(new DuocellError(this.#o.code ?? 'DC_MODEM_DHCP', 'no DHCP client: install the Debian package udhcpc (or busybox)', { origin: 'local' }));
    const dir = this.#o.scriptDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'duocell-dhcp-'));
    if (this.#o.scriptDir === undefined) this.#dir = dir;
    const script = path.join(dir, `lease-${this.#o.ifname}.sh`);
    fs.writeFileSync(script, LEASE_SCRIPT, { mode: 0o700 });
    // -f foreground, -R release on exit, -t/-T/-A: 4 discovers 1 s apart, then 2 s pause; -O mtu: ask for option 26
    const args = [...client.pre, '-f', '-R', '-i', this.#o.ifname, '-s', script, '-t', '4', '-T', '1', '-A', '2', '-O', 'mtu'];
    log.info({ ifname: this.#o.ifname, cmd: client.cmd, args }, 'starting the DHCP client');
    const p = spawn(client.cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#proc = p;
    return new Promise<Lease>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        reject(new DuocellError(this.#o.code ?? 'DC_MODEM_DHCP', `${this.#o.ifname}: no DHCP lease within ${timeoutMs} ms (${this.#o.hint ?? "is the modem's data session active?"})`, { origin: 'device' }));
      }, timeoutMs);
      const done = (err?: DuocellError, l?: Lease): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(l!);
      };
      p.on('error', (e) => done(new DuocellError(this.#o.code ?? 'DC_MODEM_DHCP', `${this.#o.ifname}: DHCP client failed to start: ${e.message}`, { origin: 'local' })));
      let stderr = '';
      p.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-400)));
      readline.createInterface({ input: p.stdout! }).on('line', (line) => {
        let ev: LeaseLine | undefined;
        try {
          ev = parseLeaseLine(line);
        } catch (e) {
          log.warn({ ifname: this.#o.ifname, code: (e as DuocellError).code, err: (e as Error).message }, 'bad DHCP lease line ignored');
          return;
        }
        if (ev === undefined) {
          log.debug({ line }, 'udhcpc');
          return;
        }
        if (ev.event === 'bound' || ev.event === 'renew') {
          const changed = JSON.stringify(ev.lease) !== JSON.stringify(this.#lease);
          this.#lease = ev.lease;
          if (!settled) done(undefined, ev.lease);
          else if (changed) this.emit('lease', ev.lease);
        } else if ((ev.event === 'deconfig' || ev.event === 'nak') && this.#lease !== undefined) {
          this.#lease = undefined;
          this.emit('lost', `DHCP ${ev.event}`);
        }
      });
      p.on('exit', (code, signal) => {
        if (this.#proc === p) this.#proc = undefined;
        done(new DuocellError(this.#o.code ?? 'DC_MODEM_DHCP', `${this.#o.ifname}: DHCP client exited (${signal ?? code}) before a lease: ${stderr.trim().slice(-200)}`, { origin: 'local' }));
        if (this.#lease !== undefined) {
          this.#lease = undefined;
          this.emit('lost', `DHCP client exited (${signal ?? code})`);
        }
        this.emit('exit', code);
      });
    });
  }

  /** Stop the client (it releases the lease); the interface is left to DataInterface. */
  async stop(): Promise<void> {
    const p = this.#proc;
    this.#proc = undefined;
    this.#lease = undefined;
    if (p && p.exitCode === null && p.signalCode === null) {
      const gone = new Promise<void>((r) => p.once('exit', () => r()));
      p.kill('SIGTERM');
      const t = setTimeout(() => p.kill('SIGKILL'), 1000);
      await gone;
      clearTimeout(t);
    }
    if (this.#dir) {
      fs.rmSync(this.#dir, { recursive: true, force: true });
      this.#dir = undefined;
    }
  }
}

import { DuocellError, toDuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import type { ModemFamily } from '../../protocols/at/vendors.js';
import type { AtClient } from './at.js';
import { DhcpLease, type Lease } from './dhcp-lease.js';
import type { WdsSettings } from './manager.js';

/**
 * The data session of an AT-controlled modem whose data side is an Ethernet-like USB netdev
 * (ECM/NCM/RNDIS, `usb0`) with the module as DHCP server — the kernel here has no PPP.
 *
 *   connect():
 *     1. AT+CGDCONT=<cid>,"IP","<apn>"                    define the PDP context (27.007 §10.1.1)
 *     2. activate, by family:
 *          Quectel: AT+QNETDEVCTL=1,<cid>,1               bring the context up on the USB netdev
 *                   (Quectel "LTE Standard/5G Module Series ... ECM/RNDIS" application notes and the
 *                   EC2x/EG2x/RM5xx AT manuals: <op> 1 connect / 0 disconnect, <cid>, <urc_en>)
 *          others:  AT+CGACT=1,<cid>                      27.007 §10.1.10 PDP context activate (ECM
 *                   firmwares bridge the active default context to the netdev)
 *     3. link usb0 up, run the DHCP client (udhcpc, dhcp-lease.ts) until the first lease
 *     4. the lease → WdsSettings (IPv4: address/prefix, gateway, DNS, MTU); the manager applies
 *        it through DataInterface (rtnetlink), exactly as the QMI session's settings
 *   poll(): AT+QNETDEVCTL? (Quectel: 4th field <state> 1 = connected) or AT+CGACT? (<cid>,1)
 *   disconnect(): stop the DHCP client (release), AT+QNETDEVCTL=0,<cid>,0 | AT+CGACT=0,<cid>
 *
 * IPv4 only: the module's ECM LAN is IPv4 (its IPv6 comes by SLAAC from the module's RA, which
 * the kernel would take on its own; not used for the path here). Errors: DC_MODEM_CONNECT for
 * the AT steps, DC_MODEM_DHCP for the lease.
 */

const log = logger('duocell:modem:at-data');

export interface AtDataOptions {
  readonly ifname: string;
  readonly apn: string;
  readonly cid?: number;
  readonly username?: string;
  readonly password?: string;
  readonly family: ModemFamily;
  /** Bring the interface up (DHCP needs it up before it has an address). */
  readonly linkUp: (ifname: string) => Promise<void>;
  readonly leaseTimeoutMs?: number;
  /** Tests may inject another lease source. */
  readonly lease?: () => DhcpLease;
}

const isQuectel = (f: ModemFamily): boolean => f === 'quectel' || f === 'quectel-ec2x';

/** The AT command lines of one session, by family (exported for tests and the pass-through's deny list). */
export function atDataCommands(family: ModemFamily, cid: number, apn: string): { define: string; activate: string; query: string; deactivate: string } {
  const safeApn = apn.replace(/["\r\n]/g, '');
  return isQuectel(family)
    ? { define: `AT+CGDCONT=${cid},"IP","${safeApn}"`, activate: `AT+QNETDEVCTL=1,${cid},1`, query: 'AT+QNETDEVCTL?', deactivate: `AT+QNETDEVCTL=0,${cid},0` }
    : { define: `AT+CGDCONT=${cid},"IP","${safeApn}"`, activate: `AT+CGACT=1,${cid}`, query: 'AT+CGACT?', deactivate: `AT+CGACT=0,${cid}` };
}

/** Is the session up, from the query's reply lines? Pure. */
export function dataActive(family: ModemFamily, cid: number, lines: readonly string[]): boolean {
  for (const l of lines) {
    const s = l.trim();
    if (isQuectel(family)) {
      // +QNETDEVCTL: <op>,<cid>,<urc_en>,<state>
      const m = /^\+QNETDEVCTL:\s*(\d+),\s*(\d+),\s*(\d+),\s*(\d+)/i.exec(s);
      if (m && Number(m[2]) === cid) return Number(m[4]) === 1;
    } else {
      // +CGACT: <cid>,<state>
      const m = /^\+CGACT:\s*(\d+),\s*(\d+)/i.exec(s);
      if (m && Number(m[1]) === cid) return Number(m[2]) === 1;
    }
  }
  return false;
}

export class AtDataSession {
  readonly #o: AtDataOptions;
  readonly #cid: number;
  #lease: DhcpLease | undefined;
  #active = false;
  /** Called when the lease is lost or changes address while up (the manager drops the path). */
  onLost: ((why: string) => void) | undefined;

  constructor(o: AtDataOptions) {
    this.#o = o;
    this.#cid = o.cid ?? 1;
  }

  get active(): boolean {
    return this.#active;
  }

  async connect(at: AtClient, timeoutMs: number): Promise<WdsSettings> {
    const cmds = atDataCommands(this.#o.family, this.#cid, this.#o.apn);
    const step = async (what: string, cmd: string, t = 5000): Promise<void> => {
      try {
        await at.command(cmd, { timeoutMs: t });
      } catch (e) {
        const d = toDuocellError(e);
        if (d.code === 'DC_MODEM_CLOSED' || d.code === 'DC_MODEM_PORT') throw d;
        throw new DuocellError('DC_MODEM_CONNECT', `${what} (${cmd.replace(/"[^"]*"$/, '"…"')}) failed: ${d.code}: ${d.message}`, { origin: d.origin, cause: d });
      }
    };
    await step('define the PDP context', cmds.define);
    if (this.#o.username) {
      // 27.007 §10.1.31 +CGAUTH=<cid>,<auth_prot 3 = PAP or CHAP>,<userid>,<password>
      const q = (s: string): string => s.replace(/["\r\n]/g, '');
      await step('PDP authentication', `AT+CGAUTH=${this.#cid},3,"${q(this.#o.username)}","${q(this.#o.password ?? '')}"`).catch((e: DuocellError) => log.warn({ code: e.code }, e.message));
    }
    await step('activate the data session', cmds.activate, Math.max(5000, Math.min(timeoutMs, 30_000)));
    this.#active = true;
    await this.#o.linkUp(this.#o.ifname);
    const lease = this.#o.lease?.() ?? new DhcpLease({ ifname: this.#o.ifname });
    this.#lease = lease;
    lease.on('lost', (why: string) => {
      if (this.#lease === lease) this.onLost?.(why);
    });
    lease.on('lease', (l: Lease) => {
      if (this.#lease === lease) this.onLost?.(`DHCP lease changed to ${l.address}/${l.prefixLength}`);
    });
    let l: Lease;
    try {
      l = await lease.acquire(this.#o.leaseTimeoutMs ?? Math.min(timeoutMs, 20_000));
    } catch (e) {
      await this.disconnect(at, 'no DHCP lease').catch(() => undefined);
      throw e;
    }
    const { leaseSeconds: _s, ...ipv4 } = l;
    log.info({ ifname: this.#o.ifname, address: l.address, prefixLength: l.prefixLength, gateway: l.gateway }, 'DHCP lease on the modem netdev');
    return { apn: this.#o.apn, interface: this.#o.ifname, ipv4 };
  }

  /** The modem's own view of the session (false = it ended it). */
  async poll(at: AtClient): Promise<boolean> {
    const cmds = atDataCommands(this.#o.family, this.#cid, this.#o.apn);
    const r = await at.command(cmds.query, { timeoutMs: 3000 });
    return dataActive(this.#o.family, this.#cid, r.lines);
  }

  async disconnect(at: AtClient | undefined, why: string): Promise<void> {
    const lease = this.#lease;
    this.#lease = undefined;
    await lease?.stop().catch(() => undefined);
    const was = this.#active;
    this.#active = false;
    if (was && at && !at.closed) {
      const cmds = atDataCommands(this.#o.family, this.#cid, this.#o.apn);
      await at.command(cmds.deactivate, { timeoutMs: 3000 }).catch((e: Error) => log.debug({ err: e.message }, 'deactivation refused'));
    }
    if (was) log.info({ why }, 'AT data session ended');
  }
}

import { DuocellError, toDuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import type { ModemFamily } from '../../protocols/at/vendors.js';
import type { AtClient } from './at.js';
import { DhcpLease, type Lease } from './dhcp-lease.js';
import type { DataSession } from './data-session.js';
import type { WdsSettings } from './types.js';

/**
 * The data session of an AT-controlled modem whose data side is an Ethernet-like USB netdev
 * (ECM/NCM/RNDIS, `usb0`) with the module as DHCP server — the kernel here has no PPP.
 *
 *   start():
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
 *   check(): AT+QNETDEVCTL? (Quectel: 4th field <state> 1 = connected) or AT+CGACT? (<cid>,1)
 *   stop(): stop the DHCP client (release), AT+QNETDEVCTL=0,<cid>,0 | AT+CGACT=0,<cid>
 *
 * IPv4 only: the module's ECM LAN is IPv4 (its IPv6 comes by SLAAC from the module's RA, which
 * the kernel would take on its own; not used for the path here). Errors: DC_MODEM_CONNECT for
 * the AT steps, DC_MODEM_DHCP for the lease.
 */

const log = logger('duocell:modem:at-data');

export interface AtDataOptions {
  /** The manager's AT port (undefined while closed). */
  readonly at: () => AtClient | undefined;
  /** The modem family, known once the port was probed. */
  readonly family: () => ModemFamily;
  readonly ifname: string;
  readonly apn: string;
  readonly cid?: number;
  readonly username?: string;
  readonly password?: string;
  /** Bring the interface up (DHCP needs it up before it has an address). */
  readonly linkUp: (ifname: string) => Promise<void>;
  readonly connectTimeoutMs: number;
  readonly leaseTimeoutMs?: number;
  /** Tests may inject another lease source. */
  readonly lease?: () => DhcpLease;
  /** Called when the lease is lost or changes address while up (the manager drops the path). */
  readonly dropped: (why: string) => void;
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

/** The AT data session as the manager's DataSession unit (see data-session.ts). */
export class AtDataSession implements DataSession {
  readonly kind = 'at';
  readonly refusalCodes = ['DC_MODEM_CONNECT', 'DC_MODEM_DHCP'];
  readonly #o: AtDataOptions;
  readonly #cid: number;
  #lease: DhcpLease | undefined;
  #active = false;

  constructor(o: AtDataOptions) {
    this.#o = o;
    this.#cid = o.cid ?? 1;
  }

  get active(): boolean {
    return this.#active;
  }

  #at(): AtClient {
    const at = this.#o.at();
    if (at === undefined) throw new DuocellError('DC_MODEM_CLOSED', 'no AT port');
    return at;
  }

  async start(): Promise<WdsSettings> {
    const at = this.#at();
    const timeoutMs = this.#o.connectTimeoutMs;
    const cmds = atDataCommands(this.#o.family(), this.#cid, this.#o.apn);
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
      if (this.#lease === lease) this.#o.dropped(why);
    });
    lease.on('lease', (l: Lease) => {
      if (this.#lease === lease) this.#o.dropped(`DHCP lease changed to ${l.address}/${l.prefixLength}`);
    });
    let l: Lease;
    try {
      l = await lease.acquire(this.#o.leaseTimeoutMs ?? Math.min(timeoutMs, 20_000));
    } catch (e) {
      await this.stop('no DHCP lease', true).catch(() => undefined);
      throw e;
    }
    const { leaseSeconds: _s, ...ipv4 } = l;
    log.info({ ifname: this.#o.ifname, address: l.address, prefixLength: l.prefixLength, gateway: l.gateway }, 'DHCP lease on the modem netdev');
    return { apn: this.#o.apn, interface: this.#o.ifname, ipv4 };
  }

  /** The modem's own view of the session; a refused query says nothing about it. */
  async check(): Promise<string | undefined> {
    const family = this.#o.family();
    const cmds = atDataCommands(family, this.#cid, this.#o.apn);
    try {
      const r = await this.#at().command(cmds.query, { timeoutMs: 3000 });
      return dataActive(family, this.#cid, r.lines) ? undefined : 'the modem reports the data session inactive (polled)';
    } catch (e) {
      const d = toDuocellError(e);
      if (d.code === 'DC_MODEM_CLOSED' || d.code === 'DC_MODEM_PORT') throw d;
      return undefined;
    }
  }

  async stop(why: string, talk: boolean): Promise<void> {
    const lease = this.#lease;
    this.#lease = undefined;
    await lease?.stop().catch(() => undefined);
    const was = this.#active;
    this.#active = false;
    const at = talk ? this.#o.at() : undefined;
    if (was && at && !at.closed) {
      const cmds = atDataCommands(this.#o.family(), this.#cid, this.#o.apn);
      await at.command(cmds.deactivate, { timeoutMs: 3000 }).catch((e: Error) => log.debug({ err: e.message }, 'deactivation refused'));
    }
    if (was) log.info({ why }, 'AT data session ended');
  }
}

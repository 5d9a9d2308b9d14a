import { EventEmitter } from 'node:events';
import { DuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import {
  Cmd, decodeEndpoint, decodeLimits, encode, MPTCP_PM_EV_GRP_NAME, MPTCP_PM_NAME, MPTCP_PM_VER, parseEvent,
  type Endpoint, type EndpointFlagName, type Limits, type MptcpEvent, type PmAddress,
} from '../../protocols/mptcp-pm/index.js';
import { encodeGenl, type AttrOut, type GenlFamily, type NlMessage } from '../../protocols/netlink/index.js';
import { NetlinkChannel } from './channel.js';
import { openGenl, resolveFamily } from './genl.js';
import type { NetlinkTransport } from './transport.js';

export type { Endpoint, EndpointFlagName, Limits, MptcpEvent, PmAddress } from '../../protocols/mptcp-pm/index.js';

/**
 * Typed client of the kernel's MPTCP path manager (generic netlink family `mptcp_pm`).
 *
 * - in-kernel PM (net.mptcp.path_manager=kernel): limits and endpoints (subflow, signal,
 *   backup, fullmesh), applied by the kernel to every connection;
 * - userspace PM (net.mptcp.path_manager=userspace, per network namespace): the kernel creates
 *   no subflow and announces nothing by itself; announce/remove/subflowCreate/subflowDestroy/
 *   setSubflowFlags act on one connection (its token, from the 'created' event);
 * - events: every mptcp_pm event, parsed and validated (protocols/mptcp-pm parseEvent); a
 *   malformed or unknown one is logged with its bytes and dropped, counted in `dropped`.
 *
 * Everything happens in the network namespace of this process.
 */

const log = logger('duocell:netlink:mptcp-pm');

export interface MptcpPmEvents {
  event: [MptcpEvent];
  /** The raw genl payload of every event (for capture and tracing). */
  raw: [Buffer, NlMessage];
  /** Events were lost (socket overrun): callers should resynchronise from dumps. */
  lost: [DuocellError];
}

export interface MptcpPmOptions {
  /** Transport for requests (default: a kernel NETLINK_GENERIC socket). */
  transport?: NetlinkTransport;
  /** Transport for the event socket (default: another kernel socket, opened on subscribe()). */
  eventTransport?: NetlinkTransport;
  timeoutMs?: number;
}

export class MptcpPm extends EventEmitter<MptcpPmEvents> {
  readonly family: GenlFamily;
  readonly #ch: NetlinkChannel;
  #events: NetlinkChannel | undefined;
  readonly #opts: MptcpPmOptions;
  /** Events dropped because they did not parse. */
  dropped = 0;

  private constructor(ch: NetlinkChannel, family: GenlFamily, opts: MptcpPmOptions) {
    super();
    this.#ch = ch;
    this.family = family;
    this.#opts = opts;
  }

  /** Resolve the family (DC_NETLINK_FAMILY_MISSING if the kernel has no MPTCP) and return a client. */
  static async open(opts: MptcpPmOptions = {}): Promise<MptcpPm> {
    const ch = openGenl(opts.transport, { timeoutMs: opts.timeoutMs });
    try {
      const fam = await resolveFamily(ch, MPTCP_PM_NAME);
      return new MptcpPm(ch, fam, opts);
    } catch (e) {
      ch.close();
      throw e;
    }
  }

  async #do(cmd: number, attrs: AttrOut[], what: string, flags = 0): Promise<NlMessage[]> {
    return this.#ch.request(this.family.id, encodeGenl(cmd, MPTCP_PM_VER, attrs), { what: `mptcp_pm ${what}`, flags });
  }

  // --- limits ----------------------------------------------------------------------------------

  async limits(): Promise<Limits> {
    const r = await this.#do(Cmd.GET_LIMITS, [], 'GET_LIMITS');
    const m = r.find((x) => x.type === this.family.id);
    if (m === undefined) throw new DuocellError('DC_NETLINK_MALFORMED', 'mptcp_pm GET_LIMITS: no reply before the ACK');
    return decodeLimits(m.payload);
  }

  async setLimits(l: Partial<Limits>): Promise<void> {
    await this.#do(Cmd.SET_LIMITS, encode.setLimits(l), `SET_LIMITS ${JSON.stringify(l)}`);
  }

  // --- endpoints (in-kernel PM) ----------------------------------------------------------------

  async addEndpoint(e: PmAddress): Promise<void> {
    await this.#do(Cmd.ADD_ADDR, encode.addEndpoint(e), `ADD_ADDR ${e.address}${e.id === undefined ? '' : ` id ${e.id}`}`);
  }

  async deleteEndpoint(id: number, address?: string): Promise<void> {
    await this.#do(Cmd.DEL_ADDR, encode.delEndpoint(address === undefined ? { id } : { id, address }), `DEL_ADDR id ${id}`);
  }

  async flushEndpoints(): Promise<void> {
    await this.#do(Cmd.FLUSH_ADDRS, [], 'FLUSH_ADDRS');
  }

  async endpoint(id: number): Promise<Endpoint> {
    const r = await this.#do(Cmd.GET_ADDR, encode.getEndpoint(id), `GET_ADDR id ${id}`);
    const m = r.find((x) => x.type === this.family.id);
    if (m === undefined) throw new DuocellError('DC_NETLINK_MALFORMED', `mptcp_pm GET_ADDR id ${id}: no reply before the ACK`);
    return decodeEndpoint(m.payload);
  }

  async endpoints(): Promise<Endpoint[]> {
    const parts = await this.#ch.dump(this.family.id, encodeGenl(Cmd.GET_ADDR, MPTCP_PM_VER), { what: 'mptcp_pm GET_ADDR dump' });
    const out: Endpoint[] = [];
    for (const p of parts) {
      if (p.type !== this.family.id) continue;
      try {
        out.push(decodeEndpoint(p.payload));
      } catch (e) {
        log.warn({ err: e, hex: p.payload.toString('hex') }, 'malformed endpoint in dump skipped');
      }
    }
    return out;
  }

  async setEndpointFlags(e: { id?: number; address?: string; flags: readonly EndpointFlagName[] | number }): Promise<void> {
    await this.#do(Cmd.SET_FLAGS, encode.setEndpointFlags(e), `SET_FLAGS ${e.id ?? e.address}`);
  }

  // --- userspace PM, per connection --------------------------------------------------------------

  async announce(token: number, local: PmAddress & { id: number }): Promise<void> {
    await this.#do(Cmd.ANNOUNCE, encode.announce(token, local), `ANNOUNCE token ${token} ${local.address} id ${local.id}`);
  }

  async remove(token: number, locId: number): Promise<void> {
    await this.#do(Cmd.REMOVE, encode.remove(token, locId), `REMOVE token ${token} id ${locId}`);
  }

  async subflowCreate(token: number, local: PmAddress & { id: number }, remote: { address: string; port: number }): Promise<void> {
    await this.#do(Cmd.SUBFLOW_CREATE, encode.subflowCreate(token, local, remote), `SUBFLOW_CREATE token ${token} ${local.address} → ${remote.address}:${remote.port}`);
  }

  async subflowDestroy(token: number, local: { address: string; port: number }, remote: { address: string; port: number }): Promise<void> {
    await this.#do(Cmd.SUBFLOW_DESTROY, encode.subflowDestroy(token, local, remote), `SUBFLOW_DESTROY token ${token} ${local.address}:${local.port} → ${remote.address}:${remote.port}`);
  }

  async setSubflowFlags(token: number, local: { address: string; port?: number }, remote: { address: string; port: number }, flags: readonly EndpointFlagName[] | number): Promise<void> {
    await this.#do(Cmd.SET_FLAGS, encode.setSubflowFlags(token, local, remote, flags), `SET_FLAGS token ${token}`);
  }

  // --- events ----------------------------------------------------------------------------------

  /** Join the mptcp_pm_events group; 'event' fires for every valid event from then on. */
  subscribe(): void {
    if (this.#events !== undefined) return;
    const group = this.family.groups[MPTCP_PM_EV_GRP_NAME];
    if (group === undefined) throw new DuocellError('DC_NETLINK_FAMILY_MISSING', `mptcp_pm has no ${MPTCP_PM_EV_GRP_NAME} group`);
    const ch = openGenl(this.#opts.eventTransport);
    ch.transport.addMembership(group);
    ch.on('notification', (m) => this.#onNotification(m));
    ch.on('lost', (e) => this.emit('lost', e));
    ch.listen(true);
    this.#events = ch;
  }

  /** Feed one notification (exposed for replaying captured bytes). */
  #onNotification(m: NlMessage): void {
    if (m.type !== this.family.id) return;
    let ev: MptcpEvent;
    try {
      ev = parseEvent(m.payload);
    } catch (e) {
      this.dropped++;
      log.warn({ err: e, hex: m.payload.toString('hex') }, 'mptcp_pm event dropped');
      return;
    }
    try {
      this.emit('raw', m.payload, m);
      this.emit('event', ev);
    } catch (e) {
      log.error({ err: e, event: ev.type }, 'an mptcp_pm event listener threw');
    }
  }

  unsubscribe(): void {
    this.#events?.close();
    this.#events = undefined;
  }

  close(): void {
    this.unsubscribe();
    this.#ch.close();
  }
}

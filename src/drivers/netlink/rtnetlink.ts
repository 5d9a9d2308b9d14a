import { EventEmitter } from 'node:events';
import { DuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import {
  decodeAddress, decodeLink, decodeRoute, decodeRtnl, decodeRule, encodeAddressMsg, encodeFamilyDump, encodeLinkMsg,
  encodeRouteMsg, encodeRuleMsg, IFA_F_NODAD, IFF_UP, RT_SCOPE_NOWHERE, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, RTM, RTNLGRP, RTPROT_DUOCELL,
  type Address, type Link, type NlMessage, type Route, type RouteSpec, type Rule, type RuleSpec, type RtnlObject,
} from '../../protocols/netlink/index.js';
import { NetlinkChannel } from './channel.js';
import { NETLINK_ROUTE, openKernelTransport, type NetlinkTransport } from './transport.js';

export type { Address, Link, Route, RouteSpec, Rule, RuleSpec, RtnlObject } from '../../protocols/netlink/index.js';

/**
 * rtnetlink client: links, addresses, routes and policy rules (add/delete/dump) and a typed
 * change stream, over our own codec (no `ip` subprocesses). Everything in this process's
 * network namespace.
 */

const log = logger('duocell:netlink:rtnl');

export interface RtnlEvents {
  change: [RtnlObject];
  link: [{ op: 'new' | 'del'; link: Link }];
  address: [{ op: 'new' | 'del'; address: Address }];
  route: [{ op: 'new' | 'del'; route: Route }];
  rule: [{ op: 'new' | 'del'; rule: Rule }];
  /** Notifications were lost (ENOBUFS): re-read state with the dumps. */
  lost: [DuocellError];
}

export type RtnlGroup = keyof typeof RTNLGRP;

export class Rtnl extends EventEmitter<RtnlEvents> {
  readonly #ch: NetlinkChannel;
  #events: NetlinkChannel | undefined;
  readonly #eventTransport: NetlinkTransport | undefined;

  constructor(opts: { transport?: NetlinkTransport; eventTransport?: NetlinkTransport; timeoutMs?: number } = {}) {
    super();
    this.#ch = new NetlinkChannel(opts.transport ?? openKernelTransport(NETLINK_ROUTE), { timeoutMs: opts.timeoutMs });
    this.#eventTransport = opts.eventTransport;
  }

  static open(opts: { transport?: NetlinkTransport; eventTransport?: NetlinkTransport; timeoutMs?: number } = {}): Rtnl {
    return new Rtnl(opts);
  }

  #decodeAll<T>(parts: NlMessage[], type: number, decode: (p: Buffer) => T, what: string): T[] {
    const out: T[] = [];
    for (const m of parts) {
      if (m.type !== type) continue;
      try {
        out.push(decode(m.payload));
      } catch (e) {
        log.warn({ err: e, what, hex: m.payload.subarray(0, 128).toString('hex') }, 'malformed rtnetlink object skipped');
      }
    }
    return out;
  }

  // --- links ---------------------------------------------------------------------------------

  async links(): Promise<Link[]> {
    const parts = await this.#ch.dump(RTM.GETLINK, encodeLinkMsg(), { what: 'RTM_GETLINK dump' });
    return this.#decodeAll(parts, RTM.NEWLINK, decodeLink, 'link');
  }

  async link(nameOrIndex: string | number): Promise<Link | undefined> {
    try {
      const r = await this.#ch.request(RTM.GETLINK, typeof nameOrIndex === 'number' ? encodeLinkMsg({ index: nameOrIndex }) : encodeLinkMsg({ name: nameOrIndex }), { what: `RTM_GETLINK ${nameOrIndex}` });
      return this.#decodeAll(r, RTM.NEWLINK, decodeLink, 'link')[0];
    } catch (e) {
      if (e instanceof DuocellError && e.code === 'DC_NETLINK_ERRNO' && (e.errno === 19 || e.errno === 2)) return undefined;
      throw e;
    }
  }

  /** Byte counters of an interface (IFLA_STATS64), for the paths service's throughput. */
  async counters(ifname: string): Promise<{ rxBytes: number; txBytes: number } | undefined> {
    const l = await this.link(ifname);
    return l?.stats === undefined ? undefined : { rxBytes: l.stats.rxBytes, txBytes: l.stats.txBytes };
  }

  /** Bring a link administratively up or down (ip link set dev X up|down). */
  async setLinkUp(index: number, up: boolean): Promise<void> {
    await this.#ch.request(RTM.NEWLINK, encodeLinkMsg({ index, flags: up ? IFF_UP : 0, change: IFF_UP }), { what: `RTM_NEWLINK ${index} ${up ? 'up' : 'down'}` });
  }

  /** Set a link's MTU (ip link set dev X mtu N). */
  async setMtu(index: number, mtu: number): Promise<void> {
    await this.#ch.request(RTM.NEWLINK, encodeLinkMsg({ index, mtu }), { what: `RTM_NEWLINK ${index} mtu ${mtu}` });
  }

  // --- addresses -----------------------------------------------------------------------------

  async addresses(family?: 4 | 6): Promise<Address[]> {
    const parts = await this.#ch.dump(RTM.GETADDR, encodeFamilyDump(family, 8), { what: 'RTM_GETADDR dump' });
    return this.#decodeAll(parts, RTM.NEWADDR, decodeAddress, 'address');
  }

  async addAddress(index: number, address: string, prefixLen: number, opts: { replace?: boolean; nodad?: boolean } = {}): Promise<void> {
    await this.#ch.request(RTM.NEWADDR, encodeAddressMsg({ index, address, prefixLen, ...(opts.nodad === true ? { flags: IFA_F_NODAD } : {}) }), {
      what: `RTM_NEWADDR ${address}/${prefixLen} dev ${index}`,
      flags: NLM_F_CREATE | (opts.replace === true ? NLM_F_REPLACE : NLM_F_EXCL),
    });
  }

  async deleteAddress(index: number, address: string, prefixLen: number): Promise<void> {
    await this.#ch.request(RTM.DELADDR, encodeAddressMsg({ index, address, prefixLen }), { what: `RTM_DELADDR ${address}/${prefixLen}` });
  }

  // --- routes --------------------------------------------------------------------------------

  /** Routes of one family (both if omitted), optionally only those of one table. */
  async routes(o: { family?: 4 | 6; table?: number } = {}): Promise<Route[]> {
    // per family: an AF_UNSPEC dump also returns multicast (IPMR) routes of other families
    const all: Route[] = [];
    for (const fam of o.family === undefined ? ([4, 6] as const) : [o.family]) {
      const parts = await this.#ch.dump(RTM.GETROUTE, encodeFamilyDump(fam, 12), { what: `RTM_GETROUTE dump IPv${fam}` });
      all.push(...this.#decodeAll(parts, RTM.NEWROUTE, decodeRoute, 'route'));
    }
    return o.table === undefined ? all : all.filter((r) => r.table === o.table);
  }

  /** Add (or with replace: add-or-replace) a route; our routes carry protocol RTPROT_DUOCELL. */
  async addRoute(r: RouteSpec, opts: { replace?: boolean } = {}): Promise<void> {
    await this.#ch.request(RTM.NEWROUTE, encodeRouteMsg(r), {
      what: `RTM_NEWROUTE ${r.dst} table ${r.table}`,
      flags: NLM_F_CREATE | (opts.replace === true ? NLM_F_REPLACE : NLM_F_EXCL),
    });
  }

  async deleteRoute(r: RouteSpec): Promise<void> {
    await this.#ch.request(RTM.DELROUTE, encodeRouteMsg({ ...r, protocol: r.protocol ?? 0, scope: r.scope ?? RT_SCOPE_NOWHERE }), { what: `RTM_DELROUTE ${r.dst} table ${r.table}` });
  }

  // --- rules ---------------------------------------------------------------------------------

  async rules(family?: 4 | 6): Promise<Rule[]> {
    // per family: an AF_UNSPEC dump also returns the IPMR/IP6MR rules (families 128, 129)
    const out: Rule[] = [];
    for (const fam of family === undefined ? ([4, 6] as const) : [family]) {
      const parts = await this.#ch.dump(RTM.GETRULE, encodeFamilyDump(fam, 12), { what: `RTM_GETRULE dump IPv${fam}` });
      out.push(...this.#decodeAll(parts, RTM.NEWRULE, decodeRule, 'rule'));
    }
    return out;
  }

  async addRule(r: RuleSpec): Promise<void> {
    await this.#ch.request(RTM.NEWRULE, encodeRuleMsg(r), { what: `RTM_NEWRULE from ${r.src ?? 'all'} table ${r.table}`, flags: NLM_F_CREATE | NLM_F_EXCL });
  }

  async deleteRule(r: RuleSpec): Promise<void> {
    await this.#ch.request(RTM.DELRULE, encodeRuleMsg({ ...r, protocol: r.protocol ?? RTPROT_DUOCELL }), { what: `RTM_DELRULE from ${r.src ?? 'all'} table ${r.table}` });
  }

  // --- change stream -------------------------------------------------------------------------

  /** Join rtnetlink groups (default: links, addresses, routes, rules of both families). */
  subscribe(groups: readonly RtnlGroup[] = ['LINK', 'IPV4_IFADDR', 'IPV6_IFADDR', 'IPV4_ROUTE', 'IPV6_ROUTE', 'IPV4_RULE', 'IPV6_RULE']): void {
    if (this.#events === undefined) {
      const ch = new NetlinkChannel(this.#eventTransport ?? openKernelTransport(NETLINK_ROUTE));
      ch.on('notification', (m) => this.#onNotification(m));
      ch.on('lost', (e) => this.emit('lost', e));
      ch.listen(true);
      this.#events = ch;
    }
    for (const g of groups) this.#events.transport.addMembership(RTNLGRP[g]);
  }

  #onNotification(m: NlMessage): void {
    let o: RtnlObject | undefined;
    const fam = m.payload.length > 0 ? m.payload.readUInt8(0) : 0;
    if ((m.type === RTM.NEWRULE || m.type === RTM.DELRULE || m.type === RTM.NEWROUTE || m.type === RTM.DELROUTE) && fam !== 2 && fam !== 10) return;
    try {
      o = decodeRtnl(m.type, m.payload);
    } catch (e) {
      log.warn({ err: e, type: m.type, hex: m.payload.subarray(0, 128).toString('hex') }, 'malformed rtnetlink notification dropped');
      return;
    }
    if (o === undefined) return;
    try {
      this.emit('change', o);
      switch (o.kind) {
        case 'link': this.emit('link', { op: o.op, link: o.link }); break;
        case 'address': this.emit('address', { op: o.op, address: o.address }); break;
        case 'route': this.emit('route', { op: o.op, route: o.route }); break;
        case 'rule': this.emit('rule', { op: o.op, rule: o.rule }); break;
      }
    } catch (e) {
      log.error({ err: e, kind: o.kind }, 'an rtnetlink listener threw');
    }
  }

  close(): void {
    this.#events?.close();
    this.#events = undefined;
    this.#ch.close();
  }
}

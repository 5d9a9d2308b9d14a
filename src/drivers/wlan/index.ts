import { EventEmitter } from 'node:events';
import { DuocellError, toDuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import { performance } from 'node:perf_hooks';
import {
  Cmd, decodeInterface, decodeLinkEvent, decodeScanResult, decodeStation, encode, NL80211_MLME_GROUP, NL80211_NAME,
  type Bss, type IfType, type LinkEvent, type StationInfo, type WlanInterface,
} from '../../protocols/nl80211/index.js';
import { encodeGenl, type GenlFamily, type NlMessage } from '../../protocols/netlink/index.js';
import type { NetlinkChannel } from '../netlink/channel.js';
import { openGenl, resolveFamily } from '../netlink/genl.js';
import type { Link, Rtnl } from '../netlink/rtnetlink.js';
import type { NetlinkTransport } from '../netlink/transport.js';

export type { Bss, IfType, LinkEvent, StationInfo, WlanInterface } from '../../protocols/nl80211/index.js';

/**
 * The WLAN radio: nl80211 for radio facts (mode, SSID, signal, bitrates, the stations we
 * serve in AP mode, scan results) and rtnetlink for link state. Where the kernel has no
 * cfg80211 (nl80211 family absent), the driver degrades: link state from rtnetlink only,
 * radio quality 'unknown' — logged once with DC_WLAN_UNAVAILABLE, never fatal.
 *
 *   start() ─► rtnetlink link of ifname (present/up) ─┐
 *              nl80211 present? ── no ──► quality unknown ├─► 'state' on every change
 *                               └─ yes ─► every pollMs: interface, associated BSS,
 *                                          station info (STA) or station dump (AP)
 *   nl80211 "mlme" events of ifname:
 *     deauthenticate / disassociate / disconnect ─► up=false at once (no request first), then re-read
 *     associate / connect / roam                 ─► re-read at once (not at the next poll)
 *
 * A station is up when its link is up (carrier, operstate) and nl80211 names an associated BSS.
 * nl80211 absent at start (cfg80211 not loaded yet): asked again whenever the interface
 * appears or changes, so a radio whose module loads later is picked up.
 */

const log = logger('duocell:wlan');

/** Typed nl80211 requests. */
export class Nl80211 {
  private constructor(
    readonly family: GenlFamily,
    readonly ch: NetlinkChannel,
  ) {}

  /** DC_NETLINK_FAMILY_MISSING when the kernel has no cfg80211. */
  static async open(opts: { transport?: NetlinkTransport; timeoutMs?: number } = {}): Promise<Nl80211> {
    const ch = openGenl(opts.transport, { timeoutMs: opts.timeoutMs ?? 3000 });
    try {
      return new Nl80211(await resolveFamily(ch, NL80211_NAME), ch);
    } catch (e) {
      ch.close();
      throw e;
    }
  }

  #decode<T>(parts: NlMessage[], decode: (p: Buffer) => T, what: string): T[] {
    const out: T[] = [];
    for (const m of parts) {
      if (m.type !== this.family.id) continue;
      try {
        out.push(decode(m.payload));
      } catch (e) {
        log.warn({ err: e, what }, 'malformed nl80211 message skipped');
      }
    }
    return out;
  }

  async interfaces(): Promise<WlanInterface[]> {
    const parts = await this.ch.dump(this.family.id, encodeGenl(Cmd.GET_INTERFACE, 0), { what: 'nl80211 GET_INTERFACE dump' });
    return this.#decode(parts, decodeInterface, 'interface');
  }

  /** DC_WLAN_NO_INTERFACE when the kernel says the interface is not a wireless one (ENODEV). */
  async interface(ifindex: number): Promise<WlanInterface | undefined> {
    try {
      const parts = await this.ch.request(this.family.id, encodeGenl(Cmd.GET_INTERFACE, 0, encode.getInterface(ifindex)), { what: `nl80211 GET_INTERFACE ${ifindex}` });
      return this.#decode(parts, decodeInterface, 'interface')[0];
    } catch (e) {
      if (e instanceof DuocellError && e.code === 'DC_NETLINK_ERRNO' && e.errno === 19) {
        throw new DuocellError('DC_WLAN_NO_INTERFACE', `interface ${ifindex} is not a wireless interface`, { origin: 'kernel', errno: 19, cause: e });
      }
      throw e;
    }
  }

  /** Every station of an interface: the AP we are associated to (STA) or our clients (AP). */
  async stations(ifindex: number): Promise<StationInfo[]> {
    const parts = await this.ch.dump(this.family.id, encodeGenl(Cmd.GET_STATION, 0, encode.getStation(ifindex)), { what: `nl80211 GET_STATION dump ${ifindex}` });
    return this.#decode(parts, decodeStation, 'station');
  }

  async scanResults(ifindex: number): Promise<Bss[]> {
    const parts = await this.ch.dump(this.family.id, encodeGenl(Cmd.GET_SCAN, 0, encode.getScan(ifindex)), { what: `nl80211 GET_SCAN dump ${ifindex}` });
    return this.#decode(parts, decodeScanResult, 'scan result');
  }

  /**
   * Join the connection-event group on a socket of its own; `cb` gets each event with the
   * monotonic time (performance.now()) at which its datagram was handled.
   */
  subscribeLinkEvents(cb: (ev: LinkEvent, atMs: number) => void, transport?: NetlinkTransport): void {
    if (this.#events !== undefined) return;
    const group = this.family.groups[NL80211_MLME_GROUP];
    if (group === undefined) throw new DuocellError('DC_NETLINK_FAMILY_MISSING', `nl80211 has no ${NL80211_MLME_GROUP} group`);
    const ch = openGenl(transport);
    ch.transport.addMembership(group);
    ch.on('notification', (m) => {
      const at = performance.now();
      if (m.type !== this.family.id) return;
      let ev: LinkEvent | undefined;
      try {
        ev = decodeLinkEvent(m.payload);
      } catch (e) {
        log.warn({ err: e, hex: m.payload.subarray(0, 64).toString('hex') }, 'malformed nl80211 event dropped');
        return;
      }
      if (ev === undefined) return;
      try {
        cb(ev, at);
      } catch (e) {
        log.error({ err: e }, 'an nl80211 event listener threw');
      }
    });
    ch.on('lost', (e) => log.warn({ err: e }, 'nl80211 events lost; the next poll resynchronises'));
    ch.listen(true);
    this.#events = ch;
  }

  #events: NetlinkChannel | undefined;

  close(): void {
    this.#events?.close();
    this.#events = undefined;
    this.ch.close();
  }
}

export interface WlanState {
  readonly ifname: string;
  readonly ifindex?: number;
  /** The interface exists. */
  readonly present: boolean;
  /** Link usable (rtnetlink: admin up and operstate up). */
  readonly up: boolean;
  /** Radio facts available (nl80211 present and answering). */
  readonly quality: 'known' | 'unknown';
  readonly reason?: string;
  readonly mode?: IfType;
  /** Station mode, nl80211 known: an associated BSS. */
  readonly associated?: boolean;
  readonly ssid?: string;
  readonly bssid?: string;
  readonly frequencyMhz?: number;
  readonly signalDbm?: number;
  readonly txBitrateMbps?: number;
  readonly rxBitrateMbps?: number;
  readonly expectedThroughputKbps?: number;
  /** AP mode: the stations (UEs) associated to us. */
  readonly stations?: readonly StationInfo[];
}

export interface WlanDriverOptions {
  ifname: string;
  rtnl: Rtnl;
  /** nl80211 client, or null to force degraded mode; default: open one (may be absent). */
  nl80211?: Nl80211 | null;
  pollMs?: number;
  /** Follow nl80211's connection events (default true). */
  events?: boolean;
  /** Transport of the event socket (tests). */
  eventTransport?: NetlinkTransport;
}

/** The last connection event of the interface, with when it was handled (performance.now()). */
export interface RadioEvent {
  readonly event: LinkEvent;
  readonly atMs: number;
}

export class WlanDriver extends EventEmitter<{ state: [WlanState]; radio: [RadioEvent] }> {
  readonly ifname: string;
  readonly #rtnl: Rtnl;
  #nl: Nl80211 | null | undefined;
  #state: WlanState;
  #timer: NodeJS.Timeout | undefined;
  readonly #pollMs: number;
  #warned = false;
  readonly #events: boolean;
  readonly #eventTransport: NetlinkTransport | undefined;
  /** Bumped by every connection event: a re-read that started before one is discarded. */
  #gen = 0;
  #lastEvent: RadioEvent | undefined;
  readonly #onLink = ({ op, link }: { op: 'new' | 'del'; link: Link }): void => {
    if (link.name !== this.ifname && link.index !== this.#state.ifindex) return;
    // A radio whose module loaded after our start: ask for nl80211 again.
    if (op === 'new' && this.#nl === null && this.#retryFamily) this.#nl = undefined;
    void this.refresh(op === 'del' ? undefined : link).catch((e: unknown) => log.warn({ err: e }, 'wlan refresh failed'));
  };
  #subscribed: Nl80211 | undefined;
  /** nl80211 was found absent by us (not forced off by the caller). */
  #retryFamily = false;

  constructor(o: WlanDriverOptions) {
    super();
    this.ifname = o.ifname;
    this.#rtnl = o.rtnl;
    this.#nl = o.nl80211;
    this.#pollMs = o.pollMs ?? 2000;
    this.#events = o.events ?? true;
    this.#eventTransport = o.eventTransport;
    this.#state = { ifname: o.ifname, present: false, up: false, quality: 'unknown' };
  }

  get state(): WlanState {
    return this.#state;
  }

  /** The last nl80211 connection event of this interface. */
  get lastEvent(): RadioEvent | undefined {
    return this.#lastEvent;
  }

  /** The last loss (deauthenticate, disassociate, disconnect) of this interface. */
  get lastLoss(): RadioEvent | undefined {
    return this.#lastLoss;
  }

  #lastLoss: RadioEvent | undefined;

  #subscribe(nl: Nl80211): void {
    if (!this.#events || this.#subscribed === nl) return;
    this.#subscribed = nl;
    try {
      nl.subscribeLinkEvents((ev, at) => this.#onRadioEvent(ev, at), this.#eventTransport);
    } catch (e) {
      log.warn({ err: e }, 'nl80211 connection events unavailable: link loss seen by rtnetlink and polling only');
    }
  }

  #onRadioEvent(ev: LinkEvent, atMs: number): void {
    if (this.#state.ifindex === undefined || ev.ifindex !== this.#state.ifindex) return;
    this.#gen++;
    this.#lastEvent = { event: ev, atMs };
    if (ev.lost) this.#lastLoss = this.#lastEvent;
    log.info({ ifname: this.ifname, event: ev.kind, reasonCode: ev.reasonCode, byAp: ev.byAp }, `nl80211 ${ev.kind}`);
    if (ev.lost && this.#state.mode !== 'ap') {
      const why = ev.reasonCode === undefined ? ev.kind : `${ev.kind} (802.11 reason ${ev.reasonCode})`;
      const { ssid: _s, bssid: _b, signalDbm: _g, txBitrateMbps: _t, rxBitrateMbps: _r, expectedThroughputKbps: _e, ...rest } = this.#state;
      this.#set({ ...rest, up: false, associated: false, reason: why });
    }
    void this.refresh().catch((e: unknown) => log.debug({ err: e }, 'wlan refresh after an event failed'));
    try {
      this.emit('radio', this.#lastEvent);
    } catch (e) {
      log.error({ err: e }, 'a wlan radio-event listener threw');
    }
  }

  async #radio(): Promise<Nl80211 | null> {
    if (this.#nl !== undefined) {
      if (this.#nl !== null) this.#subscribe(this.#nl);
      return this.#nl;
    }
    try {
      const nl = await Nl80211.open();
      this.#nl = nl;
      this.#retryFamily = false;
      this.#subscribe(nl);
    } catch (e) {
      const err = toDuocellError(e, 'DC_WLAN_UNAVAILABLE');
      if (err.code === 'DC_NETLINK_FAMILY_MISSING') {
        if (!this.#warned) {
          this.#warned = true;
          log.info({ code: 'DC_WLAN_UNAVAILABLE', ifname: this.ifname }, 'nl80211 absent (no cfg80211): WLAN link state from rtnetlink, quality unknown');
        }
        this.#nl = null;
        this.#retryFamily = true;
      } else {
        log.warn({ err }, 'nl80211 unavailable for now');
        return null;
      }
    }
    return this.#nl;
  }

  /** Re-read link state (rtnetlink) and radio facts (nl80211, when present). */
  async refresh(known?: Link): Promise<WlanState> {
    const gen = this.#gen;
    const link = known ?? (await this.#rtnl.link(this.ifname));
    let next: WlanState = link === undefined
      ? { ifname: this.ifname, present: false, up: false, quality: 'unknown', reason: 'interface absent' }
      : { ifname: this.ifname, ifindex: link.index, present: true, up: link.up, quality: 'unknown' };
    const nl = link === undefined ? null : await this.#radio();
    if (link !== undefined && nl === null) next = { ...next, reason: new DuocellError('DC_WLAN_UNAVAILABLE').message };
    if (link !== undefined && nl !== null) {
      try {
        next = { ...next, ...(await this.#radioFacts(nl, link.index)) };
      } catch (e) {
        const err = toDuocellError(e, 'DC_WLAN_UNAVAILABLE');
        next = { ...next, quality: 'unknown', reason: err.code === 'DC_WLAN_NO_INTERFACE' || err.errno === 95 ? 'not a wireless interface' : err.message };
      }
    }
    // A station is up only while associated (its link may still say up for a moment after a loss).
    if (next.up && next.quality === 'known' && next.mode === 'station' && next.associated !== true) {
      next = { ...next, up: false, reason: 'WLAN not associated' };
    }
    if (gen !== this.#gen) return this.refresh(); // a connection event came in meanwhile: read again
    this.#set(next);
    return next;
  }

  async #radioFacts(nl: Nl80211, ifindex: number): Promise<Partial<WlanState>> {
    const wi = await nl.interface(ifindex);
    if (wi === undefined) return { quality: 'unknown', reason: 'not a wireless interface' };
    const base: Record<string, unknown> = { quality: 'known', mode: wi.iftype };
    if (wi.ssid !== undefined) base.ssid = wi.ssid;
    if (wi.frequencyMhz !== undefined) base.frequencyMhz = wi.frequencyMhz;
    const stations = await nl.stations(ifindex);
    if (wi.iftype === 'ap' || wi.iftype === 'p2p_go') {
      base.stations = stations;
      return base as Partial<WlanState>;
    }
    const bss = (await nl.scanResults(ifindex)).find((b) => b.status === 'associated');
    if (wi.iftype === 'station') base.associated = bss !== undefined;
    if (bss !== undefined) {
      base.bssid = bss.bssid;
      if (bss.ssid !== undefined && base.ssid === undefined) base.ssid = bss.ssid;
      if (bss.frequencyMhz !== undefined) base.frequencyMhz = bss.frequencyMhz;
    }
    const ap = bss === undefined ? undefined : (stations.find((s) => s.mac === bss.bssid) ?? stations[0]);
    if (ap !== undefined) {
      const sig = ap.signalAvgDbm ?? ap.signalDbm;
      if (sig !== undefined) base.signalDbm = sig;
      if (ap.txBitrate !== undefined) base.txBitrateMbps = ap.txBitrate.mbps;
      if (ap.rxBitrate !== undefined) base.rxBitrateMbps = ap.rxBitrate.mbps;
      if (ap.expectedThroughputKbps !== undefined) base.expectedThroughputKbps = ap.expectedThroughputKbps;
    }
    return base as Partial<WlanState>;
  }

  #set(next: WlanState): void {
    const changed = JSON.stringify(next) !== JSON.stringify(this.#state);
    this.#state = next;
    if (changed) {
      try {
        this.emit('state', next);
      } catch (e) {
        log.error({ err: e }, 'a wlan state listener threw');
      }
    }
  }

  /** Follow link events (the caller has subscribed rtnl) and poll radio facts. */
  async start(): Promise<WlanState> {
    this.#rtnl.on('link', this.#onLink);
    const s = await this.refresh();
    this.#timer = setInterval(() => {
      if (this.#nl === null) return; // degraded: link events are enough
      void this.refresh().catch((e: unknown) => log.debug({ err: e }, 'wlan poll failed'));
    }, this.#pollMs);
    this.#timer.unref();
    return s;
  }

  stop(): void {
    this.#rtnl.off('link', this.#onLink);
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#nl?.close();
  }
}

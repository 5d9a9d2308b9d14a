import { EventEmitter } from 'node:events';
import { DuocellError, toDuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import { sameAddress } from '../../core/net.js';
import type {
  CellularSource, CellularState, CounterReader, NetAddress, NetLink, NetSource, PathEvent, PathSignal, PathStateName,
  PathView, RoutingBackend, RttProbe, UplinkConfig, WlanSource, WlanSourceState,
} from './types.js';

export * from './types.js';

/**
 * The uplinks (paths) of the cell: cellular and WLAN, each with its access type, interface,
 * addresses, state, signal and measured throughput/RTT.
 *
 *   rtnetlink link/address ─┐
 *   modem manager state ────┼─► evaluate(path) ─► state absent | down | up ─► 'event'
 *   WLAN driver state ──────┘        │                                         (path-up,
 *                                    └─ up, or addresses changed ─► routing.set  path-down,
 *   every sampleMs: counters → throughput, probe → RTT ─► 'path-changed'         path-changed)
 *
 * A path is up when its interface exists and is up, its radio says so (modem data session
 * connected / WLAN link up, where a source is given) and it has a global address. Each up path
 * gets its own routing table and source rules (RoutingBackend; the keeper restores them when
 * the kernel removes them); an interface that disappears has its routing deleted.
 */

const log = logger('duocell:paths');

interface Internal {
  cfg: UplinkConfig;
  table: number;
  view: PathView;
  routedKey: string | undefined;
}

export interface PathsServiceOptions {
  uplinks: readonly UplinkConfig[];
  net: NetSource;
  routing?: RoutingBackend;
  /** Radio state of the (first) cellular uplink. */
  cellular?: CellularSource;
  /** Radio state of the (first) WLAN uplink. */
  wlan?: WlanSource;
  counters?: CounterReader;
  rtt?: RttProbe;
  /** Throughput / RTT sampling period (default 2000 ms; 0 = off). */
  sampleMs?: number;
  now?: () => number;
}

export class PathsService extends EventEmitter<{ event: [PathEvent] }> {
  readonly #o: PathsServiceOptions;
  readonly #paths = new Map<string, Internal>();
  readonly #links = new Map<number, NetLink>();
  #addresses: NetAddress[] = [];
  readonly #chain = new Map<string, Promise<void>>();
  readonly #lastCounters = new Map<string, { rxBytes: number; txBytes: number; at: number }>();
  #timer: NodeJS.Timeout | undefined;
  #started = false;

  constructor(o: PathsServiceOptions) {
    super();
    this.#o = o;
    const now = new Date((o.now ?? Date.now)()).toISOString();
    o.uplinks.forEach((u, i) => {
      if (this.#paths.has(u.name)) throw new DuocellError('DC_CONFIG_INVALID', `two uplinks named ${u.name}`);
      const table = u.table ?? 100 + i;
      this.#paths.set(u.name, {
        cfg: u,
        table,
        routedKey: undefined,
        view: {
          name: u.name, access: u.access, interface: u.interface, state: 'absent', since: now, addresses: [], table,
          routing: 'none', signal: { quality: 'unknown' }, reason: 'not yet evaluated',
          ...(u.gateway4 === undefined ? {} : { gateway4: u.gateway4 }),
          ...(u.gateway6 === undefined ? {} : { gateway6: u.gateway6 }),
        },
      });
    });
  }

  list(): PathView[] {
    return [...this.#paths.values()].map((p) => p.view);
  }

  get(name: string): PathView {
    const p = this.#paths.get(name);
    if (p === undefined) throw new DuocellError('DC_PATH_UNKNOWN', `no path named ${name}`);
    return p.view;
  }

  /** The path whose interface carries this local address (labels subflows with access types). */
  byAddress(address: string): PathView | undefined {
    // by value: the kernel may name a local address IPv4-mapped (`::ffff:a47:1`) or in upper case
    return this.list().find((p) => p.addresses.some((x) => sameAddress(x, address)));
  }

  readonly #onLink = ({ op, link }: { op: 'new' | 'del'; link: NetLink }): void => {
    if (op === 'del') {
      this.#links.delete(link.index);
      this.#addresses = this.#addresses.filter((a) => a.index !== link.index);
    } else {
      this.#links.set(link.index, link);
    }
    this.#evaluateMatching((p) => p.cfg.interface === link.name || p.view.ifindex === link.index);
  };

  readonly #onAddress = ({ op, address }: { op: 'new' | 'del'; address: NetAddress }): void => {
    this.#addresses = this.#addresses.filter((a) => !(a.index === address.index && a.address === address.address));
    if (op === 'new') this.#addresses.push(address);
    this.#evaluateMatching((p) => p.view.ifindex === address.index);
  };

  readonly #onLost = (): void => {
    void this.#resync().catch((e: unknown) => log.warn({ err: e }, 'paths resync failed'));
  };

  readonly #onCellular = (_s: CellularState): void => this.#evaluateMatching((p) => p.cfg.access === 'cellular');
  readonly #onWlan = (_s: WlanSourceState): void => this.#evaluateMatching((p) => p.cfg.access === 'wlan');

  async start(): Promise<PathView[]> {
    if (this.#started) return this.list();
    this.#started = true;
    const o = this.#o;
    o.net.on('link', this.#onLink);
    o.net.on('address', this.#onAddress);
    o.net.on('lost', this.#onLost);
    o.cellular?.on('state', this.#onCellular);
    o.wlan?.on('state', this.#onWlan);
    await this.#resync();
    const period = o.sampleMs ?? 2000;
    if (period > 0) {
      this.#timer = setInterval(() => void this.sample().catch((e: unknown) => log.debug({ err: e }, 'path sampling failed')), period);
      this.#timer.unref();
    }
    return this.list();
  }

  stop(): void {
    if (!this.#started) return;
    this.#started = false;
    const o = this.#o;
    o.net.off('link', this.#onLink);
    o.net.off('address', this.#onAddress);
    o.net.off('lost', this.#onLost);
    o.cellular?.off('state', this.#onCellular);
    o.wlan?.off('state', this.#onWlan);
    clearInterval(this.#timer);
  }

  async #resync(): Promise<void> {
    const [links, addrs] = await Promise.all([this.#o.net.links(), this.#o.net.addresses()]);
    this.#links.clear();
    for (const l of links) this.#links.set(l.index, l);
    this.#addresses = addrs;
    await Promise.all([...this.#paths.keys()].map((n) => this.evaluate(n)));
  }

  #evaluateMatching(pred: (p: Internal) => boolean): void {
    for (const p of this.#paths.values()) {
      if (pred(p)) void this.evaluate(p.cfg.name).catch((e: unknown) => log.warn({ err: e, path: p.cfg.name }, 'path evaluation failed'));
    }
  }

  /** Re-evaluate one path now (serialised per path). */
  evaluate(name: string): Promise<void> {
    const prev = this.#chain.get(name) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(() => this.#evaluate(name));
    this.#chain.set(name, next);
    return next;
  }

  async #evaluate(name: string): Promise<void> {
    const p = this.#paths.get(name);
    if (p === undefined) throw new DuocellError('DC_PATH_UNKNOWN', `no path named ${name}`);
    const link = [...this.#links.values()].find((l) => l.name === p.cfg.interface);
    const addrs = link === undefined ? [] : this.#addresses.filter((a) => a.index === link.index && a.scope === 0);
    const radio = this.#radio(p);
    let state: PathStateName;
    let reason: string | undefined;
    if (link === undefined) {
      state = 'absent';
      reason = 'interface absent';
    } else if (!link.up) {
      state = 'down';
      reason = 'link down';
    } else if (!radio.ok) {
      state = 'down';
      reason = radio.reason;
    } else if (addrs.length === 0) {
      state = 'down';
      reason = 'no global address';
    } else {
      state = 'up';
    }
    const gateway4 = radio.gateway4 ?? p.cfg.gateway4;
    const gateway6 = radio.gateway6 ?? p.cfg.gateway6;
    const prevView = p.view;
    let routing = prevView.routing;
    if (state === 'absent' && p.routedKey !== undefined && this.#o.routing !== undefined) {
      await this.#o.routing.delete(name).catch((e: unknown) => log.warn({ err: e, path: name }, 'routing delete failed'));
      p.routedKey = undefined;
      routing = 'none';
    }
    if (state === 'up' && link !== undefined && this.#o.routing !== undefined) {
      const spec = {
        name, ifindex: link.index, table: p.table,
        addresses: addrs.map((a) => a.address),
        prefixes: addrs.filter((a) => a.peer === undefined && a.prefixLen < (a.family === 4 ? 32 : 128)).map((a) => `${a.address}/${a.prefixLen}`),
        ...(gateway4 === undefined ? {} : { gateway4 }),
        ...(gateway6 === undefined ? {} : { gateway6 }),
      };
      const key = JSON.stringify(spec);
      // On every transition to up, install (reconcile) before announcing the path: the kernel
      // removed the routes when the link went down, and the path manager adds endpoints the
      // moment it hears path-up (a subflow opened before its routes exist fails).
      if (key !== p.routedKey || prevView.state !== 'up') {
        try {
          await this.#o.routing.set(spec);
          p.routedKey = key;
          routing = 'installed';
        } catch (e) {
          const err = toDuocellError(e, 'DC_PATH_ROUTING');
          log.error({ err, path: name }, 'installing uplink routing failed');
          routing = 'failed';
          reason = `routing: ${err.message}`;
        }
      }
    } else if (this.#o.routing === undefined) {
      routing = 'none';
    }
    const view: PathView = {
      name, access: p.cfg.access, interface: p.cfg.interface, table: p.table,
      state,
      since: state === prevView.state ? prevView.since : new Date((this.#o.now ?? Date.now)()).toISOString(),
      addresses: addrs.map((a) => a.address),
      routing: state === 'up' ? routing : p.routedKey === undefined ? 'none' : 'pending',
      signal: radio.signal,
      ...(link === undefined ? {} : { ifindex: link.index }),
      ...(gateway4 === undefined ? {} : { gateway4 }),
      ...(gateway6 === undefined ? {} : { gateway6 }),
      ...(prevView.throughput === undefined ? {} : { throughput: prevView.throughput }),
      ...(prevView.rttMs === undefined ? {} : { rttMs: prevView.rttMs }),
      ...(reason === undefined ? {} : { reason }),
    };
    p.view = view;
    this.#announce(prevView, view);
  }

  #radio(p: Internal): { ok: boolean; reason?: string; signal: PathSignal; gateway4?: string; gateway6?: string } {
    if (p.cfg.access === 'cellular' && this.#o.cellular !== undefined && this.#firstOf('cellular') === p) {
      const s = this.#o.cellular.state;
      const sig = s.signal;
      const dbm = sig?.rsrpDbm ?? sig?.rssiDbm;
      return {
        ok: s.connected,
        reason: s.connected ? undefined : (s.reason ?? 'no cellular data session'),
        signal: {
          quality: sig === undefined ? 'unknown' : 'known',
          ...(dbm === undefined ? {} : { dbm }),
          ...(sig?.rssiDbm === undefined ? {} : { rssiDbm: sig.rssiDbm }),
          ...(sig?.rsrpDbm === undefined ? {} : { rsrpDbm: sig.rsrpDbm }),
          ...(sig?.rsrqDb === undefined ? {} : { rsrqDb: sig.rsrqDb }),
          ...(sig?.sinrDb === undefined ? {} : { sinrDb: sig.sinrDb }),
        },
        ...(s.gateway4 === undefined ? {} : { gateway4: s.gateway4 }),
        ...(s.gateway6 === undefined ? {} : { gateway6: s.gateway6 }),
      };
    }
    if (p.cfg.access === 'wlan' && this.#o.wlan !== undefined && this.#firstOf('wlan') === p) {
      const s = this.#o.wlan.state;
      return {
        ok: s.up,
        reason: s.up ? undefined : (s.reason ?? 'WLAN not connected'),
        signal: {
          quality: s.quality,
          ...(s.signalDbm === undefined ? {} : { dbm: s.signalDbm }),
          ...(s.ssid === undefined ? {} : { ssid: s.ssid }),
          ...(s.bssid === undefined ? {} : { bssid: s.bssid }),
          ...(s.txBitrateMbps === undefined ? {} : { bitrateMbps: s.txBitrateMbps }),
        },
        ...(s.gateway4 === undefined ? {} : { gateway4: s.gateway4 }),
      };
    }
    return { ok: true, signal: { quality: 'unknown' } };
  }

  #firstOf(access: 'cellular' | 'wlan'): Internal | undefined {
    return [...this.#paths.values()].find((p) => p.cfg.access === access);
  }

  #announce(prev: PathView, next: PathView): void {
    let ev: PathEvent | undefined;
    if (prev.state !== 'up' && next.state === 'up') ev = { type: 'path-up', path: next };
    else if (prev.state === 'up' && next.state !== 'up') ev = { type: 'path-down', path: next };
    else {
      const fields = (Object.keys(next) as Array<keyof PathView>).filter((k) => k !== 'since' && JSON.stringify(prev[k]) !== JSON.stringify(next[k]));
      for (const k of Object.keys(prev) as Array<keyof PathView>) if (!(k in next) && !fields.includes(k)) fields.push(k);
      if (fields.length > 0) ev = { type: 'path-changed', path: next, fields };
    }
    if (ev === undefined) return;
    if (ev.type !== 'path-changed') log.info({ path: next.name, state: next.state, reason: next.reason, addresses: next.addresses }, `path ${ev.type === 'path-up' ? 'up' : 'down'}`);
    try {
      this.emit('event', ev);
    } catch (e) {
      log.error({ err: e }, 'a paths listener threw');
    }
  }

  /** Measure throughput (counters) and RTT (probe) of every path once. */
  async sample(): Promise<void> {
    const now = (this.#o.now ?? Date.now)();
    for (const p of this.#paths.values()) {
      const prev = p.view;
      let throughput = prev.throughput;
      let rttMs = prev.rttMs;
      if (this.#o.counters !== undefined) {
        const c = await this.#o.counters(p.cfg.interface).catch(() => undefined);
        const last = this.#lastCounters.get(p.cfg.name);
        if (c !== undefined) {
          if (last !== undefined && now > last.at && c.rxBytes >= last.rxBytes && c.txBytes >= last.txBytes) {
            const dt = (now - last.at) / 1000;
            throughput = { rxBps: Math.round(((c.rxBytes - last.rxBytes) * 8) / dt), txBps: Math.round(((c.txBytes - last.txBytes) * 8) / dt) };
          }
          this.#lastCounters.set(p.cfg.name, { ...c, at: now });
        }
      }
      if (this.#o.rtt !== undefined && prev.state === 'up') {
        const r = await this.#o.rtt(prev).catch(() => undefined);
        rttMs = r;
      }
      const next: PathView = {
        ...prev,
        ...(throughput === undefined ? {} : { throughput }),
      };
      const withRtt: PathView = rttMs === undefined ? (({ rttMs: _r, ...rest }) => rest)(next) : { ...next, rttMs };
      p.view = withRtt;
      this.#announce(prev, withRtt);
    }
  }
}

import os from 'node:os';
import type { BoardProfile, ListenerProfile } from '../../core/board.js';
import { DuocellError } from '../../core/errors.js';
import { longestMatch, parseHostPort, parsePrefix, sameAddress, type Prefix } from '../../core/net.js';
import { directConnector } from './connector.js';
import { ProxyEngine, type EngineOptions } from './engine.js';
import { explicitFront, transparentFront } from './fronts/basic.js';
import { convertFrontFromOptions } from './fronts/convert.js';
import { socks5FrontFromOptions } from './fronts/socks5.js';
import { convertConnectorFromOptions } from './convert-client.js';
import { addressTextKey, createTargetFilter, parseAllowList, type TargetFilter } from './target-filter.js';
import type { AccessType, Connector, FrontProtocol, ListenerSpec, UpstreamOptions } from './types.js';

export * from './types.js';
export { ProxyEngine } from './engine.js';
export { createTargetFilter, specialPurpose, FORBIDDEN_REASONS, type ForbiddenReason, type TargetFilter } from './target-filter.js';
export { directConnector, openUpstream } from './connector.js';
export { explicitFront, transparentFront } from './fronts/basic.js';

/** The interfaces and their addresses (os.networkInterfaces: two rtnetlink dumps, 0.2-0.4 ms a call). */
export type InterfaceReader = () => NodeJS.Dict<os.NetworkInterfaceInfo[]>;

/**
 * Label addresses with their access type from the board's prefix table; `interfaces` for the
 * uplinks' own addresses (a snapshot such as LocalAddresses.interfaces: this runs per subflow of
 * every session view).
 */
export function accessLabeler(board: Pick<BoardProfile, 'accessNetworks' | 'uplinks'>, interfaces: InterfaceReader = os.networkInterfaces): (address: string) => AccessType {
  const table: Array<{ prefix: Prefix; value: AccessType }> = [];
  for (const a of board.accessNetworks) {
    const p = parsePrefix(a.prefix);
    if (p === undefined) throw new DuocellError('DC_CONFIG_INVALID', `bad access network prefix ${a.prefix}`);
    table.push({ prefix: p, value: a.access });
  }
  return (address) => {
    const hit = longestMatch(table, address);
    if (hit !== undefined) return hit;
    // Fall back to the uplinks' current interface addresses.
    if (board.uplinks.length === 0) return 'unknown';
    const ifs = interfaces();
    for (const u of board.uplinks) {
      if (ifs[u.interface]?.some((i) => sameAddress(i.address, address)) === true) return u.access;
    }
    return 'unknown';
  };
}

/** Current addresses of the board's uplink interfaces (candidate sources for MPTCP upstreams). */
export function uplinkAddresses(board: Pick<BoardProfile, 'uplinks'>, ifs: NodeJS.Dict<os.NetworkInterfaceInfo[]> = os.networkInterfaces()): string[] {
  const out: string[] = [];
  for (const u of board.uplinks) {
    for (const i of ifs[u.interface] ?? []) {
      if (!i.internal && !(i.family === 'IPv6' && i.address.startsWith('fe80'))) out.push(i.address);
    }
  }
  return out;
}

/**
 * An MPTCP upstream's candidate sources, computed again only when `interfaces` gives a new table
 * object (LocalAddresses.interfaces keeps one until its next read): one list for every
 * connection in between.
 */
export function uplinkSources(board: Pick<BoardProfile, 'uplinks'>, interfaces: InterfaceReader): () => string[] {
  let from: NodeJS.Dict<os.NetworkInterfaceInfo[]> | undefined;
  let list: string[] = [];
  return () => {
    const ifs = interfaces();
    if (ifs !== from) {
      list = uplinkAddresses(board, ifs);
      from = ifs;
    }
    return list;
  };
}

export interface ListenerFactories {
  /** Extra fronts (convert, socks5) and connectors by name, provided by main.ts. */
  fronts?: Partial<Record<ListenerProfile['kind'], (l: ListenerProfile) => FrontProtocol>>;
  connector?: (l: ListenerProfile) => Connector | undefined;
  /**
   * Where an MPTCP upstream's source addresses are read per session (default: the interfaces
   * now). The composition root passes LocalAddresses.interfaces, a snapshot refreshed on every
   * rtnetlink address event: reading the interfaces per session cost both proxies about a
   * millisecond of main thread per connection (docs/convert.md, "Where the time goes").
   */
  interfaces?: InterfaceReader;
}

/** Turn the board's listener profiles into engine listener specs. */
export function listenerSpecs(board: BoardProfile, f: ListenerFactories = {}): ListenerSpec[] {
  const sources = uplinkSources(board, f.interfaces ?? os.networkInterfaces);
  return board.listeners.map((l, i) => {
    let front: FrontProtocol;
    const custom = f.fronts?.[l.kind];
    if (custom !== undefined) front = custom(l);
    else if (l.kind === 'convert') front = convertFrontFromOptions(l.options, { upstreamMptcp: l.upstream === 'mptcp' });
    else if (l.kind === 'socks5') front = socks5FrontFromOptions(l.options);
    else if (l.kind === 'transparent') front = transparentFront;
    else if (l.kind === 'explicit') {
      const t = parseHostPort(l.target ?? '');
      if (t === undefined) throw new DuocellError('DC_CONFIG_INVALID', `listener ${i}: bad target ${l.target}`);
      front = explicitFront(t);
    } else throw new DuocellError('DC_CONFIG_INVALID', `listener ${i}: no front for kind ${l.kind} in this build`);
    const upstream: UpstreamOptions =
      l.upstream === 'mptcp' ? { mptcp: true, get localAddresses() { return sources(); } } : { mptcp: false };
    return {
      name: `${l.kind}-${l.port}-${i}`,
      host: l.host,
      port: l.port,
      mptcp: l.mptcp,
      transparent: l.kind === 'transparent',
      ...(l.fastOpen === undefined ? {} : { fastOpen: l.fastOpen }),
      front,
      // A listener whose options name a concentrator reaches servers through it (Convert client).
      connector: f.connector?.(l) ?? convertConnectorFromOptions(l.options) ?? directConnector,
      upstream,
    };
  });
}

/**
 * The box's own addresses, as target-filter keys: every interface's addresses (loopback, LAN,
 * uplinks, anycast ones), read again on refresh() — which the composition root calls on each
 * rtnetlink address event — and at most every `maxAgeMs` when asked, so it stays current even
 * without netlink.
 */
export class LocalAddresses {
  #keys = new Set<string>();
  #ifs: NodeJS.Dict<os.NetworkInterfaceInfo[]> = {};
  #at = -Infinity;
  constructor(
    readonly read: () => NodeJS.Dict<os.NetworkInterfaceInfo[]> = os.networkInterfaces,
    readonly maxAgeMs = 1000,
    readonly now: () => number = Date.now,
    /** interfaces() is at most this old when no address event refreshed it (ms). */
    readonly snapshotMaxAgeMs = 250,
  ) {}

  refresh(): void {
    const keys = new Set<string>();
    const ifs = this.read();
    this.#ifs = ifs;
    for (const list of Object.values(ifs)) {
      for (const i of list ?? []) {
        const k = addressTextKey(i.address);
        if (k !== undefined) keys.add(k);
      }
    }
    this.#keys = keys;
    this.#at = this.now();
  }

  has(key: string): boolean {
    if (this.now() - this.#at > this.maxAgeMs) this.refresh();
    return this.#keys.has(key);
  }

  get size(): number {
    return this.#keys.size;
  }

  /**
   * The interfaces and their addresses as last read: on each address event (refresh()) and at
   * most `snapshotMaxAgeMs` old otherwise. For per-session readers (upstream source addresses,
   * access labels), which must not dump the kernel's tables on every connection.
   */
  readonly interfaces = (): NodeJS.Dict<os.NetworkInterfaceInfo[]> => {
    if (this.now() - this.#at > this.snapshotMaxAgeMs) this.refresh();
    return this.#ifs;
  };
}

/**
 * The target filter of a board: the box's own addresses (live), its listener ports (proxy
 * fronts and web page), and the operator's allow-list (`proxyTargets.allow`).
 */
export function boardTargetFilter(board: Pick<BoardProfile, 'listeners' | 'web' | 'proxyTargets'>, own: { has(key: string): boolean }): TargetFilter {
  const allow = board.proxyTargets?.allow ?? [];
  const { bad } = parseAllowList(allow);
  if (bad.length > 0) throw new DuocellError('DC_CONFIG_INVALID', `proxyTargets.allow: not a prefix: ${bad.join(', ')}`);
  const ports = new Set<number>([...board.listeners.map((l) => l.port), ...board.web.listen.map((w) => w.port)]);
  return createTargetFilter({ ownAddresses: own, listenerPorts: ports, allow });
}

/**
 * The engine of a board, with its target filter on (unless opts gives another one). `local`:
 * the live set of own addresses (default: a LocalAddresses reading the interfaces).
 */
export function createEngine(board: BoardProfile, opts: Omit<EngineOptions, 'label'> & { local?: LocalAddresses }): ProxyEngine {
  const { local: given, ...rest } = opts;
  const local = given ?? new LocalAddresses();
  const targetFilter = rest.targetFilter ?? boardTargetFilter(board, local);
  return new ProxyEngine({ ...rest, targetFilter, label: accessLabeler(board, local.interfaces) });
}

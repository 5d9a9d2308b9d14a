import os from 'node:os';
import type { BoardProfile, ListenerProfile } from '../../core/board.js';
import { DuocellError } from '../../core/errors.js';
import { longestMatch, parseHostPort, parsePrefix, type Prefix } from '../../core/net.js';
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

/** The interfaces and their addresses, as os.networkInterfaces() gives them. */
export type InterfaceTable = NodeJS.Dict<os.NetworkInterfaceInfo[]>;

/**
 * Label addresses with their access type from the board's prefix table. `interfaces`: where the
 * fallback reads the uplinks' current addresses (default: os.networkInterfaces() at each call).
 */
export function accessLabeler(board: Pick<BoardProfile, 'accessNetworks' | 'uplinks'>, interfaces: () => InterfaceTable = os.networkInterfaces): (address: string) => AccessType {
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
    const ifs = interfaces();
    for (const u of board.uplinks) {
      if (ifs[u.interface]?.some((i) => i.address === address) === true) return u.access;
    }
    return 'unknown';
  };
}

/** Current addresses of the board's uplink interfaces (candidate sources for MPTCP upstreams). */
export function uplinkAddresses(board: Pick<BoardProfile, 'uplinks'>, ifs: InterfaceTable = os.networkInterfaces()): string[] {
  const out: string[] = [];
  for (const u of board.uplinks) {
    for (const i of ifs[u.interface] ?? []) {
      if (!i.internal && !(i.family === 'IPv6' && i.address.startsWith('fe80'))) out.push(i.address);
    }
  }
  return out;
}

/**
 * The uplinks' addresses from a table that is read again only when it changes: computed once
 * per table object `interfaces` returns (a LocalAddresses' snapshot: the same object until its
 * next refresh). Each call returns the same array until then; callers do not modify it.
 */
export function uplinkSources(board: Pick<BoardProfile, 'uplinks'>, interfaces: () => InterfaceTable): () => string[] {
  let from: InterfaceTable | undefined;
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
   * Where an MPTCP upstream's candidate source addresses come from (the uplinks' addresses),
   * asked at each connection. Default: os.networkInterfaces() at each connection, a getifaddrs
   * netlink dump of every link and address of the box (100–250 µs each, measured in setup-cell:
   * docs/relay.md); main.ts passes its LocalAddresses' table, read again on rtnetlink address
   * events and at most once a second otherwise.
   */
  interfaces?: () => InterfaceTable;
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
  #table: InterfaceTable = {};
  #at = -Infinity;
  constructor(
    readonly read: () => InterfaceTable = os.networkInterfaces,
    readonly maxAgeMs = 1000,
    readonly now: () => number = Date.now,
  ) {}

  refresh(): void {
    const keys = new Set<string>();
    const table = this.read();
    for (const list of Object.values(table)) {
      for (const i of list ?? []) {
        const k = addressTextKey(i.address);
        if (k !== undefined) keys.add(k);
      }
    }
    this.#keys = keys;
    this.#table = table;
    this.#at = this.now();
  }

  has(key: string): boolean {
    if (this.now() - this.#at > this.maxAgeMs) this.refresh();
    return this.#keys.has(key);
  }

  /**
   * The interface table of the last refresh (read again when older than maxAgeMs): the same
   * object until the next refresh, so derived lists can be kept per table (uplinkSources).
   */
  interfaces(): InterfaceTable {
    if (this.now() - this.#at > this.maxAgeMs) this.refresh();
    return this.#table;
  }

  get size(): number {
    return this.#keys.size;
  }
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
  const { local, ...rest } = opts;
  const own = local ?? new LocalAddresses();
  const targetFilter = rest.targetFilter ?? boardTargetFilter(board, own);
  return new ProxyEngine({ ...rest, targetFilter, label: accessLabeler(board, () => own.interfaces()) });
}

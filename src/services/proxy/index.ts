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
import type { AccessType, Connector, FrontProtocol, ListenerSpec, UpstreamOptions } from './types.js';

export * from './types.js';
export { ProxyEngine } from './engine.js';
export { directConnector, openUpstream } from './connector.js';
export { explicitFront, transparentFront } from './fronts/basic.js';

/** Label addresses with their access type from the board's prefix table. */
export function accessLabeler(board: Pick<BoardProfile, 'accessNetworks' | 'uplinks'>): (address: string) => AccessType {
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
    const ifs = os.networkInterfaces();
    for (const u of board.uplinks) {
      if (ifs[u.interface]?.some((i) => i.address === address) === true) return u.access;
    }
    return 'unknown';
  };
}

/** Current addresses of the board's uplink interfaces (candidate sources for MPTCP upstreams). */
export function uplinkAddresses(board: Pick<BoardProfile, 'uplinks'>): string[] {
  const ifs = os.networkInterfaces();
  const out: string[] = [];
  for (const u of board.uplinks) {
    for (const i of ifs[u.interface] ?? []) {
      if (!i.internal && !(i.family === 'IPv6' && i.address.startsWith('fe80'))) out.push(i.address);
    }
  }
  return out;
}

export interface ListenerFactories {
  /** Extra fronts (convert, socks5) and connectors by name, provided by main.ts. */
  fronts?: Partial<Record<ListenerProfile['kind'], (l: ListenerProfile) => FrontProtocol>>;
  connector?: (l: ListenerProfile) => Connector;
}

/** Turn the board's listener profiles into engine listener specs. */
export function listenerSpecs(board: BoardProfile, f: ListenerFactories = {}): ListenerSpec[] {
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
      l.upstream === 'mptcp' ? { mptcp: true, get localAddresses() { return uplinkAddresses(board); } } : { mptcp: false };
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

export function createEngine(board: BoardProfile, opts: Omit<EngineOptions, 'label'> = {}): ProxyEngine {
  return new ProxyEngine({ ...opts, label: accessLabeler(board) });
}

import type { BoardProfile, ListenerProfile } from '../core/board.js';
import { logger } from '../core/logger.js';
import { directConnector, uplinkAddresses, type Connector } from '../services/proxy/index.js';
import { convertConnectorFromOptions, probeConvert } from '../services/proxy/convert-client.js';
import { ProxySelector, type SelectionOptions } from '../services/proxy/selection.js';
import { selectingConnector } from '../services/proxy/select-connector.js';
import { probeSocks5 } from '../services/proxy/socks5-client.js';
import { SNI_WAIT_MS, transparentSniFront, type SniFront } from '../services/proxy/fronts/sni.js';
import { peekAvailable, peekUntil } from '../drivers/sockets/peek.js';
import type { Store } from '../store/index.js';
import type { ProxyView } from '../web/deps.js';
import { socketIo } from '../drivers/sockets/io.js';

/**
 * Proxy selection on a cell (issue 15): the candidate list lives in the store (board defaults
 * seeded once, then the page, the CLI and OTA bundles edit it); a selector probes the off-path
 * candidates (Convert: the RFC 8803 Info exchange; SOCKS5: greeting and credentials) and chooses one per new session for the
 * transparent listeners. With no candidate in the store a listener keeps its own connector
 * (the concentrator its options name, or direct).
 */

const log = logger('duocell:proxy:selection');

export interface RunningSelection {
  readonly selector: ProxySelector;
  /** listenerSpecs() factory: the selecting connector for transparent listeners. */
  connector(l: ListenerProfile): Connector | undefined;
  /** listenerSpecs() front factory: the transparent front that reads the ClientHello where an SNI rule applies. */
  front(l: ListenerProfile): SniFront;
  /** The SNI fronts' outcome counts since start, summed over the listeners (for /metrics). */
  sniOutcomes(): Record<string, number>;
  view(): ProxyView[];
  set(list: unknown, origin: 'web' | 'cli'): ProxyView[];
  close(): void;
}

function cookieOf(options: Readonly<Record<string, unknown>> | undefined): Buffer | undefined {
  const o = options ?? {};
  if (typeof o.cookie === 'string' && o.cookie.length > 0) return Buffer.from(o.cookie, 'utf8');
  if (typeof o.cookieHex === 'string') return Buffer.from(o.cookieHex, 'hex');
  return undefined;
}

/** The list as the API shows it: the store's candidates with their health. */
export function proxyViews(store: Pick<Store, 'listProxies'>, selector?: ProxySelector): ProxyView[] {
  const health = new Map((selector?.list() ?? []).map((x) => [x.candidate.name, x.health]));
  return store.listProxies().map((p) => {
    const h = health.get(p.name);
    return {
      id: p.name,
      ...p,
      // Never the password: the username only (the list written back keeps the stored password).
      auth: p.auth === null ? null : { username: p.auth.username },
      apps: p.apps.map((a) => ({ name: a.name, ports: a.ports ?? [], prefixes: a.prefixes ?? [], ...(a.sni === undefined || a.sni.length === 0 ? {} : { sni: a.sni }) })),
      healthy: h?.healthy ?? true,
      ...(h?.rttMs === undefined ? {} : { rttMs: Math.round(h.rttMs * 100) / 100 }),
      sessions: h?.sessions ?? 0,
      probeFailures: h?.probeFailures ?? 0,
      sessionFailures: h?.sessionFailures ?? 0,
      lastError: h?.lastError ?? null,
    };
  });
}

export function startSelection(
  board: BoardProfile,
  store: Store,
  opts: Partial<Pick<SelectionOptions, 'intervalMs' | 'recoverIntervalMs' | 'timeoutMs' | 'failAfter' | 'sessionFailAfter'>> = {},
): RunningSelection {
  if (board.proxies !== undefined && store.seedProxies(board.proxies)) log.info({ count: store.listProxies().length }, 'candidate proxies seeded from the board profile');
  const transparent = board.listeners.find((l) => l.kind === 'transparent');
  const cookie = cookieOf(transparent?.options);
  const { sniWaitMs, ...tuning } = (board.proxySelection ?? {}) as Partial<Pick<SelectionOptions, 'intervalMs' | 'recoverIntervalMs' | 'timeoutMs' | 'failAfter' | 'sessionFailAfter'>> & { sniWaitMs?: number };
  const timeoutMs = opts.timeoutMs ?? tuning.timeoutMs ?? 600;
  const selector = new ProxySelector({
    ...tuning,
    ...opts,
    candidates: () => store.listProxies(),
    probe: (c, signal) =>
      c.protocol === 'socks5'
        ? probeSocks5(
            { address: c.address, port: c.port },
            { ...(c.auth?.password === undefined ? {} : { auth: { username: c.auth.username, password: c.auth.password } }), options: { mptcp: true, localAddresses: uplinkAddresses(board) }, signal, timeoutMs, io: socketIo },
          )
        : probeConvert(
            { address: c.address, port: c.port },
            { ...(cookie === undefined ? {} : { cookie }), options: { mptcp: true, localAddresses: uplinkAddresses(board) }, signal, timeoutMs, io: socketIo },
          ),
  });
  if (board.preset === 'cell') selector.start();
  const policyOf = (client: { address: string } | undefined): string | null => {
    if (client === undefined) return null;
    try {
      return store.resolvePolicy(client.address).policy;
    } catch {
      return null;
    }
  };
  if (board.preset === 'cell' && !peekAvailable()) log.warn({ code: 'DC_SOCKET_NATIVE' }, 'the socket addon cannot peek (rebuild it): SNI rules never match');
  const fronts: SniFront[] = [];
  const keep = (f: SniFront): SniFront => (fronts.push(f), f);
  return {
    selector,
    sniOutcomes: () => {
      const out: Record<string, number> = {};
      for (const f of fronts) for (const [k, n] of f.counts) out[k] = (out[k] ?? 0) + n;
      return out;
    },
    front: () => keep(
      transparentSniFront({
        // One set lookup per connection unless a rule names this port; then the client's policy.
        needsSni: (info, port) => board.preset === 'cell' && selector.sniPort(port) && peekAvailable() && selector.needsSni(policyOf(info.remote), port),
        peek: (client, o) => {
          const fd = socketIo.fdOf(client);
          return fd === undefined ? Promise.resolve({ bytes: Buffer.alloc(0), outcome: 'ended' as const }) : peekUntil(fd, o);
        },
        waitMs: sniWaitMs ?? SNI_WAIT_MS,
      }),
    ),
    connector(l) {
      if (board.preset !== 'cell' || l.kind !== 'transparent') return undefined;
      const o = l.options ?? {};
      return selectingConnector({
        selector,
        fallback: convertConnectorFromOptions(l.options) ?? directConnector,
        policyOf,
        convert: {
          ...(cookie === undefined ? {} : { cookie }),
          ...(o.askGrant === true ? { askGrant: true } : {}),
          ...(typeof o.replyTimeoutMs === 'number' ? { replyTimeoutMs: o.replyTimeoutMs } : {}),
          ...(typeof o.fastOpen === 'boolean' ? { fastOpen: o.fastOpen } : {}),
        },
        // The same bound for a SOCKS5 candidate's whole handshake as for a converter's reply.
        socks5: typeof o.replyTimeoutMs === 'number' ? { handshakeTimeoutMs: o.replyTimeoutMs } : {},
      });
    },
    view: () => proxyViews(store, selector),
    set(list, origin) {
      store.replaceProxies(list, origin);
      selector.reload();
      return proxyViews(store, selector);
    },
    close: () => selector.stop(),
  };
}

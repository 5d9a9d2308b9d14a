import { EventEmitter } from 'node:events';
import type { AnycastView } from '../services/anycast/index.js';
import { DuocellError } from '../core/errors.js';
import type { BoardProfile } from '../core/board.js';
import type { ProxyEngine } from '../services/proxy/index.js';
import type { Store } from '../store/index.js';
import type { WebDeps, WebEventName, SessionDto as WebSessionView, PathView, ModemView, WlanView } from '../web/deps.js';
import { readUplinks } from '../drivers/sysfs/net.js';
import { storeBackedPolicy } from './policy.js';
import type { OtaService } from '../ota/index.js';
import type { OtaView, PathManagerView } from '../web/deps.js';
import type { SessionLimits } from '../services/policy/limits.js';
import type { RunningPm } from './pm.js';
import { proxyViews, type RunningSelection } from './proxies.js';
import type { UdpSteering } from '../services/udp/steering.js';
import { udpView } from './udp.js';

/**
 * Builds the web layer's view of the running services (WebDeps) from the engine, the store and
 * the paths. The web layer never sees the services themselves.
 */
export interface WebWiringInput {
  board: BoardProfile;
  engine: ProxyEngine;
  store: Store;
  startedAt: Date;
  version: string;
  paths?: () => PathView[];
  modem?: () => ModemView;
  wlan?: () => WlanView;
  ota?: OtaService;
  limits?: SessionLimits;
  pm?: RunningPm;
  /** UDP steering per flow (a cell whose board enables it). */
  udp?: UdpSteering;
  /** A concentrator in an anycast pool: announcement, checks, BGP and BFD sessions. */
  anycast?: () => AnycastView;
  /** Proxy selection (a cell): candidates with their health, editable. */
  selection?: RunningSelection;
}

const unavailable = (what: string): never => {
  throw new DuocellError('DC_WEB_UNAVAILABLE', `${what} is not available in this build`);
};

export function buildWebDeps(i: WebWiringInput): WebDeps & { emit(name: WebEventName): void } {
  const bus = new EventEmitter();
  bus.setMaxListeners(100);
  const emit = (name: WebEventName): void => void bus.emit(name);
  i.engine.on('session', () => emit('sessions'));
  i.engine.on('closed', () => emit('sessions'));
  i.store.onChange(() => {
    emit('subscribers');
    emit('policy');
  });
  const paths = i.paths ?? ((): PathView[] => readUplinks(i.board.uplinks));
  return {
    emit,
    health: () => {
      const checks: Record<string, boolean> = { proxy: true, store: true };
      // a cell whose board has a modem is degraded while that modem is absent (not found,
      // unplugged, refused by configuration): its cellular path cannot come up
      if (i.board.modem !== undefined && i.board.preset === 'cell') {
        const m = i.modem?.();
        checks.modem = m !== undefined && m.present && m.state !== 'absent';
      }
      // a pool member is degraded while it is not announced or BIRD's BGP/BFD sessions are not up
      const anycast = i.anycast?.();
      if (anycast !== undefined) checks.anycast = anycast.healthy;
      return {
        status: Object.values(checks).every(Boolean) ? 'ok' : 'degraded',
        preset: i.board.preset,
        version: i.version,
        uptimeS: Math.round((Date.now() - i.startedAt.getTime()) / 1000),
        checks,
        ...(anycast === undefined ? {} : { anycast }),
      };
    },
    sessions: () => i.engine.sessions() as WebSessionView[],
    ...(i.modem === undefined ? {} : { modem: i.modem }),
    ...(i.wlan === undefined ? {} : { wlan: i.wlan }),
    paths,
    ...storeBackedPolicy(i.store),
    proxies: () => i.selection?.view() ?? proxyViews(i.store),
    setProxies: async (list) => (i.selection !== undefined ? i.selection.set(list, 'web') : (i.store.replaceProxies(list, 'web'), proxyViews(i.store))),
    ...(i.udp === undefined ? {} : { udp: () => udpView(i.udp!) }),
    mservers: () => i.store.listMServers().map((m) => ({ address: m.address, port: m.port, expiresAt: new Date(m.expiresAt).toISOString() })),
    ota: {
      status: () => otaView(i.ota),
      pushBundle: (bytes) =>
        i.ota === undefined
          ? Promise.reject(unavailable('OTA'))
          : Promise.resolve().then(() => {
              i.ota!.push(bytes);
              emit('ota');
              return otaView(i.ota);
            }),
    },
    ...(i.pm === undefined && i.limits === undefined ? {} : {
          pathManager: async () => {
            await i.pm?.service.refreshCounters().catch(() => 0); // per-subflow bytes and RTT from sock_diag
            return pathManagerView(i.pm, i.limits);
          },
        }),
    refusals: () => Object.fromEntries(i.engine.refusals),
    targetRefusals: () => Object.fromEntries(i.engine.targetRefusals),
    fastPath: () => ({ ...i.engine.fastCounts }),
    ...(i.selection === undefined ? {} : { sniOutcomes: () => i.selection!.sniOutcomes() }),
    events: {
      on(name, fn) {
        bus.on(name, fn);
        return () => bus.off(name, fn);
      },
    },
    kv: {
      get: (k) => i.store.getSetting(k),
      set: (k, v) => i.store.setSetting(k, v, 'web'),
    },
  };
}

function otaView(o: OtaService | undefined): OtaView {
  if (o === undefined) return { version: null, previousVersion: null, appliedAt: null, lastCheck: null, lastError: null, source: null };
  const s = o.status();
  return {
    version: s.currentVersion > 0 ? s.currentVersion : null,
    previousVersion: s.previousVersion,
    appliedAt: s.appliedAt,
    lastCheck: s.lastCheck,
    lastError: s.lastError === null ? null : { code: s.lastError.code, message: s.lastError.message },
    source: s.url,
  };
}

function pathManagerView(pm: RunningPm | undefined, limits: SessionLimits | undefined): PathManagerView {
  const st = pm?.service.stats();
  return {
    mode: pm?.mode ?? 'kernel',
    endpoints: pm?.service.endpoints() ?? {},
    connections: (pm?.service.sessions() ?? []).map((c) => ({
      token: c.token,
      serverSide: c.serverSide,
      local: { address: c.saddr, port: c.sport },
      remote: { address: c.daddr, port: c.dport },
      state: c.state,
      since: c.since,
      subflows: c.subflows.map((f) => ({
        local: { address: f.saddr, port: f.sport },
        remote: { address: f.daddr, port: f.dport },
        access: f.access,
        backup: f.backup,
        state: f.state,
        since: f.since,
        ...(f.bytesSent === undefined ? {} : { bytesSent: f.bytesSent }),
        ...(f.bytesReceived === undefined ? {} : { bytesReceived: f.bytesReceived }),
        ...(f.rttMs === undefined ? {} : { rttMs: f.rttMs }),
      })),
    })),
    stats: {
      subflowsRefused: st?.subflowsRefused ?? {},
      subflowsOpened: st?.subflowsOpened ?? {},
      subflowsClosed: st?.subflowsClosed ?? {},
      ...(st?.lastEnforceMs === undefined ? {} : { lastEnforceMs: st.lastEnforceMs }),
      ...(st?.lastReactionMs === undefined ? {} : { lastReactionMs: st.lastReactionMs }),
    },
    ...(pm?.steering === undefined
      ? {}
      : {
          steering: {
            groups: pm.steering.groups().map((g) => ({ ...g, placements: { ...g.placements } })),
            stats: Object.fromEntries(Object.entries(pm.steering.stats()).filter((e): e is [string, number] => typeof e[1] === 'number')),
          },
        }),
    limits: limits?.counts() ?? { perUe: {}, perNServer: {}, refused: { perUe: 0, perNServer: 0 } },
  };
}

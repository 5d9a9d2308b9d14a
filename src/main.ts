import type { BoardProfile } from './core/board.js';
import { logger } from './core/logger.js';
import { LocalAddresses, createEngine, listenerSpecs, type ProxyEngine } from './services/proxy/index.js';
import { Store } from './store/index.js';
import { Intercept } from './services/intercept/index.js';
import * as nft from './drivers/nft/index.js';
import { Handover, interfacePrefixes } from './services/proxy/handover.js';
import { setFinHold } from './services/proxy/relay.js';
import { Rtnl } from './drivers/netlink/rtnetlink.js';
import { SockDiag } from './drivers/netlink/sock-diag.js';
import { modemAtCall, modemFor, modemView } from './wiring/modem.js';
import { startPaths } from './wiring/paths.js';
import { startUdpSteering } from './wiring/udp.js';
import { pmPolicyInput, startPm } from './wiring/pm.js';
import { startExplicit } from './wiring/explicit.js';
import { startLedger } from './wiring/restore.js';
import { prepareWebSecurity } from './wiring/first-boot.js';
import { SessionLimits } from './services/policy/limits.js';
import { OtaService, boardKeyTexts, boardOtaUrl } from './ota/index.js';
import { createWebServer } from './web/server.js';
import { buildWebDeps } from './wiring/web.js';
import { boardPolicyDefaults, storedExtra } from './wiring/policy.js';
import { startControlSocket } from './web/control.js';
import { startSelection } from './wiring/proxies.js';
import { anycastProfile, startAnycast } from './wiring/anycast.js';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { socketIo } from './drivers/sockets/io.js';
import { parseMptcpSendBuffer, parseRelayBulk, setMptcpSendBuffer, spliceBulk } from './drivers/sockets/index.js';

function packageVersion(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const up of ['..', '../..']) {
    try {
      return (JSON.parse(readFileSync(path.join(here, up, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      /* next */
    }
  }
  return '0.0.0';
}

/**
 * Composition root: builds the services for a board profile, wires them together, and owns the
 * life cycle (start in order, stop in reverse). Everything hardware-facing is created here and
 * injected downward.
 */
const log = logger('duocell:main');

export interface AppOptions {
  stateDir: string;
  /** Override where the web/API listens (tests); default: the board profile's web.listen. */
  webListen?: Array<{ host: string; port: number }>;
}

export interface App {
  readonly board: BoardProfile;
  readonly engine: ProxyEngine;
  readonly store: Store;
  readonly steering: Intercept | undefined;
  /** Where the web/API actually listens. */
  readonly web: Array<{ host: string; port: number }>;
  readonly startedAt: Date;
  close(): Promise<void>;
}

type Stopper = () => Promise<void> | void;

export async function startAppliance(board: BoardProfile, opts: AppOptions): Promise<App> {
  const stops: Stopper[] = [];
  const startedAt = new Date();
  // Optionally bounded MPTCP send queues: a handover's reinjected data waits behind them (docs/relay.md).
  setMptcpSendBuffer(parseMptcpSendBuffer(process.env['DUOCELL_MPTCP_SNDBUF']));
  // Long bulk sessions leave the relay thread for blocking workers (docs/relay.md, "Bulk sessions").
  spliceBulk(parseRelayBulk(process.env['DUOCELL_RELAY_BULK_MIB'], process.env['DUOCELL_RELAY_BULK_MAX']));
  const store = await Store.open({ dir: opts.stateDir, boardDefaults: boardPolicyDefaults(board) });
  // The kernel ledger undoes a crashed run's leftovers now, and everything this run changes at the very end.
  const ledger = await startLedger(store);
  stops.push(async () => {
    try {
      await ledger.close();
    } finally {
      store.close();
    }
  });
  const steering = steeringFor(board);
  const limits = new SessionLimits(store);
  const local = new LocalAddresses();
  const engine = createEngine(board, {
    io: socketIo,
    local,
    admit: limits.admit,
    onMptcpServer: (srv) => {
      if (steering === undefined) return;
      const ttl = steering.config.mserverTtlS;
      store.rememberMServer(srv.address, srv.port, ttl * 1000);
      steering.rememberMServer(srv.address, srv.port).catch((e: Error) => log.warn({ err: e.message }, 'cannot add M-server bypass'));
    },
  });
  stops.push(() => engine.close(5000));
  let webAddrs: Array<{ host: string; port: number }> = [];
  try {
    const explicit = await startExplicit(board, store, { ledger: ledger.ledger });
    stops.splice(1, 0, () => explicit.close()); // undone last before the ledger: draining sessions keep their subflows
    const selection = startSelection(board, store);
    stops.push(() => selection.close());
    const factories = {
      ...explicit.factories,
      fronts: { ...explicit.factories.fronts, transparent: selection.front }, // SNI rules (docs/proxies.md)
      connector: (l: Parameters<typeof selection.connector>[0]) => explicit.factories.connector?.(l) ?? selection.connector(l),
    };
    const listenerNames: string[] = [];
    for (const spec of listenerSpecs(board, { ...factories, interfaces: local.interfaces })) {
      await engine.listen(spec);
      listenerNames.push(spec.name);
    }
    // A pool member announces the shared address once it can serve and only while it stays
    // healthy; stopped before the engine, it withdraws first and the engine then drains.
    const anycastP = anycastProfile(board);
    const anycast = anycastP === undefined ? undefined : await startAnycast(anycastP, undefined, { checks: { listeners: () => listenerNames.every((n) => engine.address(n) !== undefined) } });
    if (anycast !== undefined) stops.push(anycast);
    const links = watchLinks(board, engine, local);
    stops.push(links.stop);
    // Intercept only once the transparent listeners exist (else SYNs would find no socket: fail-open).
    if (steering !== undefined) {
      await steering.start();
      stops.push(() => steering.stop());
      for (const m of store.listMServers()) {
        const left = Math.round((m.expiresAt - Date.now()) / 1000);
        if (left > 0) await steering.rememberMServer(m.address, m.port, left).catch(() => undefined);
      }
    }
    const modem = modemFor(board, process.env);
    if (modem !== undefined) {
      modem.start();
      stops.push(() => modem.stop());
    }
    const ota = new OtaService({ store, boardKeys: boardKeyTexts(board), url: boardOtaUrl(board), cellId: typeof board.cellId === 'string' ? board.cellId : board.name });
    ota.start();
    stops.push(() => ota.stop());
    const paths = await startPaths(board, modem, ledger.ledger, { allowedAccess: () => storedExtra(store, 'default')?.allowedAccess, onChange: (f) => store.onChange(f) }, { stateDir: opts.stateDir });
    if (paths !== undefined) stops.push(() => paths.close());
    const pm = await startPm(board, pmPolicyInput(store, engine), paths, { ledger: ledger.ledger, interfaces: local.interfaces });
    if (pm !== undefined) stops.push(() => pm.close());
    if (pm !== undefined) paths?.meter.setPassive((p) => pm.service.subflowRtts(p.addresses));
    const udp = await startUdpSteering(board, store, paths, ledger.ledger);
    if (udp !== undefined) stops.push(() => udp.stop());
    const deps = buildWebDeps({ board, engine, store, startedAt, version: packageVersion(), modem: () => modemView(modem), ota, limits, selection, ...(pm === undefined ? {} : { pm }), ...(paths === undefined ? {} : { paths: () => paths.list() }), ...(paths?.wlan === undefined ? {} : { wlan: paths.wlan }), ...(udp === undefined ? {} : { udp }), ...(anycast === undefined ? {} : { anycast: anycast.view }) });
    paths?.service.on('event', () => deps.emit('paths'));
    // Handover from the radio itself (nl80211 disconnect, the modem's data session), not only the
    // link: a path-down aborts its subflows too. MP_PRIO before the abort is opt-in
    // (DUOCELL_HANDOVER_BACKUP=1): once it applied, the benchmark's realistic other-path handover
    // went from 187 ms to 713 ms (median of 5; docs/relay.md), so the default is the abort alone.
    if (process.env['DUOCELL_HANDOVER_BACKUP'] === '1') links.handover.useBackup(pm?.backupSubflow);
    // REMOVE_ADDR over a survivor for the dead path's address ids no survivor shares (docs/relay.md
    // "REMOVE_ADDR"): on by default, DUOCELL_HANDOVER_REMOVE=0 turns it off.
    if (process.env['DUOCELL_HANDOVER_REMOVE'] !== '0') links.handover.useWithdrawal(pm?.withdrawal);
    paths?.service.on('event', (e) => {
      if (e.type === 'path-down') void links.handover.linkDown(e.path.interface).catch((err: Error) => log.warn({ err: err.message }, 'handover failed'));
    });
    if (paths !== undefined) {
      // The half-closed stall (docs/relay.md): a LAN client's FIN waits for the MPTCP upstream's joins, one per other usable uplink.
      const hold = (): void => void setFinHold(socketIo, { joins: Math.max(0, paths.list().filter((p) => p.state === 'up').length - 1) });
      hold();
      paths.service.on('event', hold);
    }
    if (modem !== undefined) modem.on('state', () => deps.emit('modem'));
    // First boot: the set-up secret, the /metrics token and the device certificate (made once, per device).
    const sec = await prepareWebSecurity(board, opts.stateDir, opts.webListen);
    const setUp = (): boolean => typeof store.getSetting('web.admin.hash') === 'string';
    sec.writeBanner(setUp());
    if (!setUp() && sec.setupSecret !== undefined) {
      // The secret itself only where a person at the box reads it (banner files; stdout on the simulated board), never in the journal.
      log.info({ banner: path.join(opts.stateDir, 'first-boot', 'banner.txt'), ...(sec.tls === undefined ? {} : { fingerprint: sec.tls.fingerprint }) }, 'first boot: set-up needs the set-up secret (console banner, boot partition, `duocell first-boot`)');
      if (board.web.banner?.stdout === true) process.stdout.write(`\n${sec.banner(false)}\n`);
    }
    const web = await createWebServer(deps, {
      listen: sec.listen,
      ...(sec.setupSecret === undefined ? {} : { firstBootSecret: sec.setupSecret }),
      ...(sec.metricsToken === undefined ? {} : { metricsToken: sec.metricsToken }),
      onSetUp: () => sec.writeBanner(true),
    });
    stops.push(() => web.close());
    webAddrs = web.addresses();
    const control = await startControlSocket(deps, path.join(opts.stateDir, 'control.sock'), modemAtCall(modem));
    stops.push(() => control.close());
  } catch (e) {
    for (const s of stops.reverse()) await s();
    throw e;
  }
  log.info({ board: board.name, preset: board.preset }, 'duocell running');
  return {
    board,
    engine,
    store,
    steering,
    web: webAddrs,
    startedAt,
    async close() {
      for (const s of stops.reverse()) {
        try {
          await s();
        } catch (e) {
          log.error({ err: (e as Error).message }, 'error while stopping');
        }
      }
    },
  };
}

/** Steering is on when the board has transparent listeners and does not turn it off. */
export function steeringFor(board: BoardProfile): Intercept | undefined {
  const tl = board.listeners.filter((l) => l.kind === 'transparent');
  const sp = board.steering ?? {};
  if (tl.length === 0 || sp.enabled === false) return undefined;
  return new Intercept({
    table: sp.table ?? 'duocell',
    lanInterfaces: board.lan.interfaces,
    ports: tl.map((l) => ({ port: l.port, claim: l.claim ?? 'mptcp' })),
    mark: sp.mark ?? 0x1,
    routeTable: sp.routeTable ?? 100,
    mserverTtlS: sp.mserverTtlS ?? 3600,
    synRate: sp.synRate ?? 2000,
    synBurst: sp.synBurst ?? 4000,
    perSourceMax: sp.perSourceMax ?? 512,
    livenessMs: sp.livenessMs ?? 1500,
  }, nft.interceptNft());
}

/** Abort the subflows of a radio the moment it goes down (see services/proxy/handover.ts). */
function watchLinks(board: BoardProfile, engine: ProxyEngine, local: LocalAddresses): { stop: Stopper; handover: Handover } {
  const names = new Set([...board.lan.interfaces, ...board.uplinks.map((u) => u.interface)]);
  let diag: SockDiag | undefined; // opened at the first link down
  // Prefixes from the address snapshot, refreshed below before learn() reads it.
  const handover = new Handover({ engine, destroy: (t) => (diag ??= new SockDiag()).destroy(t), prefixesOf: (n) => interfacePrefixes(n, local.interfaces) });
  for (const n of names) handover.learn(n);
  let rtnl: Rtnl | undefined;
  try {
    rtnl = Rtnl.open();
    rtnl.on('link', ({ link }) => {
      if (!names.has(link.name)) return;
      if (link.up) handover.learn(link.name);
      else void handover.linkDown(link.name).catch((e: Error) => log.warn({ err: e.message }, 'handover failed'));
    });
    rtnl.on('address', () => {
      local.refresh(); // the proxy's target filter refuses the box's own addresses as they come
      for (const n of names) handover.learn(n);
    });
    rtnl.subscribe(['LINK', 'IPV4_IFADDR', 'IPV6_IFADDR']);
  } catch (e) {
    log.warn({ err: (e as Error).message }, 'no rtnetlink link events: radios going down are noticed by TCP timeouts only');
  }
  return {
    stop: () => {
      rtnl?.close();
      diag?.close();
    },
    handover,
  };
}

import { EventEmitter } from 'node:events';
import type { BoardProfile } from '../core/board.js';
import { logger } from '../core/logger.js';
import { openNetlinkStack, type NetlinkStack } from '../drivers/netlink/stack.js';
import type { CellularModem } from '../drivers/modem/cellular.js';
import { PathsService } from '../services/paths/index.js';
import { PathMeter, type PathMeasure, type ProbeTarget } from '../services/paths/measure.js';
import { udpProbeTransport } from '../drivers/probe/udp.js';
import { icmpProbeTransport } from '../drivers/probe/icmp.js';
import type { CellularSource, CellularState, PathSignal } from '../services/paths/types.js';
import type { PathView as WebPathView, SignalView, WlanView } from '../web/deps.js';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Supplicant } from '../drivers/wlan/supplicant.js';
import { UplinkDhcp, withLeaseGateway } from '../drivers/dhcp/uplink.js';
import { DataInterface } from '../drivers/modem/netif.js';
import type { WlanDriver } from '../drivers/wlan/index.js';
import { readUplinks } from '../drivers/sysfs/net.js';
import type { KernelLedger } from '../services/restore/ledger.js';

/**
 * The uplinks in the running appliance: the paths service over rtnetlink (state, addresses, a
 * routing table and source rule per uplink, restored when the kernel removes them), fed by the
 * modem manager (cellular) and the WLAN driver; byte counters for the page from /sys.
 */
const log = logger('duocell:wiring:paths');

/** The modem manager seen as the paths service's cellular source. */
export function cellularSource(mm: CellularModem): CellularSource {
  const ee = new EventEmitter();
  const state = (): CellularState => {
    const s = mm.snapshot();
    return {
      connected: s.state === 'connected',
      registered: s.registration?.registered ?? false,
      ...(s.settings?.ipv4?.gateway === undefined ? {} : { gateway4: s.settings.ipv4.gateway }),
      ...(s.settings?.ipv6?.gateway === undefined ? {} : { gateway6: s.settings.ipv6.gateway }),
      ...(s.signal === undefined ? {} : { signal: { ...(s.signal.rssi === undefined ? {} : { rssiDbm: s.signal.rssi }), ...(s.signal.rsrp === undefined ? {} : { rsrpDbm: s.signal.rsrp }), ...(s.signal.rsrq === undefined ? {} : { rsrqDb: s.signal.rsrq }), ...(s.signal.snr === undefined ? {} : { sinrDb: s.signal.snr }) } }),
      ...(s.registration?.operator === undefined ? {} : { operator: s.registration.operator }),
      ...(s.signal?.rat === undefined ? {} : { technology: s.signal.rat }),
      reason: s.reason,
    };
  };
  const push = (): void => void ee.emit('state', state());
  mm.on('state', push);
  mm.on('signal', push);
  mm.on('settings', push);
  return {
    get state() {
      return state();
    },
    on: (ev, cb) => ee.on(ev, cb),
    off: (ev, cb) => ee.off(ev, cb),
  };
}

export interface RunningPaths {
  readonly service: PathsService;
  /** The mptcp_pm client of the same netlink stack (undefined without kernel MPTCP). */
  readonly pm: NetlinkStack['pm'];
  /** RTT, jitter and loss per path (active probes, passive subflow RTTs). */
  readonly meter: PathMeter;
  list(): WebPathView[];
  /** The WLAN uplink's radio, for GET /wlan (absent without a WLAN uplink). */
  wlan?: () => WlanView;
  close(): Promise<void>;
}

/** What the paths need from policy: the access types the cell's default policy allows. */
export interface PathsPolicy {
  /** undefined: no restriction stored. */
  allowedAccess(): readonly ('cellular' | 'wlan')[] | undefined;
  onChange(fn: () => void): unknown;
}

/** The page's view of a path's measurement. */
export function measureView(m: PathMeasure | undefined): WebPathView['measure'] {
  if (m === undefined) return undefined;
  return {
    ...(m.target === '' ? {} : { target: m.target }),
    samples: m.samples,
    ...(m.rttMs === undefined ? {} : { rttMedianMs: m.rttMs.median, rttP95Ms: m.rttMs.p95, rttMinMs: m.rttMs.min }),
    ...(m.jitterMs === undefined ? {} : { jitterMs: m.jitterMs }),
    ...(m.lossPct === undefined ? {} : { lossPct: m.lossPct }),
    ...(m.passiveRttMs === undefined ? {} : { passiveRttMs: m.passiveRttMs, passiveSubflows: m.passiveSubflows ?? 0 }),
  };
}

/** Metric of the main-table default route via the WLAN lease's gateway (below the cellular one, 50). */
export const WLAN_DEFAULT_METRIC = 20;

/** wpa_supplicant's global control socket (systemd/duocell-wlan.service). */
export const WPA_GLOBAL_SOCKET = '/run/duocell-wlan/global';

/** The page's view of the WLAN radio. */
export function wlanView(d: WlanDriver): WlanView {
  const s = d.state;
  const ch = s.frequencyMhz === undefined ? undefined : s.frequencyMhz === 2484 ? 14 : s.frequencyMhz < 2484 ? (s.frequencyMhz - 2407) / 5 : s.frequencyMhz >= 5000 && s.frequencyMhz < 5900 ? (s.frequencyMhz - 5000) / 5 : undefined;
  return {
    present: s.present,
    interface: s.ifname,
    mode: s.mode ?? 'unknown',
    state: !s.present ? 'absent' : s.up ? 'up' : s.associated === true ? 'associated' : 'down',
    ...(s.ssid === undefined ? {} : { ssid: s.ssid }),
    ...(s.bssid === undefined ? {} : { bssid: s.bssid }),
    ...(s.frequencyMhz === undefined ? {} : { frequencyMhz: s.frequencyMhz }),
    ...(ch === undefined || !Number.isInteger(ch) ? {} : { channel: ch }),
    ...(s.signalDbm === undefined ? {} : { signalDbm: s.signalDbm }),
    ...(s.txBitrateMbps === undefined ? {} : { txBitrateMbps: s.txBitrateMbps }),
    ...(s.rxBitrateMbps === undefined ? {} : { rxBitrateMbps: s.rxBitrateMbps }),
    ...(s.stations === undefined ? {} : { stations: s.stations.length }),
  };
}

/** The RSSI of a path: the WLAN signal, or the modem's RSSI (never its RSRP, which has its own field). */
const rssi = (access: 'cellular' | 'wlan', s: PathSignal): number | undefined => (access === 'wlan' ? s.dbm : s.rssiDbm);

/** The page's view of a path's signal: RSSI and RSRP each under its own name. */
export function signalView(access: 'cellular' | 'wlan', sig: PathSignal): SignalView {
  const r = rssi(access, sig);
  return {
    ...(r === undefined ? {} : { rssiDbm: r }),
    ...(sig.rsrpDbm === undefined ? {} : { rsrpDbm: sig.rsrpDbm }),
    ...(sig.rsrqDb === undefined ? {} : { rsrq: sig.rsrqDb }),
    ...(sig.sinrDb === undefined ? {} : { sinr: sig.sinrDb }),
    ...(access !== 'wlan' || sig.ssid === undefined ? {} : { ssid: sig.ssid }),
    ...(access !== 'wlan' || sig.bssid === undefined ? {} : { bssid: sig.bssid }),
    ...(access !== 'wlan' || sig.bitrateMbps === undefined ? {} : { txBitrateMbps: sig.bitrateMbps }),
    bars: bars(sig.dbm, sig.rsrpDbm),
  };
}

const bars = (dbm: number | undefined, rsrp: number | undefined): number => {
  const x = rsrp ?? (dbm === undefined ? undefined : dbm - 20);
  if (x === undefined) return 0;
  return x >= -85 ? 4 : x >= -95 ? 3 : x >= -105 ? 2 : x >= -115 ? 1 : 0;
};

/** The meter's per-path targets from the board: address, port, and the transport of `probe.method`. */
export function probeTargets(board: Pick<BoardProfile, 'uplinks'>): Record<string, ProbeTarget> {
  return Object.fromEntries(
    board.uplinks
      .filter((u) => u.probe !== undefined)
      .map((u) => [
        u.name,
        {
          ...(u.probe?.address === undefined ? {} : { address: u.probe.address }),
          ...(u.probe?.port === undefined ? {} : { port: u.probe.port }),
          transport: u.probe?.method === 'icmp' ? icmpProbeTransport : udpProbeTransport,
        },
      ]),
  );
}

export async function startPaths(board: BoardProfile, modem: CellularModem | undefined, ledger?: KernelLedger, policy?: PathsPolicy, opts: { stateDir?: string; wpaSocket?: string } = {}): Promise<RunningPaths | undefined> {
  if (board.uplinks.length === 0) return undefined;
  let stack: NetlinkStack;
  try {
    stack = await openNetlinkStack({ wlanInterfaces: board.uplinks.filter((u) => u.access === 'wlan').map((u) => u.interface) });
  } catch (e) {
    log.warn({ err: (e as Error).message }, 'no netlink: paths from /sys only, routes not kept');
    return undefined;
  }
  const wlanUplink = board.uplinks.find((u) => u.access === 'wlan');
  const wlanIf = wlanUplink?.interface;
  const wlan = wlanIf === undefined ? undefined : stack.wlan.get(wlanIf);
  // The network the WLAN uplink joins: wpa_supplicant runs it with the configuration written here.
  let supplicant: Supplicant | undefined;
  let dhcp: UplinkDhcp | undefined;
  if (wlanUplink?.wlan !== undefined && wlan !== undefined && opts.stateDir !== undefined) {
    const { ssid, passphrase, country } = wlanUplink.wlan;
    supplicant = new Supplicant({
      ifname: wlanUplink.interface,
      network: { ssid, ...(passphrase === undefined ? {} : { passphrase }) },
      ...(country === undefined ? {} : { country }),
      socketPath: opts.wpaSocket ?? WPA_GLOBAL_SOCKET,
      confPath: path.join(opts.stateDir, 'wlan', `wpa_supplicant-${wlanUplink.interface}.conf`),
    });
    let present = wlan.state.present;
    wlan.on('state', (s) => {
      if (s.present && !present) void supplicant?.ensure(); // the radio (re)appeared: hand it over again
      present = s.present;
    });
    void supplicant.start();
    // Once wpa_supplicant has connected (operstate UP), the same udhcpc driver as the AT-only
    // modem's addresses the uplink; the lease goes in through rtnetlink (DataInterface).
    dhcp = new UplinkDhcp({
      ifname: wlanUplink.interface,
      link: wlan,
      netif: new DataInterface({ ifname: wlanUplink.interface, ops: stack.rtnl, rawIp: false, keepLinkUp: true, defaultMetric: WLAN_DEFAULT_METRIC }),
    });
  }
  const service = new PathsService({
    uplinks: board.uplinks.map((u, i) => ({
      name: u.name,
      access: u.access,
      interface: u.interface,
      table: u.table ?? 200 + i,
      ...(u.gateway4 === undefined ? {} : { gateway4: u.gateway4 }),
      ...(u.gateway6 === undefined ? {} : { gateway6: u.gateway6 }),
    })),
    net: stack.rtnl,
    routing: stack.routing,
    ...(modem === undefined ? {} : { cellular: cellularSource(modem) }),
    ...(wlan === undefined ? {} : { wlan: dhcp === undefined ? wlan : withLeaseGateway(wlan, dhcp) }),
    counters: (i) => stack.rtnl.counters(i),
    rtt: async (p) => meter.rttMs(p.name),
  });
  // Probed only where the board asks: by ICMP echo (`method: icmp`, what the real boards ship:
  // every gateway answers ping) or by UDP echo (the default method; most gateways answer nothing
  // on UDP 7, and 100 % "loss" would mislead). Elsewhere the passive subflow RTTs stand alone.
  const off = new Set(board.uplinks.filter((u) => u.probe === undefined || u.probe.enabled === false).map((u) => u.name));
  const meter = new PathMeter({
    transport: udpProbeTransport,
    targets: probeTargets(board),
    // never probe a path policy forbids, nor one the board turns probing off for
    allowed: (p) => !off.has(p.name) && (policy?.allowedAccess()?.includes(p.access) ?? true),
  });
  service.on('event', (e) => meter.update(e.path));
  policy?.onChange(() => meter.refresh());
  // The uplink tables' duocell-made rules and routes are removed on a clean exit (and at the next start after a crash).
  board.uplinks.forEach((u, i) => ledger?.recordTable(u.table ?? 200 + i));
  await service.start();
  dhcp?.start();
  for (const p of service.list()) meter.update(p);
  // How long from nl80211's loss event to the path going down (issue 14: ≤ 200 ms). The link's
  // carrier loss (rtnetlink) may take the path down first: then the figure is negative.
  let upAt = 0;
  let downAt: number | undefined;
  const lossLog = (kind: string, reasonCode: number | undefined, ms: number, path: string): void =>
    log.info({ path, event: kind, reasonCode, msFromNl80211Event: Math.round(ms * 100) / 100 }, `WLAN path down ${ms.toFixed(1)} ms after the nl80211 ${kind} event`);
  service.on('event', (ev) => {
    if (ev.path.access !== 'wlan' || wlan === undefined) return;
    const now = performance.now();
    if (ev.type === 'path-down') {
      const loss = wlan.lastLoss;
      if (loss !== undefined && loss.atMs >= upAt && now - loss.atMs < 10_000) lossLog(loss.event.kind, loss.event.reasonCode, now - loss.atMs, ev.path.name);
      else downAt = now;
    } else if (ev.type === 'path-up') {
      upAt = now;
      downAt = undefined;
      log.info({ path: ev.path.name, ssid: wlan.state.ssid, bssid: wlan.state.bssid }, 'WLAN path up');
    }
  });
  wlan?.on('radio', (r) => {
    if (!r.event.lost || downAt === undefined) return;
    if (r.atMs - downAt < 2000) lossLog(r.event.kind, r.event.reasonCode, downAt - r.atMs, wlanUplink?.name ?? 'wlan');
    downAt = undefined;
  });
  return {
    service,
    pm: stack.pm,
    meter,
    ...(wlan === undefined ? {} : { wlan: () => wlanView(wlan) }),
    list(): WebPathView[] {
      const counters = new Map(readUplinks(board.uplinks).map((p) => [p.name, p]));
      return service.list().map((p) => {
        const c = counters.get(p.name);
        const sig = p.signal;
        const m = measureView(meter.get(p.name));
        return {
          name: p.name,
          access: p.access,
          interface: p.interface,
          state: p.state === 'up' ? 'up' : 'down',
          addresses: [...p.addresses],
          ...(sig.quality === 'known'
            ? { signal: signalView(p.access, sig) }
            : {}),
          bytesTx: c?.bytesTx ?? 0,
          bytesRx: c?.bytesRx ?? 0,
          ...(p.rttMs === undefined ? {} : { rttMs: p.rttMs }),
          ...(m === undefined ? {} : { measure: m }),
        };
      });
    },
    async close() {
      meter.stop();
      supplicant?.stop();
      await dhcp?.stop();
      service.stop();
      await stack.close();
    },
  };
}

import type { BoardProfile } from '../core/board.js';
import { logger } from '../core/logger.js';
import { DuocellError } from '../core/errors.js';
import { DataInterface, ModemManager, managerOptionsFromBoard, type NetifOps } from '../drivers/modem/index.js';
import { Rtnl } from '../drivers/netlink/rtnetlink.js';
import type { ModemView } from '../web/deps.js';

/**
 * The cellular modem in the running appliance: a ModemManager built from the board profile. On
 * the simulated board the ports are the simulator's pty links, named by DUOCELL_MODEM_LINKS
 * ("at=PATH,qmi=PATH", set by `duocell sim up`); on hardware they are found through sysfs.
 */
const log = logger('duocell:modem');

export function modemFor(board: BoardProfile, env: NodeJS.ProcessEnv): ModemManager | undefined {
  const m = board.modem;
  if (m === undefined) return undefined;
  let links: { at: string; qmi: string } | undefined;
  if (env.DUOCELL_MODEM_LINKS !== undefined) {
    const kv = Object.fromEntries(env.DUOCELL_MODEM_LINKS.split(',').map((p) => p.split('=') as [string, string]));
    if (kv.at !== undefined && kv.qmi !== undefined) links = { at: kv.at, qmi: kv.qmi };
  }
  if (m.control === 'at') {
    // Honest refusal: an AT-only modem needs a PPP or ECM/NCM data path that this build lacks.
    const err = new DuocellError('DC_MODEM_CONTROL', 'modem.control "at" is not supported by this build (AT-only data sessions: PPP or ECM/NCM with DHCP are not implemented); the cellular path stays down — use a QMI modem with control "qmi"');
    log.error({ code: err.code }, err.message);
    return undefined;
  }
  if (m.simulated === true && links === undefined) {
    log.info('simulated modem without a running simulator: cellular path stays down');
    return undefined;
  }
  const opts = managerOptionsFromBoard(m, { ...(links === undefined ? {} : { links }), ...(env.DUOCELL_SIM_PIN === undefined ? {} : { pin: env.DUOCELL_SIM_PIN }) });
  // duocell configures the data interface itself (raw IP, MTU, addresses, link, default route)
  let netif: DataInterface | undefined;
  if (opts.netInterface !== undefined) {
    let rtnl: Rtnl | undefined;
    const lazy = (): Rtnl => (rtnl ??= Rtnl.open());
    const ops: NetifOps = {
      link: (n) => lazy().link(n),
      setLinkUp: (i, up) => lazy().setLinkUp(i, up),
      setMtu: (i, mtu) => lazy().setMtu(i, mtu),
      addresses: (f) => lazy().addresses(f),
      addAddress: (i, a, l, o) => lazy().addAddress(i, a, l, o),
      deleteAddress: (i, a, l) => lazy().deleteAddress(i, a, l),
      addRoute: (r, o) => lazy().addRoute(r, o),
      deleteRoute: (r) => lazy().deleteRoute(r),
      close: () => {
        rtnl?.close();
        rtnl = undefined;
      },
    };
    netif = new DataInterface({ ifname: opts.netInterface, ops, defaultMetric: CELLULAR_DEFAULT_METRIC });
  }
  return new ModemManager({ ...opts, ...(netif === undefined ? {} : { netif }) });
}

/** Metric of the main-table default route via the cellular session (a fixed uplink's wins below it). */
export const CELLULAR_DEFAULT_METRIC = 50;

/** `modem.control: "at"` is refused (see modemFor); the view says why. */
export function modemRefusal(board: BoardProfile): string | undefined {
  return board.modem?.control === 'at' ? 'DC_MODEM_CONTROL: modem.control "at" is not supported by this build' : undefined;
}

export function modemView(mm: ModemManager | undefined): ModemView {
  if (mm === undefined) return { present: false, state: 'absent', sim: 'unknown' };
  const s = mm.snapshot();
  const addrs = [s.settings?.ipv4?.address, s.settings?.ipv6?.address].filter((a): a is string => a !== undefined);
  return {
    present: s.state !== 'absent',
    state: s.state,
    ...(s.info.model === undefined ? {} : { model: s.info.model }),
    ...(s.info.imei === undefined ? {} : { imei: s.info.imei }),
    sim: s.state === 'sim-locked' ? 'locked' : s.state === 'absent' || s.state === 'probing' ? 'unknown' : 'ready',
    ...(s.registration?.operator === undefined ? {} : { operator: s.registration.operator }),
    ...(s.signal?.rat === undefined ? {} : { rat: s.signal.rat }),
    ...(s.signal?.band === undefined ? {} : { band: String(s.signal.band) }),
    ...(s.signal?.rssi === undefined ? {} : { rssiDbm: s.signal.rssi }),
    ...(s.signal?.rsrp === undefined ? {} : { rsrp: s.signal.rsrp }),
    ...(s.signal?.rsrq === undefined ? {} : { rsrq: s.signal.rsrq }),
    ...(s.signal?.snr === undefined ? {} : { sinr: s.signal.snr }),
    ...(s.settings?.apn === undefined ? {} : { apn: s.settings.apn }),
    ...(addrs.length === 0 ? {} : { addresses: addrs }),
    ...(s.info.atLost === undefined ? {} : { warning: `${s.info.atLost.code}: AT port lost, QMI healthy: band and AT URCs unavailable (${s.info.atLost.message})` }),
  };
}

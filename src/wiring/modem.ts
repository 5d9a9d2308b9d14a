import type { BoardProfile } from '../core/board.js';
import { logger } from '../core/logger.js';
import { DuocellError } from '../core/errors.js';
import { DataInterface, ModemManager, managerOptionsFromBoard, resolveModemPorts, type NetifOps } from '../drivers/modem/index.js';
import { checkPassthrough, passthroughTimeout } from '../drivers/modem/at-passthrough.js';
import type { CellularModem } from '../drivers/modem/cellular.js';
import type { ModemAtCall } from '../web/control.js';
import { Rtnl } from '../drivers/netlink/rtnetlink.js';
import type { ModemView } from '../web/deps.js';

/**
 * The cellular modem in the running appliance: a ModemManager built from the board profile. On
 * the simulated board the ports are the simulator's pty links, named by DUOCELL_MODEM_LINKS
 * ("at=PATH,qmi=PATH", set by `duocell sim up`); on hardware they are found through sysfs.
 */
const log = logger('duocell:modem');

export function modemFor(board: BoardProfile, env: NodeJS.ProcessEnv): CellularModem | undefined {
  const m = board.modem;
  if (m === undefined) return undefined;
  let links: { at: string; qmi: string } | undefined;
  let atLink: string | undefined;
  if (env.DUOCELL_MODEM_LINKS !== undefined) {
    const kv = Object.fromEntries(env.DUOCELL_MODEM_LINKS.split(',').map((p) => p.split('=') as [string, string]));
    if (kv.at !== undefined && kv.qmi !== undefined) links = { at: kv.at, qmi: kv.qmi };
    atLink = kv.at;
  }
  if (m.simulated === true && links === undefined && !(m.control === 'at' && atLink !== undefined)) {
    log.info('simulated modem without a running simulator: cellular path stays down');
    return undefined;
  }
  if (m.control === 'at') return atModemFor(m, atLink, env);
  const opts = managerOptionsFromBoard(m, { ...(links === undefined ? {} : { links }), ...(env.DUOCELL_SIM_PIN === undefined ? {} : { pin: env.DUOCELL_SIM_PIN }) });
  // duocell configures the data interface itself (raw IP, MTU, addresses, link, default route)
  const netif = opts.netInterface === undefined ? undefined : dataInterface(opts.netInterface, true);
  return new ModemManager({ ...opts, ...(netif === undefined ? {} : { netif: netif.netif }) });
}

/**
 * `modem.control: "at"`: an AT-only module whose data side is an ECM/NCM netdev (`ports.net`,
 * default usb0) addressed by DHCP from the module (ModemManager with control 'at', at-data.ts).
 */
function atModemFor(m: NonNullable<BoardProfile['modem']>, atLink: string | undefined, env: NodeJS.ProcessEnv): CellularModem {
  const ifname = m.ports?.net?.name ?? 'usb0';
  const ports = atLink !== undefined ? [atLink] : async (): Promise<string[]> => {
    const r = await resolveModemPorts(m);
    return r.at === undefined ? [] : [r.at];
  };
  const d = dataInterface(ifname, false);
  const pin = env.DUOCELL_SIM_PIN;
  return new ModemManager({
    control: 'at',
    ports,
    netInterface: ifname,
    apn: m.apn?.name ?? '',
    netif: d.netif,
    linkUp: async (name) => {
      const l = await d.ops.link(name);
      if (l === undefined) throw new DuocellError('DC_MODEM_NETIF', `${name}: no such network interface (is cdc_ether/cdc_ncm bound to the modem?)`, { origin: 'kernel' });
      await d.ops.setLinkUp(l.index, true);
    },
    ...(pin === undefined ? {} : { pin }),
  });
}

function dataInterface(ifname: string, rawIp: boolean): { netif: DataInterface; ops: NetifOps } {
  {
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
    return { netif: new DataInterface({ ifname, ops, defaultMetric: CELLULAR_DEFAULT_METRIC, rawIp }), ops };
  }
}

/** The control socket's AT pass-through, through the manager's own AT queue (never a second writer). */
export function modemAtCall(mm: CellularModem | undefined): ModemAtCall | undefined {
  if (mm === undefined) return undefined;
  return async (body) => {
    const b = (typeof body === 'object' && body !== null ? body : {}) as { command?: unknown; timeoutMs?: unknown };
    const cmd = checkPassthrough(b.command);
    const timeoutMs = passthroughTimeout(b.timeoutMs);
    log.info({ command: cmd }, 'AT pass-through');
    try {
      const r = await mm.atCommand(cmd, timeoutMs);
      return { lines: r.lines, final: r.final };
    } catch (e) {
      const d = e as DuocellError;
      // the modem's own error answer is a reply, not a failure of the pass-through
      if (d.code === 'DC_AT_ERROR' || d.code === 'DC_AT_CME_ERROR' || d.code === 'DC_AT_CMS_ERROR' || d.code === 'DC_AT_NO_CARRIER')
        return { lines: [], final: d.message.replace(/^[^:]*: /, ''), finalText: d.code };
      throw e;
    }
  };
}

/** Metric of the main-table default route via the cellular session (a fixed uplink's wins below it). */
export const CELLULAR_DEFAULT_METRIC = 50;

/** Every modem.control value is supported now (AT-only since issue 14); kept for callers. */
export function modemRefusal(_board: BoardProfile): string | undefined {
  return undefined;
}

export function modemView(mm: CellularModem | undefined): ModemView {
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

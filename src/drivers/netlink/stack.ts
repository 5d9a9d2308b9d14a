import { logger } from '../../core/logger.js';
import { MptcpPm } from './mptcp-pm.js';
import { Rtnl } from './rtnetlink.js';
import { RoutingKeeper } from './uplink-routing.js';
import { WlanDriver } from '../wlan/index.js';

/**
 * Opens the kernel-facing netlink pieces the paths and pm services need, in this process's
 * network namespace: rtnetlink (subscribed to links, addresses, routes, rules), the routing
 * keeper, the mptcp_pm client (absent MPTCP: undefined, logged), and one WLAN driver per WLAN
 * interface. main.ts passes them to PathsService / PmService.
 */

const log = logger('duocell:netlink');

export interface NetlinkStack {
  readonly rtnl: Rtnl;
  readonly routing: RoutingKeeper;
  readonly pm: MptcpPm | undefined;
  readonly wlan: ReadonlyMap<string, WlanDriver>;
  close(): void;
}

export async function openNetlinkStack(o: { wlanInterfaces?: readonly string[]; pollMs?: number } = {}): Promise<NetlinkStack> {
  const rtnl = Rtnl.open();
  rtnl.subscribe();
  const routing = new RoutingKeeper(rtnl);
  let pm: MptcpPm | undefined;
  try {
    pm = await MptcpPm.open();
  } catch (e) {
    log.warn({ err: e }, 'mptcp_pm unavailable: MPTCP endpoints will not be managed');
  }
  const wlan = new Map<string, WlanDriver>();
  for (const ifname of o.wlanInterfaces ?? []) {
    const d = new WlanDriver({ ifname, rtnl, ...(o.pollMs === undefined ? {} : { pollMs: o.pollMs }) });
    await d.start();
    wlan.set(ifname, d);
  }
  return {
    rtnl,
    routing,
    pm,
    wlan,
    close() {
      for (const d of wlan.values()) d.stop();
      routing.close();
      pm?.close();
      rtnl.close();
    },
  };
}

import fs from 'node:fs';
import { logger } from '../core/logger.js';
import { MptcpPm } from '../drivers/netlink/mptcp-pm.js';
import { Rtnl } from '../drivers/netlink/rtnetlink.js';
import { toRouteSpec, toRuleSpec } from '../drivers/netlink/uplink-routing.js';
import { RTPROT_DUOCELL } from '../protocols/netlink/index.js';
import { KernelLedger, type LedgerKernel, type LedgerStore } from '../services/restore/ledger.js';

/**
 * The kernel ledger in the running appliance: sysctls through /proc/sys, limits and endpoints
 * through mptcp_pm, a table's duocell-made rules and routes (protocol RTPROT_DUOCELL) through
 * rtnetlink. Each netlink client is opened when first needed and closed by close().
 */
const log = logger('duocell:wiring:restore');

const sysctlPath = (name: string): string => `/proc/sys/${name.replace(/\./g, '/')}`;

export interface RunningLedger {
  readonly ledger: KernelLedger;
  /** Undo everything recorded (clean exit), then close the netlink clients. */
  close(): Promise<void>;
}

export function kernelForLedger(): LedgerKernel & { close(): void } {
  let pm: Promise<MptcpPm | undefined> | undefined;
  let rtnl: Rtnl | undefined;
  const getPm = (): Promise<MptcpPm | undefined> =>
    (pm ??= MptcpPm.open().catch((e: Error) => {
      log.debug({ err: e.message }, 'no mptcp_pm: no MPTCP limits or endpoints to restore');
      return undefined;
    }));
  const getRtnl = (): Rtnl => (rtnl ??= Rtnl.open());
  return {
    readSysctl: (n) => fs.readFileSync(sysctlPath(n), 'utf8'),
    writeSysctl: (n, v) => fs.writeFileSync(sysctlPath(n), `${v}\n`),
    limits: async () => (await getPm())?.limits(),
    setLimits: async (l) => {
      await (await getPm())?.setLimits(l);
    },
    endpoints: async () => (await (await getPm())?.endpoints()) ?? [],
    deleteEndpoint: async (id, address) => {
      await (await getPm())?.deleteEndpoint(id, address);
    },
    clearTable: async (table) => {
      const r = getRtnl();
      let rules = 0;
      let routes = 0;
      for (const x of await r.rules()) {
        if (x.table !== table || x.protocol !== RTPROT_DUOCELL) continue;
        await r.deleteRule(toRuleSpec(x));
        rules++;
      }
      for (const x of await r.routes({ table })) {
        if (x.protocol !== RTPROT_DUOCELL) continue;
        await r.deleteRoute(toRouteSpec(x));
        routes++;
      }
      return { rules, routes };
    },
    close() {
      rtnl?.close();
      void pm?.then((p) => p?.close());
    },
  };
}

/** Open the ledger and undo what a run that did not exit cleanly left behind. */
export async function startLedger(store: LedgerStore): Promise<RunningLedger> {
  const kernel = kernelForLedger();
  const ledger = new KernelLedger(store, kernel);
  try {
    await ledger.recover();
  } catch (e) {
    // Rows that could not be undone stay in the ledger: their originals are still the true ones.
    log.error({ err: (e as Error).message }, 'not every leftover kernel setting could be restored at start');
  }
  return {
    ledger,
    async close() {
      try {
        await ledger.undo();
      } finally {
        kernel.close();
      }
    },
  };
}

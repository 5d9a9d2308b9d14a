import type { EventEmitter } from 'node:events';
import { logger } from '../../core/logger.js';
import { SIM_ADDR } from '../board.js';
import type { Host } from '../hosts.js';
import type { ModemSimConfig, WdsSessionEvent } from './sim.js';

/**
 * The modem simulator inside the simulated board: what the data session hands out is the
 * board's wwan0 addressing (dc-cell 10.21.0.2/24, fd00:21::2/64, gateways on dc-conc), and a
 * successful QMI Start Network is what puts that address on wwan0 and brings the link up;
 * the session ending (drop, registration lost, port gone) takes it away again.
 *
 *   ModemSimulator ──'wds-started' {family, address, prefixLength}──► ip addr replace … dev wwan0; link up
 *                  ──'wds-stopped' {family, address, prefixLength}──► ip addr del …; link down when none left
 *
 * Routes and policy rules for the uplink are the paths service's job, not this hook's.
 */

const log = logger('duocell:sim:modem');

export function simBoardModemConfig(links: { readonly at: string; readonly qmi: string }, extra: Partial<ModemSimConfig> = {}): ModemSimConfig {
  const cell = SIM_ADDR.cell.wwan0;
  const conc = SIM_ADDR.conc.wwan0;
  return {
    atLink: links.at,
    qmiLink: links.qmi,
    ipv4: { address: cell[0], prefixLength: 24, gateway: conc[0], dns: [conc[0]], mtu: 1500 },
    ipv6: { address: cell[1], prefixLength: 64, gateway: conc[1], dns: [conc[1]], mtu: 1500 },
    ...extra,
  };
}

export interface WwanBinding {
  /** Resolves when every queued ip command has run. */
  idle(): Promise<void>;
  detach(): void;
  /** Families currently up on the interface. */
  readonly families: ReadonlySet<4 | 6>;
}

/** Apply the simulator's session events to an interface in a test host (default wwan0). */
export function bindWwan(sim: EventEmitter, host: Host, ifname = 'wwan0'): WwanBinding {
  const up = new Set<4 | 6>();
  let chain: Promise<void> = Promise.resolve();
  const queue = (f: () => Promise<unknown>): void => {
    chain = chain.then(f).then(
      () => undefined,
      (e: Error) => log.warn({ err: e.message, ifname }, 'wwan hook: ip command failed'),
    );
  };
  const onStart = (e: WdsSessionEvent): void => {
    up.add(e.family);
    queue(async () => {
      await host.ip('addr', 'replace', `${e.address}/${e.prefixLength}`, 'dev', ifname, ...(e.family === 6 ? ['nodad'] : []));
      await host.ip('link', 'set', 'dev', ifname, 'mtu', String(e.mtu), 'up');
    });
  };
  const onStop = (e: WdsSessionEvent): void => {
    up.delete(e.family);
    const last = up.size === 0;
    queue(async () => {
      await host.ip('addr', 'del', `${e.address}/${e.prefixLength}`, 'dev', ifname).catch(() => undefined);
      if (last) await host.ip('link', 'set', 'dev', ifname, 'down');
    });
  };
  sim.on('wds-started', onStart);
  sim.on('wds-stopped', onStop);
  return {
    idle: () => chain,
    detach: () => {
      sim.off('wds-started', onStart);
      sim.off('wds-stopped', onStop);
    },
    families: up,
  };
}

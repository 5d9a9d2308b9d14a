import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { logger } from '../core/logger.js';
import { SIM_ADDR, SIM_PREFIX, simRunDir } from './board.js';
import { EcmDhcpServer } from './modem/ecm.js';
import { ModemSimulator } from './modem/sim.js';
import { simBoardModemConfig } from './modem/board.js';

/**
 * The simulated board's modem: a Quectel EC25-like simulator on two ptys (AT, QMI). Its data
 * session hands out the board's wwan0 addressing over QMI; it never touches wwan0 itself —
 * duocell in dc-cell configures the interface from WDS Get Current Settings, as on hardware.
 * Runs as its own process under `duocell sim up`.
 */
const log = logger('duocell:sim:modem-host');

export function modemLinks(): { at: string; qmi: string } {
  return { at: path.join(simRunDir(), 'modem-at'), qmi: path.join(simRunDir(), 'modem-qmi') };
}

/**
 * `at`: an AT-only module (DUOCELL_SIM_MODEM=at, `duocell sim up --modem at`): no QMI port; its
 * data side is dc-cell's usb0, whose far end (dc-conc's wwan0, 10.21.0.1) gets the module's DHCP
 * server once duocell activates the data session over AT.
 */
export async function runModemHost(kind: 'qmi' | 'at' = process.env.DUOCELL_SIM_MODEM === 'at' ? 'at' : 'qmi'): Promise<() => Promise<void>> {
  const links = modemLinks();
  if (kind === 'at') {
    const sim = new ModemSimulator({ atLink: links.at, qmiLink: links.qmi, qmi: false });
    const ecm = new EcmDhcpServer({ ns: `${SIM_PREFIX}-conc`, ifname: 'wwan0', offer: SIM_ADDR.cell.wwan0[0], gateway: SIM_ADDR.conc.wwan0[0], netmask: '255.255.255.0', mtu: 1500 });
    sim.on('at-data', (e: { up: boolean }) => {
      log.info({ up: e.up }, 'AT data session (the module starts/stops its DHCP server)');
      void (e.up ? ecm.start() : ecm.stop()).catch((err: Error) => log.error({ err: err.message }, 'module DHCP server failed'));
    });
    await sim.start();
    log.info({ links: { at: links.at } }, 'AT-only modem simulator running');
    return async () => {
      await sim.stop();
      await ecm.stop();
    };
  }
  const sim = new ModemSimulator(simBoardModemConfig(links));
  sim.on('wds-started', (e: { family: number; address: string }) => log.info({ family: e.family, address: e.address }, 'data session started (duocell configures wwan0)'));
  await sim.start();
  log.info({ links }, 'modem simulator running');
  return async () => {
    await sim.stop();
  };
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const stop = await runModemHost();
  const bye = (): void => void stop().finally(() => process.exit(0));
  process.on('SIGTERM', bye);
  process.on('SIGINT', bye);
}

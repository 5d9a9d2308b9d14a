import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { logger } from '../core/logger.js';
import { Host, Topology } from './hosts.js';
import { SIM_ADDR, SIM_PREFIX, simRunDir } from './board.js';
import { ModemSimulator } from './modem/sim.js';
import { bindWwan, simBoardModemConfig } from './modem/board.js';

/**
 * The simulated board's modem: a Quectel EC25-like simulator on two ptys (AT, QMI) whose data
 * session is what brings dc-cell's wwan0 up with the address it hands out — and, like the
 * operator's network would, routes via its gateway. Runs as its own process under `duocell sim up`.
 */
const log = logger('duocell:sim:modem-host');

export function modemLinks(): { at: string; qmi: string } {
  return { at: path.join(simRunDir(), 'modem-at'), qmi: path.join(simRunDir(), 'modem-qmi') };
}

export async function runModemHost(prefix = SIM_PREFIX): Promise<() => Promise<void>> {
  const links = modemLinks();
  const sim = new ModemSimulator(simBoardModemConfig(links));
  const cell = new Host(new Topology(prefix), `${prefix}-cell`);
  const binding = bindWwan(sim, cell);
  sim.on('wds-started', () => {
    void binding.idle().then(async () => {
      // The uplink's routes: main table default and the per-source table (the paths service's job on hardware).
      for (const [i, fam] of [[0, '-4'], [1, '-6']] as const) {
        await cell.ip(fam, 'route', 'replace', 'default', 'via', SIM_ADDR.conc.wwan0[i], 'dev', 'wwan0').catch(() => undefined);
        await cell.ip(fam, 'route', 'replace', 'default', 'via', SIM_ADDR.conc.wwan0[i], 'dev', 'wwan0', 'table', '21').catch(() => undefined);
      }
      log.info('wwan0 up from the QMI data session');
    });
  });
  await sim.start();
  log.info({ links }, 'modem simulator running');
  return async () => {
    binding.detach();
    await sim.stop();
  };
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const stop = await runModemHost();
  const bye = (): void => void stop().finally(() => process.exit(0));
  process.on('SIGTERM', bye);
  process.on('SIGINT', bye);
}

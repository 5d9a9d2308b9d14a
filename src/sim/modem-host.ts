import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { logger } from '../core/logger.js';
import { simRunDir } from './board.js';
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

export async function runModemHost(): Promise<() => Promise<void>> {
  const links = modemLinks();
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

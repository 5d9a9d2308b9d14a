
import path from 'node:path';
import { EXIT, parseFlags, type Command } from '../command.js';
import { DuocellError } from '../../core/errors.js';
import { parseLinksWorld } from '../../sim/links.js';
import { logger } from '../../core/logger.js';
import { assertRoot, projectRoot, SIM_PREFIX } from '../../sim/board.js';
import { cellEnv, simDown, simUp, spawnInNs, startTrafficGenerator } from '../../sim/run.js';
import { ProxyEngine, directConnector, explicitFront } from '../../services/proxy/index.js';
import { socketIo } from '../../drivers/sockets/io.js';

const help = `usage: duocell start [--no-traffic] [--links realistic|ideal]

What \`npm start\` runs: brings the simulated board up, runs the cell appliance in dc-cell, makes
its web page reachable on http://127.0.0.1:8080, and starts a small traffic generator in dc-mue so
that something visibly flows. Ctrl-C stops everything and removes the namespaces.
--links: realistic (default: lte and wlan profiles) or ideal (plain veth links); see duocell sim --help.`;

const log = logger('duocell:start');

const start: Command = {
  name: 'start',
  summary: 'run the whole system on the simulated board (what npm start does)',
  help,
  async run(args) {
    const { flags, positional, unknown } = parseFlags(args, { 'no-traffic': 'boolean', links: 'string' });
    if (unknown.length > 0 || positional.length > 0) throw new DuocellError('DC_USAGE', `unexpected ${[...unknown, ...positional].join(' ')}\n${help}`);
    const links = parseLinksWorld(typeof flags.links === 'string' ? flags.links : 'realistic');
    assertRoot();
    await simUp({ links });
    const cell = spawnInNs(`${SIM_PREFIX}-cell`, 'cell', [process.execPath, path.join(projectRoot(), 'bin/duocell.js'), 'run', '--board', 'sim'], { foreground: true, env: cellEnv() });
    // The cell's web page lives in dc-cell; forward the root namespace's 127.0.0.1:8080 to it.
    const fwd = new ProxyEngine({ io: socketIo });
    await fwd.listen({ name: 'web', host: '127.0.0.1', port: 8080, mptcp: false, front: explicitFront({ host: '10.99.0.2', port: 8080 }), connector: directConnector });
    // and its HTTPS (board sim: web.https, the per-device self-signed certificate; fingerprint in the cell's banner)
    await fwd.listen({ name: 'web-tls', host: '127.0.0.1', port: 8443, mptcp: false, front: explicitFront({ host: '10.99.0.2', port: 8443 }), connector: directConnector });
    const traffic = flags['no-traffic'] === true ? undefined : startTrafficGenerator();
    log.info('duocell is running on the simulated board: http://127.0.0.1:8080 (Ctrl-C to stop)');
    process.stdout.write('\nduocell: simulated board up; web page on http://127.0.0.1:8080 (HTTPS: https://127.0.0.1:8443) — the cell prints the first-boot set-up secret; Ctrl-C stops\n\n');
    await new Promise<void>((resolve) => {
      const stop = (): void => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      cell.once('exit', stop);
    });
    if (traffic?.pid !== undefined) {
      try {
        process.kill(-traffic.pid, 'SIGTERM');
      } catch {
        /* gone */
      }
    }
    if (cell.exitCode === null) cell.kill('SIGTERM');
    await fwd.close(100);
    await simDown();
    return EXIT.OK;
  },
};
export default start;

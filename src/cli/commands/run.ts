import { EXIT, parseFlags, type Command } from '../command.js';
import { loadBoard } from '../../core/board.js';
import { DuocellError } from '../../core/errors.js';
import { startAppliance } from '../../main.js';
import { startNotifier } from '../../drivers/systemd/notify.js';

const help = `usage: duocell run --board NAME|FILE [--state-dir DIR]

Run the appliance on this machine with a board profile (board/NAME.json or a file path).
The profile's preset (cell or concentrator) decides what runs. Stops cleanly on SIGTERM/SIGINT:
listeners close, live sessions get up to 5 s to finish.

  --board NAME|FILE   board profile (required)
  --state-dir DIR     state directory (default $DUOCELL_STATE_DIR or /var/lib/duocell)`;

const run: Command = {
  name: 'run',
  summary: 'run the appliance (cell or concentrator) from a board profile',
  help,
  async run(args, ctx) {
    const { flags, unknown } = parseFlags(args, { board: 'string', config: 'string', 'state-dir': 'string' });
    if (unknown.length > 0) throw new DuocellError('DC_USAGE', `unknown option ${unknown[0]}\n${help}`);
    const boardName = (flags.board ?? flags.config) as string | undefined;
    if (boardName === undefined) throw new DuocellError('DC_USAGE', `--board is required\n${help}`);
    const board = loadBoard(boardName);
    const stateDir = (flags['state-dir'] as string | undefined) ?? ctx.env.DUOCELL_STATE_DIR ?? '/var/lib/duocell';
    // systemd (Type=notify): watchdog pings start now; READY once listeners and the page are open.
    const notifier = startNotifier();
    const app = await startAppliance(board, { stateDir });
    notifier.ready(`${board.name} (${board.preset}): up`);
    await new Promise<void>((resolve) => {
      const stop = (): void => {
        process.off('SIGTERM', stop);
        process.off('SIGINT', stop);
        resolve();
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
    notifier.stopping();
    await app.close();
    notifier.stop();
    return EXIT.OK;
  },
};
export default run;

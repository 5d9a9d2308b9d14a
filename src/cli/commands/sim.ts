import { EXIT, type Command } from '../command.js';
import { DuocellError } from '../../core/errors.js';
import { assertRoot } from '../../sim/board.js';
import { simDown, simExists, simUp } from '../../sim/run.js';

const help = `usage: duocell sim up [--with-cell] | down | status

The simulated board: network namespaces dc-mue, dc-cell, dc-conc, dc-srv, dc-lan joined by
shaped veth links (cellular 20 Mbit/s, WLAN 30 Mbit/s), an N-server (port 8000) and an M-server
(port 8001) in dc-srv. See docs/sim.md.

  up [--with-cell]  build it (and start the cell appliance in dc-cell in the background)
  down              stop its processes and delete its namespaces
  status            say whether it is up (--json)`;

const sim: Command = {
  name: 'sim',
  summary: 'bring the simulated board up or down',
  help,
  async run(args, ctx) {
    const [sub] = args;
    if (sub === 'status') {
      const up = await simExists();
      ctx.io.out(ctx.json ? JSON.stringify({ up }) : up ? 'sim: up' : 'sim: down');
      return EXIT.OK;
    }
    assertRoot();
    if (sub === 'up') {
      await simUp({ withCell: args.includes('--with-cell') });
      ctx.io.out('sim: up');
      return EXIT.OK;
    }
    if (sub === 'down') {
      await simDown();
      ctx.io.out('sim: down');
      return EXIT.OK;
    }
    throw new DuocellError('DC_USAGE', help);
  },
};
export default sim;

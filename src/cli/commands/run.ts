import type { Command } from '../command.js';
const run: Command = {
  name: 'run',
  summary: 'run the appliance (cell or concentrator) from a board/config file',
  help: 'usage: duocell run --board NAME | --config FILE',
  async run() {
    return 2;
  },
};
export default run;

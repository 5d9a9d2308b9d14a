import type { Command } from '../command.js';
const sim: Command = {
  name: 'sim',
  summary: 'bring the simulated board up or down',
  help: 'usage: duocell sim up|down',
  async run() {
    return 2;
  },
};
export default sim;

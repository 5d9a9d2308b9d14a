import type { Command } from '../command.js';

/** Every sub-command, in the order `duocell --help` lists them. */
export async function loadCommands(): Promise<Command[]> {
  const mods = await Promise.all([
    import('./run.js'),
    import('./sim.js'),
    import('./start.js'),
  ]);
  return mods.map((m) => m.default);
}

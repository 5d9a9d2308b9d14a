import type { Command } from '../command.js';

/** Every sub-command, in the order `duocell --help` lists them. */
export async function loadCommands(): Promise<Command[]> {
  const mods = await Promise.all([
    import('./run.js'),
    import('./start.js'),
    import('./sim.js'),
    import('./subscribers.js'),
    import('./policy.js'),
    import('./ota.js'),
    import('./mservers.js'),
    import('./proxies.js'),
    import('./anycast.js'),
    import('./status.js'),
    import('./sessions.js'),
    import('./paths.js'),
    import('./subflows.js'),
    import('./udp.js'),
    import('./modem.js'),
    import('./first-boot.js'),
  ]);
  return mods.map((m) => m.default);
}

import { EXIT, type CliContext, type Command } from './command.js';
import { loadCommands } from './commands/index.js';
import { isDuocellError } from '../core/errors.js';
import { logToStderr } from '../core/logger.js';

/** Commands that run the box and log for the journal on stdout; every other one logs on stderr. */
const LOGS_ON_STDOUT = new Set(['run', 'start']);

function usage(cmds: readonly Command[]): string {
  const w = Math.max(...cmds.map((c) => c.name.length));
  return [
    'usage: duocell COMMAND [options]    (duocell COMMAND --help for more)',
    '',
    'commands:',
    ...cmds.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`),
    '',
    'global options: --json (machine-readable output on read commands), --help',
  ].join('\n');
}

export async function main(argv: string[], ctxIn?: Partial<CliContext>): Promise<number> {
  const cmds = await loadCommands();
  const json = argv.includes('--json');
  const ctx: CliContext = {
    io: ctxIn?.io ?? { out: (l) => process.stdout.write(l + '\n'), err: (l) => process.stderr.write(l + '\n') },
    json,
    env: ctxIn?.env ?? process.env,
  };
  const [name, ...rest] = argv.filter((a) => a !== '--json');
  // stdout carries the command's output (one JSON document with --json), never a log line.
  logToStderr(name === undefined || !LOGS_ON_STDOUT.has(name));
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    ctx.io.out(usage(cmds));
    return name === undefined ? EXIT.USAGE : EXIT.OK;
  }
  const cmd = cmds.find((c) => c.name === name);
  if (cmd === undefined) {
    ctx.io.err(`duocell: unknown command '${name}'\n\n${usage(cmds)}`);
    return EXIT.USAGE;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    ctx.io.out(cmd.help);
    return EXIT.OK;
  }
  try {
    return await cmd.run(rest, ctx);
  } catch (e) {
    if (isDuocellError(e)) {
      if (json) ctx.io.err(JSON.stringify({ error: e.toJSON() }));
      else ctx.io.err(`duocell ${name}: ${e.code}: ${e.message}`);
      return e.code === 'DC_USAGE' ? EXIT.USAGE : EXIT.FAILED;
    }
    ctx.io.err(`duocell ${name}: internal error: ${(e as Error)?.stack ?? String(e)}`);
    return EXIT.INTERNAL;
  }
}

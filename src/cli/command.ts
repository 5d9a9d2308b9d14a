/**
 * The contract every `duocell` sub-command implements. One file per command group in
 * src/cli/commands/, listed in src/cli/commands/index.ts.
 *
 * Exit codes scripts can rely on (sysexits-like):
 *   0 ok · 1 the operation failed (refused, not found) · 2 usage error
 *   69 a needed service or device is unavailable · 70 internal error
 */
export const EXIT = { OK: 0, FAILED: 1, USAGE: 2, UNAVAILABLE: 69, INTERNAL: 70 } as const;

export interface CliIo {
  out(line: string): void;
  err(line: string): void;
}

export interface CliContext {
  readonly io: CliIo;
  readonly json: boolean;
  readonly env: NodeJS.ProcessEnv;
}

export interface Command {
  readonly name: string;
  readonly summary: string;
  /** Full help text, printed by `duocell NAME --help`. */
  readonly help: string;
  run(args: string[], ctx: CliContext): Promise<number>;
}

/** Split `--flag value`, `--flag=value` and `--bool` from positional args. */
export function parseFlags(
  args: readonly string[],
  spec: Readonly<Record<string, 'string' | 'boolean'>>,
): { flags: Record<string, string | boolean>; positional: string[]; unknown: string[] } {
  const flags: Record<string, string | boolean> = {};
  const positional: string[] = [];
  const unknown: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq === -1 ? a.slice(2) : a.slice(2, eq);
    const kind = spec[name];
    if (kind === undefined) {
      unknown.push(a);
    } else if (kind === 'boolean') {
      flags[name] = eq === -1 ? true : a.slice(eq + 1) !== 'false';
    } else if (eq !== -1) {
      flags[name] = a.slice(eq + 1);
    } else if (i + 1 < args.length) {
      flags[name] = args[++i]!;
    } else {
      unknown.push(a);
    }
  }
  return { flags, positional, unknown };
}

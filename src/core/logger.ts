import { pino, type Logger, type LevelWithSilent } from 'pino';
import { formatLogLine } from './log-format.js';

/**
 * JSON logs, one object per line, to stdout (journald keeps them). One root logger; every module
 * takes a child named after its namespace, e.g. `logger('duocell:proxy')`.
 * The level comes from DUOCELL_LOG_LEVEL (default info; `silent` in tests unless set) and can
 * be changed at run time with setLevel().
 *
 * - Where: stdout by default; logToStderr() moves them to stderr (the CLI does it for every
 *   command but the long-running ones, so `--json` output on stdout stays one document).
 * - How: JSON when the stream is not a terminal (the journal, pipes, files); on a terminal one
 *   readable line (time, level, component, message, fields: core/log-format.ts).
 *   DUOCELL_LOG_FORMAT=json|pretty overrides the choice.
 */
const defaultLevel = (process.env.DUOCELL_LOG_LEVEL ??
  (process.env.TAP === '1' ? 'silent' : 'info')) as LevelWithSilent;

let toStderr = false;
const format = process.env.DUOCELL_LOG_FORMAT;

/** The stream logs go to and whether lines are made readable for a person there. */
function target(): { stream: NodeJS.WriteStream; pretty: boolean } {
  const stream = toStderr ? process.stderr : process.stdout;
  const pretty = format === 'pretty' || (format !== 'json' && stream.isTTY === true);
  return { stream, pretty };
}

const sink = {
  write(line: string): void {
    const { stream, pretty } = target();
    stream.write(pretty ? formatLogLine(line, { color: format !== 'pretty' || stream.isTTY === true }) : line);
  },
};

const root: Logger = pino(
  {
    level: defaultLevel,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  },
  sink,
);

const children = new Map<string, Logger>();

export function logger(ns: string): Logger {
  let l = children.get(ns);
  if (l === undefined) {
    l = root.child({ ns });
    children.set(ns, l);
  }
  return l;
}

export function setLevel(level: LevelWithSilent): void {
  root.level = level;
  for (const l of children.values()) l.level = level;
}

export function getLevel(): string {
  return root.level;
}

/** Send log lines to stderr (true) or stdout (false, the default). */
export function logToStderr(on = true): void {
  toStderr = on;
}

export type { Logger };

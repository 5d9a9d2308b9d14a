import { pino, type Logger, type LevelWithSilent } from 'pino';

/**
 * JSON logs to stdout (journald keeps them). One root logger; every module takes a child
 * named after its namespace, e.g. `logger('duocell:proxy')`.
 * The level comes from DUOCELL_LOG_LEVEL (default info; `silent` in tests unless set) and can
 * be changed at run time with setLevel().
 */
const defaultLevel = (process.env.DUOCELL_LOG_LEVEL ??
  (process.env.TAP === '1' ? 'silent' : 'info')) as LevelWithSilent;

const root: Logger = pino({
  level: defaultLevel,
  base: { pid: process.pid },
  timestamp: pino.stdTimeFunctions.isoTime,
});

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

export type { Logger };

import { sdNotify } from '../sockets/index.js';
import { logger } from '../../core/logger.js';

/**
 * systemd's notify protocol (sd_notify(3)) for `Type=notify` units, sent by duocell itself:
 *
 *   start ──► WATCHDOG=1 every WATCHDOG_USEC/2 ──► READY=1 + STATUS=… ──► STATUS=… … ──► STOPPING=1
 *
 * - Silent without NOTIFY_SOCKET (run by hand, in tests, under procd on OpenWrt).
 * - The watchdog pings ride on the event loop: a blocked loop stops them and systemd
 *   (WatchdogSec=) kills and restarts the service. That is the point, so the timer must
 *   not be moved to a worker thread.
 * - WATCHDOG_PID, when set, must be our pid (otherwise the watchdog belongs to someone else).
 * - A send that fails is logged once and never throws: notification is best effort.
 * - DUOCELL_DEBUG_HANG_SIGNAL=SIGUSR2 (test builds and the boot test only): on that signal
 *   the event loop spins forever, so the watchdog path can be proven end to end.
 *
 * Node cannot send unix datagrams; the datagram goes through the project's native addon
 * (src/drivers/sockets sdNotify).
 */

export interface Notifier {
  /** NOTIFY_SOCKET is set: messages are really sent. */
  readonly enabled: boolean;
  /** The ping interval (half of WATCHDOG_USEC) in ms, or undefined when no watchdog is armed. */
  readonly watchdogIntervalMs: number | undefined;
  /** READY=1 with a status line. Idempotent: only the first call sends READY. */
  ready(status?: string): void;
  /** STATUS=text (shown by systemctl status). */
  status(text: string): void;
  /** STOPPING=1 and stop pinging. */
  stopping(status?: string): void;
  /** Stop the watchdog timer and the debug hang handler (no message). */
  stop(): void;
}

export interface NotifierOptions {
  env?: NodeJS.ProcessEnv;
  pid?: number;
  /** Datagram sender; defaults to the native addon's sdNotify. */
  send?: (socketPath: string, message: string) => void;
  setInterval?: (f: () => void, ms: number) => unknown;
  clearInterval?: (h: unknown) => void;
  /** Where to install the debug hang handler (defaults to process). */
  signals?: Pick<NodeJS.Process, 'on' | 'off'>;
}

const log = logger('duocell:notify');

/** WATCHDOG_USEC/2 in ms, or undefined when the watchdog is off or not ours. */
export function watchdogInterval(env: NodeJS.ProcessEnv, pid: number): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isFinite(usec) || usec <= 0) return undefined;
  if (env.WATCHDOG_PID !== undefined && env.WATCHDOG_PID !== '' && Number(env.WATCHDOG_PID) !== pid) return undefined;
  return Math.max(1, Math.floor(usec / 2000));
}

/** One notify message: newline-separated assignments; newlines inside a value are flattened. */
export function notifyMessage(fields: Record<string, string>): string {
  return Object.entries(fields)
    .map(([k, v]) => `${k}=${v.replace(/[\r\n]+/g, ' ')}`)
    .join('\n');
}

export function startNotifier(opts: NotifierOptions = {}): Notifier {
  const env = opts.env ?? process.env;
  const pid = opts.pid ?? process.pid;
  const socketPath = env.NOTIFY_SOCKET;
  const enabled = socketPath !== undefined && socketPath !== '';
  const send = opts.send ?? sdNotify;
  const setIv = opts.setInterval ?? ((f: () => void, ms: number) => setInterval(f, ms).unref());
  const clearIv = opts.clearInterval ?? ((h: unknown) => clearInterval(h as NodeJS.Timeout));
  const signals = opts.signals ?? process;
  let warned = false;
  let readySent = false;
  let timer: unknown;

  const emit = (fields: Record<string, string>): void => {
    if (!enabled) return;
    try {
      send(socketPath, notifyMessage(fields));
    } catch (e) {
      if (!warned) log.warn({ err: e, socket: socketPath }, 'sd_notify failed; systemd will not hear from duocell');
      warned = true;
    }
  };

  const intervalMs = enabled ? watchdogInterval(env, pid) : undefined;
  if (intervalMs !== undefined) {
    timer = setIv(() => emit({ WATCHDOG: '1' }), intervalMs);
    emit({ WATCHDOG: '1' });
    log.info({ intervalMs }, 'systemd watchdog armed');
  }

  const hangSignal = env.DUOCELL_DEBUG_HANG_SIGNAL;
  const hang = (): void => {
    log.warn({ signal: hangSignal }, 'debug: blocking the event loop on purpose (watchdog test)');
    const until = Number.POSITIVE_INFINITY;
    while (Date.now() < until) {
      /* spin: no timer, no I/O, no watchdog ping */
    }
  };
  if (hangSignal !== undefined && /^SIG[A-Z0-9]+$/.test(hangSignal)) signals.on(hangSignal as NodeJS.Signals, hang);

  const stop = (): void => {
    if (timer !== undefined) clearIv(timer);
    timer = undefined;
    if (hangSignal !== undefined && /^SIG[A-Z0-9]+$/.test(hangSignal)) signals.off(hangSignal as NodeJS.Signals, hang);
  };

  return {
    enabled,
    watchdogIntervalMs: intervalMs,
    ready(status?: string) {
      if (readySent) {
        if (status !== undefined) emit({ STATUS: status });
        return;
      }
      readySent = true;
      emit(status === undefined ? { READY: '1' } : { READY: '1', STATUS: status });
    },
    status(text: string) {
      emit({ STATUS: text });
    },
    stopping(status?: string) {
      stop();
      emit(status === undefined ? { STOPPING: '1' } : { STOPPING: '1', STATUS: status });
    },
    stop,
  };
}

import type { AtResponse } from '../../protocols/at/framer.js';
import type { ModemManager, ModemManagerEvents, ModemState } from './manager.js';

/**
 * What the rest of duocell sees of the modem manager, whichever protocol controls the modem
 * (ModemManager with control 'qmi' or 'at'; tests pass fakes of this shape).
 * `atCommand` is the serialised AT pass-through (`duocell modem at`).
 */
export interface CellularModem {
  readonly state: ModemState;
  snapshot(): ReturnType<ModemManager['snapshot']>;
  start(): void;
  stop(): Promise<void>;
  setPin(pin: string | undefined): void;
  on<K extends keyof ModemManagerEvents & string>(event: K, listener: (...args: ModemManagerEvents[K]) => void): unknown;
  off<K extends keyof ModemManagerEvents & string>(event: K, listener: (...args: ModemManagerEvents[K]) => void): unknown;
  atCommand(cmd: string, timeoutMs: number): Promise<AtResponse>;
}

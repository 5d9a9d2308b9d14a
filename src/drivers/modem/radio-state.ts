import type { ServingCellReport } from '../../protocols/at/cells.js';
import type { ModemFamily } from '../../protocols/at/vendors.js';
import type { RegistrationInfo, SignalInfo } from './types.js';

/** What the manager tells about the device (ports, model, framing; `duocell modem`, the API). */
export interface ModemInfo {
  readonly qmiPort?: string;
  /** Set when the optional AT port was lost while QMI stayed healthy (band and URCs missing). */
  readonly atLost?: { readonly code: string; readonly message: string };
  readonly atPort?: string;
  readonly model?: string;
  readonly revision?: string;
  readonly imei?: string;
  /** Link framing agreed with the modem. */
  readonly dataFormat?: 'raw-ip' | '802-3';
  /** AT-only modems: the maker, the family (which vendor commands apply) and the control channel. */
  readonly manufacturer?: string;
  readonly family?: ModemFamily;
  readonly control?: 'at';
}

export interface RadioEvents {
  registration(info: RegistrationInfo): void;
  signal(s: SignalInfo): void;
  info(i: ModemInfo): void;
  /** Wake the manager's loop (registration gained or lost). */
  poke(): void;
}

/**
 * What the modem said of the radio, held once for whichever control channel (QMI or AT) reads
 * it: registration, signal, serving cell, device info. `generation` is bumped whenever the
 * ports close, so that a query begun on older ports never publishes its values.
 */
export class RadioState {
  registered = false;
  registration: RegistrationInfo | undefined;
  /** Why registration was lost, in words (the next state change says it). */
  regLostWhy: string | undefined;
  signal: SignalInfo | undefined;
  servingCell: ServingCellReport | undefined;
  info: ModemInfo = {};
  generation = 0;

  constructor(readonly events: RadioEvents) {}

  setRegistration(info: RegistrationInfo, why: string): void {
    const before = this.registered;
    this.registered = info.registered;
    const changed = JSON.stringify(info) !== JSON.stringify(this.registration);
    this.registration = info;
    if (changed) this.events.registration(info);
    if (before && !info.registered) {
      this.regLostWhy = `registration lost (${info.state}, from ${why})`;
      this.events.poke();
    } else if (!before && info.registered) this.events.poke();
  }

  setSignal(s: SignalInfo): void {
    this.signal = s;
    this.events.signal(s);
  }

  setInfo(i: ModemInfo): void {
    this.info = i;
    this.events.info(i);
  }

  /** The ports closed: registration is unknown until the modem says again. */
  portsClosed(): void {
    this.generation++;
    this.registered = false;
  }

  /** Forget everything the modem said (it is gone or stopped): registration, signal, band, device. */
  clear(source: 'qmi' | 'at'): void {
    const hadReg = this.registration !== undefined;
    this.registration = undefined;
    this.signal = undefined;
    this.servingCell = undefined;
    this.info = {};
    if (hadReg) this.events.registration({ registered: false, state: 'unknown', source });
  }
}

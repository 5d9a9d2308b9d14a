import { DuocellError, isDuocellError } from '../../core/errors.js';
import type { ModemFamily } from '../../protocols/at/vendors.js';
import type { AtClient } from './at.js';
import { readSim } from './at-family.js';
import { PinBook, type SimUnit } from './control.js';

/** How many times probing waits for a SIM that is still initialising before deciding anyway. */
const SIM_WAITS = 20;

/**
 * The SIM of an AT-only modem: AT+CPIN? with the attempts left (AT+QPINC / AT+CPINR) and
 * pinDecision (protocols/at/sim-pin.ts) deciding. AT+CPIN="<pin>" is sent only when the decision
 * says send-pin: never with the last attempts, and a PIN the SIM rejected is never sent twice
 * (kept across re-probes). Errors as SimCard's: DC_MODEM_SIM, DC_MODEM_PIN_*.
 */
export class AtSimCard implements SimUnit {
  readonly pins: PinBook;
  #waits = 0;

  constructor(
    readonly at: () => AtClient,
    readonly family: () => ModemFamily,
    readonly minPinRetries: number,
    pin?: string,
  ) {
    this.pins = new PinBook(pin);
  }

  #read(): ReturnType<typeof readSim> {
    return readSim(this.at(), this.family(), { pinConfigured: !!this.pins.pin, alreadySent: this.pins.wasRejected(), minRetries: this.minPinRetries });
  }

  async check(): Promise<{ verdict: 'locked' | 'ready' | 'wait'; reason: string }> {
    const sim = await this.#read();
    if (sim.decision.action === 'wait' && this.#waits++ < SIM_WAITS) return { verdict: 'wait', reason: 'the SIM is initialising' };
    this.#waits = 0;
    const code = sim.state.code ?? sim.state.kind;
    return sim.decision.action === 'none' ? { verdict: 'ready', reason: `SIM ready (${code})` } : { verdict: 'locked', reason: `the SIM is ${code}` };
  }

  async unlock(): Promise<void> {
    const at = this.at();
    const pin = this.pins.pin;
    const sim = await this.#read();
    const d = sim.decision;
    if (d.action === 'none') return;
    if (d.action === 'wait') throw new DuocellError('DC_MODEM_SIM', d.reason, { origin: 'device' });
    if (d.action === 'stop') {
      const code = d.code === 'DC_MODEM_PIN_UNSAFE' && this.pins.wasRejected(pin) ? 'DC_MODEM_PIN_WRONG' : d.code;
      throw new DuocellError(code, `${d.reason}${sim.retriesLeft === undefined ? '' : ` (${sim.retriesLeft} attempts left)`}`, { origin: 'device', ...(sim.retriesLeft === undefined ? {} : { retries: sim.retriesLeft }) });
    }
    try {
      await at.command(`AT+CPIN="${pin!.replace(/[^0-9]/g, '')}"`, { timeoutMs: 10_000 });
    } catch (e) {
      if (isDuocellError(e, 'DC_AT_CME_ERROR') || isDuocellError(e, 'DC_AT_ERROR')) {
        this.pins.reject(pin!);
        throw new DuocellError('DC_MODEM_PIN_WRONG', `the SIM rejected the configured PIN (${e.message})`, { origin: 'device', cause: e });
      }
      throw e;
    }
    // the SIM takes a moment after the PIN; the next registration step re-reads it
    await new Promise((r) => setTimeout(r, 200));
  }
}

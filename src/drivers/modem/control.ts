import type { DuocellError } from '../../core/errors.js';
import type { ModemFamily } from '../../protocols/at/vendors.js';
import type { QmiMessage } from '../../protocols/qmi/index.js';
import type { AtClient, AtUrc } from './at.js';
import type { QmiClient } from './qmi.js';
import type { RadioState } from './radio-state.js';
import type { ModemTransport, TransportOpener } from './transport.js';

/**
 * The control channel of a modem, one implementation per protocol: QMI with an optional AT port
 * (qmi-control.ts) or AT only (at-control.ts). The manager (manager.ts) drives the state table
 * and calls these steps; what a step learns goes into the shared RadioState.
 *
 *   probing     probe() (open ports, identify), then sim.check()
 *   sim-locked  sim.unlock()
 *   sim-ready   online()
 *   searching   pollRegistration(), refreshSignal() once registered
 *   connected   pollRegistration(), refreshSignal() every 5 polls, connectedPoll()
 *   any loss    closePorts()
 */
export interface ModemControl {
  readonly kind: 'qmi' | 'at';
  readonly sim: SimUnit;
  /** True while the ports found by probe() are open. */
  readonly attached: boolean;
  qmi(): QmiClient | undefined;
  at(): AtClient | undefined;
  /** The modem family from AT+CGMI/CGMM (generic without an AT port). */
  family(): ModemFamily;
  probe(): Promise<void>;
  online(): Promise<void>;
  pollRegistration(): Promise<void>;
  refreshSignal(): Promise<void>;
  /** Extra work on a connected poll (QMI: look for a lost AT port again). */
  connectedPoll?(polls: number): Promise<void>;
  closePorts(): Promise<void>;
}

/** The SIM as a unit: PIN state and the safe unlock (sim-card.ts over QMI, at-sim-card.ts over AT). */
export interface SimUnit {
  /** The configured PIN and the ones the SIM rejected. */
  readonly pins: PinBook;
  /** probing: does the SIM need its PIN ('wait': it is still initialising, ask again). */
  check(): Promise<{ readonly verdict: 'locked' | 'ready' | 'wait'; readonly reason: string }>;
  /** Verify the configured PIN when safe; throws DC_MODEM_PIN_* / DC_MODEM_SIM otherwise. */
  unlock(): Promise<void>;
}

/** What a control channel gets from the manager. */
export interface ControlHost {
  readonly radio: RadioState;
  running(): boolean;
  /** True once a port loss is pending (the manager closes everything and probes again). */
  portLostPending(): boolean;
  portLost(err: DuocellError): void;
  /** Indications and URCs the control does not take itself go to the data session. */
  dataIndication(m: QmiMessage): void;
  dataUrc(u: AtUrc): void;
}

/** The options every control channel reads (the manager's, with defaults applied). */
export interface ControlOptions {
  readonly ports: readonly string[] | (() => readonly string[] | Promise<readonly string[]>);
  readonly open: TransportOpener;
  readonly probeTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly minPinRetries: number;
  readonly pin?: string;
}

export async function candidatePorts(o: ControlOptions): Promise<readonly string[]> {
  return typeof o.ports === 'function' ? await o.ports() : o.ports;
}

/** Open a candidate port; undefined (with the reason pushed to `tried`) when it cannot be opened. */
export async function openCandidate(o: ControlOptions, path: string, tried: string[]): Promise<ModemTransport | undefined> {
  try {
    return await o.open(path);
  } catch (e) {
    // the port error already names the path
    const msg = (e as Error).message;
    tried.push(msg.startsWith(path) ? msg : `${path}: ${msg}`);
    return undefined;
  }
}

/** Does the port answer "AT" (twice at most: the modem may have had half a line buffered)? Echo off. */
export async function answersAt(c: AtClient, probeTimeoutMs: number): Promise<boolean> {
  for (let i = 0; i < 2; i++) {
    try {
      await c.command('AT', { timeoutMs: Math.max(200, Math.floor(probeTimeoutMs / 2)), resync: false });
      await c.command('ATE0', { resync: false }).catch(() => undefined);
      return true;
    } catch {
      /* try once more */
    }
  }
  return false;
}

/**
 * The configured PIN, whether it changed since the manager last looked (a parked sim-locked
 * state tries again), and the PINs the SIM rejected: never tried again automatically, kept
 * across re-probes.
 */
export class PinBook {
  #changed = false;
  readonly #rejected = new Set<string>();

  constructor(public pin: string | undefined) {}

  /** A new PIN from configuration. */
  set(pin: string | undefined): void {
    this.pin = pin;
    this.#changed = true;
  }

  /** True once after set(). */
  takeChange(): boolean {
    const c = this.#changed;
    this.#changed = false;
    return c;
  }

  /** Did the SIM reject this PIN (default: the configured one) before? */
  wasRejected(pin = this.pin): boolean {
    return pin !== undefined && this.#rejected.has(pin);
  }

  reject(pin: string): void {
    this.#rejected.add(pin);
  }
}

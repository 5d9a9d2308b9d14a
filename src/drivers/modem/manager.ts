/**
 * The modem manager: one state machine for every modem, whichever protocol controls it. It finds
 * the modem's ports, unlocks the SIM safely, waits for registration, starts the data session and
 * keeps it up, publishing everything as typed events.
 *
 * The modem's life is the state table in fsm.ts (MODEM_FSM): each state names its entry
 * activity and the events it takes; this class supplies the activities (#entry below), turns
 * port loss and the data session's drop into events, and configures the data interface. An
 * event a state does not take is logged and ignored. The protocol lives in three units:
 *
 *   control channel (control.ts)  qmi-control.ts: QMI + optional AT port  | at-control.ts: AT only
 *     └ its SIM unit               sim-card.ts (QMI DMS/UIM)               | at-sim-card.ts (+CPIN)
 *   data session (data-session.ts) QmiDataSession (WDS, wwan0)             | AtDataSession (at-data.ts:
 *                                                                            AT + DHCP on usb0)
 *   radio state (radio-state.ts)   registration, signal, serving cell, device info, shared by both
 *
 * PIN safety (the SIM units): a PIN is tried only when at least `minPinRetries` attempts remain,
 * and a PIN the SIM rejected is never tried again automatically. A PIN problem parks the
 * manager in sim-locked until setPin() gives a new one.
 */
import { backoffDelay } from '../../core/backoff.js';
import { DuocellError, toDuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import type { AtResponse } from '../../protocols/at/framer.js';
import { AtControl } from './at-control.js';
import { AtDataSession } from './at-data.js';
import type { ControlHost, ModemControl } from './control.js';
import { QmiDataSession, type DataSession } from './data-session.js';
import { ModemFsm, MODEM_FSM, type EntryActivity, type ModemEvent, type ModemState } from './fsm.js';
import { QmiControl } from './qmi-control.js';
import { RadioState, type ModemInfo } from './radio-state.js';
import type { DataSessionDeps, ModemManagerEvents, ModemManagerOptions, StateChange } from './manager-options.js';
import { TypedEmitter } from './typed-emitter.js';
import { openModemPort } from './transport.js';
import type { RegistrationInfo, SignalInfo, WdsSettings } from './types.js';
import type { ServingCellReport } from '../../protocols/at/cells.js';

export { MODEM_EVENTS, MODEM_FSM, MODEM_STATES, TRANSITIONS, acceptedEvents, type EntryActivity, type ModemEvent, type ModemState, type StateSpec } from './fsm.js';
export type { FamilySettings, IpFamilyChoice, RegistrationInfo, SignalInfo, WdsSettings } from './types.js';
export type { DataSession } from './data-session.js';
export type { ModemInfo } from './radio-state.js';
export { TypedEmitter } from './typed-emitter.js';
export type { DataSessionDeps, ModemManagerEvents, ModemManagerOptions, StateChange } from './manager-options.js';

/** The most a vanished modem waits between probes (see #waitThenProbe). */
const PROBE_BACKOFF_CAP_MS = 2000;
/** Probe attempts logged at their own level, then a reminder every 150 (≈ 5 min): #quietProbe. */
const PROBE_LOGGED_ATTEMPTS = 3;
const PROBE_REMIND_EVERY = 150;
const log = logger('duocell:modem');

export class ModemManager extends TypedEmitter<ModemManagerEvents> {
  readonly #o: Required<Omit<ModemManagerOptions, 'pin' | 'username' | 'password' | 'netInterface' | 'netif' | 'dataSession' | 'cid' | 'linkUp' | 'lease'>> &
    Pick<ModemManagerOptions, 'pin' | 'username' | 'password' | 'netInterface' | 'netif' | 'dataSession' | 'cid' | 'linkUp' | 'lease'>;
  readonly #fsm = new ModemFsm('absent');
  #lastReason = 'not started';
  #lastError: DuocellError | undefined;
  #running = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #portLost: DuocellError | undefined;
  #probeAttempt = 0;
  #connectAttempt = 0;
  #dataDropped: string | undefined;
  #settings: WdsSettings | undefined;
  #polls = 0;
  /** Registration, signal, serving cell and device info, as the control channel last read them. */
  readonly #radio: RadioState;
  /** The control channel (QMI with an optional AT port, or AT only) and its SIM unit. */
  readonly #control: ModemControl;
  /** The data-session unit (QMI WDS, or AT + DHCP, unless another is injected). */
  readonly #data: DataSession;

  /** Each state's entry activity, by the name the table gives it. */
  readonly #entry: Readonly<Record<EntryActivity, () => Promise<void>>> = {
    'wait-then-probe': () => this.#waitThenProbe(),
    'probe-ports-and-sim': () => this.#probePortsAndSim(),
    'unlock-sim': () => this.#unlockSim(),
    'radio-online': () => this.#radioOnline(),
    'poll-registration': () => this.#pollUntilRegistered(),
    'wait-then-connect': () => this.#waitThenConnect(),
    'start-data-session': () => this.#startDataSession(),
    'watch-session': () => this.#watchSession(),
  };

  constructor(opts: ModemManagerOptions) {
    super();
    this.#o = {
      open: openModemPort,
      ipFamily: 'ipv4',
      minPinRetries: 2,
      probeTimeoutMs: 1500,
      pollMs: 1000,
      backoffBaseMs: 500,
      backoffCapMs: 30_000,
      connectTimeoutMs: 30_000,
      requestTimeoutMs: 5000,
      rand: Math.random,
      dataFormat: 'raw-ip',
      sysfsRoot: '/sys',
      control: 'qmi',
      ...opts,
    };
    const o = this.#o;
    this.#radio = new RadioState({
      registration: (i) => this.emit('registration', i),
      signal: (s) => this.emit('signal', s),
      info: (i) => this.emit('info', i),
      poke: () => this.#poke(),
    });
    const host: ControlHost = {
      radio: this.#radio,
      running: () => this.#running,
      portLostPending: () => this.#portLost !== undefined,
      portLost: (err) => {
        this.#portLost = err;
        this.#poke();
      },
      dataIndication: (m) => this.#data.indication?.(m),
      dataUrc: (u) => this.#data.urc?.(u),
    };
    const common = { ports: o.ports, open: o.open, probeTimeoutMs: o.probeTimeoutMs, requestTimeoutMs: o.requestTimeoutMs, minPinRetries: o.minPinRetries, ...(o.pin === undefined ? {} : { pin: o.pin }) };
    this.#control =
      o.control === 'at'
        ? new AtControl(common, host)
        : new QmiControl(
            { ...common, dataFormat: o.dataFormat, sysfsRoot: o.sysfsRoot, hasNetif: o.netif !== undefined, ...(o.netInterface === undefined ? {} : { netInterface: o.netInterface }) },
            host,
          );
    const deps: DataSessionDeps = {
      qmi: () => this.#control.qmi(),
      at: () => this.#control.at(),
      family: () => this.#control.family(),
      dropped: (why) => {
        this.#dataDropped = why;
        this.#poke();
      },
    };
    this.#data = opts.dataSession?.(deps) ?? this.#defaultDataSession(deps);
  }

  #defaultDataSession(deps: DataSessionDeps): DataSession {
    const o = this.#o;
    const auth = { ...(o.username ? { username: o.username } : {}), ...(o.password === undefined ? {} : { password: o.password }) };
    if (o.control === 'at') {
      if (o.netInterface === undefined || o.linkUp === undefined) throw new DuocellError('DC_INTERNAL', 'an AT-only modem needs netInterface and linkUp (or a dataSession)');
      return new AtDataSession({
        at: deps.at,
        family: deps.family,
        ifname: o.netInterface,
        apn: o.apn,
        linkUp: o.linkUp,
        connectTimeoutMs: o.connectTimeoutMs,
        dropped: deps.dropped,
        ...(o.cid === undefined ? {} : { cid: o.cid }),
        ...(o.lease === undefined ? {} : { lease: o.lease }),
        ...auth,
      });
    }
    return new QmiDataSession({
      qmi: deps.qmi,
      apn: o.apn,
      ipFamily: o.ipFamily,
      ...auth,
      connectTimeoutMs: o.connectTimeoutMs,
      ...(o.netInterface === undefined ? {} : { netInterface: o.netInterface }),
      dropped: deps.dropped,
    });
  }

  get state(): ModemState {
    return this.#fsm.state;
  }

  /** Which control channel runs the modem: 'qmi' (with an optional AT port) or 'at' (AT only). */
  get control(): 'qmi' | 'at' {
    return this.#control.kind;
  }

  /** A snapshot for the API and the paths service. */
  snapshot(): {
    state: ModemState;
    reason: string;
    error?: { code: string; message: string; origin: string };
    registration?: RegistrationInfo;
    signal?: SignalInfo;
    settings?: WdsSettings;
    servingCell?: ServingCellReport;
    info: ModemInfo;
  } {
    const r = this.#radio;
    return {
      state: this.#fsm.state,
      reason: this.#lastReason,
      ...(this.#lastError ? { error: this.#lastError.toJSON() } : {}),
      ...(r.registration ? { registration: r.registration } : {}),
      ...(r.signal ? { signal: r.signal } : {}),
      ...(this.#settings ? { settings: this.#settings } : {}),
      ...(r.servingCell ? { servingCell: r.servingCell } : {}),
      info: r.info,
    };
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#poke();
    // a step may be waiting on the modem (start network can take 30 s): give it a moment, then
    // tear down anyway; closing the ports makes any request still in flight fail at once
    // (bounded: SIGTERM must end duocell within 2 s even with a modem that does not answer)
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#loop, new Promise<void>((r) => (timer = setTimeout(r, 300)))]);
    clearTimeout(timer);
    await Promise.race([this.#teardownSessions('stopping'), new Promise<void>((r) => (timer = setTimeout(r, 700)))]);
    clearTimeout(timer);
    await this.#o.netif?.remove('stopping').catch(() => undefined);
    await this.#control.closePorts();
    await this.#loop;
    await this.#o.netif?.close?.().catch(() => undefined);
    this.#radio.clear(this.#control.kind);
    if (this.#fsm.state !== 'absent') this.#fire('stop', 'stopped');
  }

  /**
   * One AT command from outside (the pass-through, `duocell modem at`), serialised in the AT
   * port's own queue with the manager's commands: never a second writer on the port.
   * Validation is the caller's (at-passthrough.ts).
   */
  async atCommand(cmd: string, timeoutMs: number): Promise<AtResponse> {
    const at = this.#control.at();
    if (at === undefined || at.closed) throw new DuocellError('DC_MODEM_CLOSED', 'no AT port is open (modem absent, probing, or its AT port lost)');
    return at.command(cmd, { timeoutMs });
  }

  /** A new PIN from configuration: leaves a parked sim-locked state and tries it (safely). */
  setPin(pin: string | undefined): void {
    this.#control.sim.pins.set(pin);
    this.#poke();
  }

  // ------------------------------------------------------------------------------------------
  // state machine plumbing

  /** Apply an event through the table; one the state does not take is logged (fsm.ts) and ignored. */
  #fire(event: ModemEvent, reason: string, error?: DuocellError): boolean {
    const tr = this.#fsm.fire(event);
    if (tr === undefined) return false;
    this.#lastReason = reason;
    this.#lastError = error;
    const ev: StateChange = { state: tr.state, previous: tr.previous, event, reason, ...(error ? { error: error.toJSON() } : {}) };
    const fields = { state: tr.state, previous: tr.previous, event, ...(error ? { code: error.code } : {}) };
    const level = this.#quietProbe(tr.previous, tr.state) ? 'debug' : error ? 'warn' : 'info';
    log[level](fields, `modem ${tr.previous} → ${tr.state}: ${reason}`);
    this.emit('state', ev);
    return true;
  }

  /** The probe loop (absent ⇄ probing, every 2 s with no modem) goes to debug after its first
   *  attempts, with a warn reminder now and then: a pulled modem neither floods nor goes silent. */
  #quietProbe(previous: string, state: string): boolean {
    const loop = (x: string): boolean => x === 'absent' || x === 'probing';
    if (!loop(previous) || !loop(state) || this.#probeAttempt <= PROBE_LOGGED_ATTEMPTS) return false;
    if (state === 'absent' && this.#probeAttempt % PROBE_REMIND_EVERY === 0) {
      log.warn({ attempt: this.#probeAttempt, code: this.#lastError?.code }, `modem: still not found after ${this.#probeAttempt} probes (${this.#lastReason})`);
    }
    return true;
  }

  #poke(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  /** Sleep until the timer or a poke (indication, URC, port loss, stop). */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  #checkPort(): void {
    if (this.#portLost) throw this.#portLost;
  }

  /** Run the current state's entry activity, again and again, until stopped. */
  async #run(): Promise<void> {
    while (this.#running) {
      try {
        this.#checkPort();
        await this.#entry[MODEM_FSM[this.#fsm.state].entry]();
      } catch (e) {
        if (!this.#running) break;
        await this.#fault(toDuocellError(e));
      }
    }
  }

  async #fault(e: DuocellError): Promise<void> {
    // every unexpected failure leads to a clean re-probe: the port may be gone or wedged
    await this.#teardownSessions('port lost', false);
    await this.#control.closePorts();
    this.#portLost = undefined;
    // what a vanished modem said is no longer true: the API must not show it
    this.#radio.clear(this.#control.kind);
    this.#probeAttempt++;
    if (this.#fsm.state === 'probing' && e.code === 'DC_MODEM_PROBE') this.#fire('probe-failed', e.message, e);
    else if (this.#fsm.state !== 'absent') this.#fire('port-lost', `${e.code}: ${e.message}`, e);
  }

  // ------------------------------------------------------------------------------------------
  // entry activities (one per state; see MODEM_FSM in fsm.ts)

  /** absent: back off after a failure, then start. */
  async #waitThenProbe(): Promise<void> {
    if (this.#probeAttempt > 0) {
      // Re-probing a vanished port costs one failed open: capped at 2 s so that a modem that
      // comes back is found within 5 s (the connect back-off keeps the full cap). Only the first
      // attempts are logged at info: a pulled modem must not fill a journal kept in RAM.
      const d = backoffDelay(this.#probeAttempt - 1, this.#o.backoffBaseMs, Math.min(this.#o.backoffCapMs, PROBE_BACKOFF_CAP_MS), this.#o.rand);
      (this.#probeAttempt <= PROBE_LOGGED_ATTEMPTS ? log.info : log.debug).call(log, { delayMs: d, attempt: this.#probeAttempt }, 'modem: waiting before probing again');
      await this.#sleep(d);
      if (!this.#running) return;
    }
    this.#fire('start', this.#probeAttempt === 0 ? 'starting' : `probing again (attempt ${this.#probeAttempt + 1})`);
  }

  /** probing: find the ports, then ask the SIM unit whether a PIN is needed (a SIM still initialising is asked again). */
  async #probePortsAndSim(): Promise<void> {
    if (!this.#control.attached) await this.#control.probe();
    const sim = await this.#control.sim.check();
    if (sim.verdict === 'wait') await this.#sleep(this.#o.pollMs);
    else if (sim.verdict === 'locked') this.#fire('sim-locked', sim.reason);
    else this.#fire('sim-ready', sim.reason);
  }

  /** sim-locked: try the PIN (the SIM unit decides whether it is safe), else park. */
  async #unlockSim(): Promise<void> {
    const changed = this.#control.sim.pins.takeChange();
    if (changed || this.#lastError === undefined) {
      try {
        await this.#control.sim.unlock();
      } catch (e) {
        const err = toDuocellError(e);
        if (!err.code.startsWith('DC_MODEM_PIN') && err.code !== 'DC_MODEM_SIM') throw err;
        this.#fire('sim-locked', `SIM stays locked: ${err.message}`, err);
        return;
      }
      this.#fire('pin-accepted', 'PIN accepted');
      return;
    }
    await this.#sleep(this.#o.pollMs * 5); // parked: waits for setPin() or port loss
  }

  /** sim-ready: radio on, indications on, framing agreed. */
  async #radioOnline(): Promise<void> {
    await this.#control.online();
    this.#fire('online', 'radio on, searching for a network');
  }

  /** searching: poll the serving system (indications and URCs wake the poll early). */
  async #pollUntilRegistered(): Promise<void> {
    const r = this.#radio;
    await this.#control.pollRegistration();
    if (r.registered) {
      r.regLostWhy = undefined;
      this.#fire('registered', `registered (${r.registration?.state ?? 'home'}, ${r.registration?.operator ?? 'unknown operator'})`);
      void this.#control.refreshSignal();
      return;
    }
    await this.#sleep(this.#o.pollMs);
  }

  /** registered: back off after a failed session, then connect. */
  async #waitThenConnect(): Promise<void> {
    const r = this.#radio;
    if (!r.registered) {
      this.#fire('deregistered', r.regLostWhy ?? 'registration lost');
      return;
    }
    if (this.#connectAttempt > 0) {
      const d = backoffDelay(this.#connectAttempt - 1, this.#o.backoffBaseMs, this.#o.backoffCapMs, this.#o.rand);
      await this.#sleep(d);
      this.#checkPort();
      if (!this.#running) return;
      // the network may be gone ("+CME ERROR: 30") and its notice lost: ask before trying again
      if (r.registered) await this.#control.pollRegistration();
      if (!this.#running) return;
      if (!r.registered) return; // handled on the next run of this activity
    }
    const how = this.#data.kind === 'at' ? `AT + DHCP on ${this.#o.netInterface ?? '?'}` : this.#o.ipFamily;
    this.#fire('connect', `starting the data session (APN ${JSON.stringify(this.#o.apn)}, ${how})`);
  }

  /** connecting: the data-session unit starts; the data interface is configured from its settings. */
  async #startDataSession(): Promise<void> {
    const r = this.#radio;
    this.#dataDropped = undefined;
    let settings: WdsSettings;
    try {
      settings = await this.#data.start();
      this.#checkPort();
    } catch (e) {
      const err = toDuocellError(e);
      if (!this.#data.refusalCodes.includes(err.code)) throw err;
      await this.#teardownSessions('connect failed');
      this.#connectAttempt++;
      if (!r.registered) this.#fire('deregistered', r.regLostWhy ?? 'registration lost while connecting', err);
      else this.#fire('connect-failed', err.message, err);
      return;
    }
    if (!r.registered) {
      await this.#teardownSessions('registration lost');
      this.#fire('deregistered', r.regLostWhy ?? 'registration lost while connecting');
      return;
    }
    if (this.#o.netif !== undefined) {
      try {
        await this.#o.netif.apply(settings);
      } catch (e) {
        const err = toDuocellError(e, 'DC_MODEM_NETIF');
        await this.#teardownSessions(`interface configuration failed: ${err.message}`);
        this.#connectAttempt++;
        this.#fire('connect-failed', err.message, err);
        return;
      }
    }
    this.#connectAttempt = 0;
    this.#probeAttempt = 0;
    this.#settings = settings;
    this.emit('settings', settings);
    const via = settings.interface === undefined ? '' : ` on ${settings.interface}`;
    this.#fire('connected', `data session up: ${[settings.ipv4?.address, settings.ipv6?.address].filter(Boolean).join(', ')}${this.#data.kind === 'at' ? `${via} (DHCP from the modem)` : ''}`);
  }

  /** connected: wait for a poke or the poll; tear down on registration loss or a dropped session. */
  async #watchSession(): Promise<void> {
    const r = this.#radio;
    // something already to act on (a drop during the connect, a URC): no need to wait for it
    if (r.registered && this.#dataDropped === undefined) {
      await this.#sleep(this.#o.pollMs);
      this.#checkPort();
      if (!this.#running) return;
    }
    if (r.registered && this.#dataDropped === undefined) {
      // fall-back polling in case an indication was missed
      this.#polls++;
      await this.#control.pollRegistration();
      if (r.registered && this.#dataDropped === undefined) {
        const gone = await this.#data.check();
        if (gone !== undefined) this.#dataDropped = gone;
      }
      if (this.#polls % 5 === 0) void this.#control.refreshSignal();
      await this.#control.connectedPoll?.(this.#polls).catch(() => undefined);
    }
    if (!r.registered) {
      const why = r.regLostWhy ?? 'registration lost';
      await this.#teardownSessions(why);
      this.#fire('deregistered', why, new DuocellError('DC_MODEM_REGISTRATION', why, { origin: 'device' }));
      return;
    }
    if (this.#dataDropped !== undefined) {
      const why = this.#dataDropped;
      await this.#teardownSessions(why);
      if (!r.registered) {
        // a modem that loses the network ends the session first (WDS indication) and then says
        // so (NAS indication, URC): when that arrived during the teardown, registration is the cause
        const lost = r.regLostWhy ?? 'registration lost';
        this.#fire('deregistered', lost, new DuocellError('DC_MODEM_REGISTRATION', `${lost}; ${why}`, { origin: 'device' }));
        return;
      }
      this.#connectAttempt++;
      this.#fire('dropped', `data session dropped: ${why}`, new DuocellError('DC_MODEM_DISCONNECTED', `data session dropped: ${why}`, { origin: 'device' }));
    }
  }

  // ------------------------------------------------------------------------------------------
  // data session (the unit in data-session.ts / at-data.ts; the data interface is configured here)

  async #teardownSessions(why: string, talk = true): Promise<void> {
    const had = this.#settings !== undefined || this.#data.active;
    this.#settings = undefined;
    // the interface first: local and fast, so the path goes down before the modem is asked
    if (had) await this.#o.netif?.remove(why).catch((e: unknown) => log.warn({ err: (e as Error).message }, 'deconfiguring the data interface failed'));
    await this.#data.stop(why, talk);
  }
}

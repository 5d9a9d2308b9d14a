/**
 * The modem manager: finds the modem's ports, unlocks the SIM safely, waits for registration,
 * starts the data session and keeps it up, publishing everything as typed events.
 *
 * Port probing (each candidate path from the board profile, in order):
 *
 *     candidate ──open──► fails ───────────────────────────────► skip (port absent)
 *         │
 *         ├─ name looks like cdc-wdm/qmi ─► QMI CTL Sync ─ ok ─► QMI port
 *         │                                     └ timeout ─► AT probe
 *         └─ otherwise ───────────────► "AT" ×2 ─ OK ─────────► AT port (ATE0, +CEREG=2)
 *                                           └ timeout ─► QMI CTL Sync ─ ok ─► QMI port
 *                                                             └ timeout ─► close, skip
 *     need: one QMI port (data, SIM, registration); the AT port is optional (URCs, band).
 *
 * The modem's life is the state table in fsm.ts (MODEM_FSM): each state names its entry
 * activity and the events it takes; this class supplies the activities (ENTRY below) and
 * turns indications, URCs and port loss into events. An event a state does not take is logged
 * and ignored. Two units have their own files: the SIM (sim-card.ts: PIN status and the safe
 * unlock) and the data session (data-session.ts: the DataSession interface and its QMI WDS
 * implementation). QMI replies are read by the typed decoders of protocols/qmi/replies.ts.
 *
 * PIN safety (sim-card.ts): a PIN is tried only when at least `minPinRetries` attempts remain,
 * and a PIN the SIM rejected is never tried again automatically. A PIN problem parks the
 * manager in sim-locked until setPin() gives a new one.
 */
import { EventEmitter } from 'node:events';
import fsp from 'node:fs/promises';
import { backoffDelay } from '../../core/backoff.js';
import { DuocellError, toDuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import { parseRegistration } from '../../protocols/at/parsers.js';
import {
  DATA_FORMAT,
  decodeDmsIds,
  decodeDmsModel,
  decodeDmsOperatingMode,
  decodeDmsRevision,
  decodeNasServingSystem,
  decodeNasSignalInfo,
  decodeWdaDataFormat,
  NAS_REG,
  type NasServingSystem,
  type NasSignalInfo,
  type QmiMessage,
} from '../../protocols/qmi/index.js';
import { AtClient, type AtUrc } from './at.js';
import { QmiDataSession, type DataSession } from './data-session.js';
import { ModemFsm, MODEM_FSM, type EntryActivity, type ModemEvent, type ModemState } from './fsm.js';
import { QmiClient } from './qmi.js';
import { SimCard } from './sim-card.js';
// ---- radios-at hook (item 5/8): family-specific AT queries, AT pass-through ----
import type { AtResponse } from '../../protocols/at/framer.js';
import type { ModemFamily } from '../../protocols/at/vendors.js';
import { identifyModem, readServingCell } from './at-family.js';
// ---- end radios-at hook ----
import { openModemPort, type ModemTransport, type TransportOpener } from './transport.js';
import type { IpFamilyChoice, RegistrationInfo, SignalInfo, WdsSettings } from './types.js';

export { MODEM_EVENTS, MODEM_FSM, MODEM_STATES, TRANSITIONS, acceptedEvents, type EntryActivity, type ModemEvent, type ModemState, type StateSpec } from './fsm.js';
export type { FamilySettings, IpFamilyChoice, RegistrationInfo, SignalInfo, WdsSettings } from './types.js';
export type { DataSession } from './data-session.js';

/** The most a vanished modem waits between probes (see #waitThenProbe). */
const PROBE_BACKOFF_CAP_MS = 2000;
const log = logger('duocell:modem');

/** What a data-session unit gets from the manager (see DataSession in data-session.ts). */
export interface DataSessionDeps {
  readonly qmi: () => QmiClient | undefined;
  readonly at: () => AtClient | undefined;
  /** The unit calls this when the network ends the session (indication, URC). */
  readonly dropped: (why: string) => void;
}

export interface ModemManagerOptions {
  /**
   * Candidate port paths, e.g. ['/dev/cdc-wdm0', '/dev/ttyUSB2'], or a function asked again
   * before every probe (USB re-enumeration may rename ports; see board.ts).
   */
  readonly ports: readonly string[] | (() => readonly string[] | Promise<readonly string[]>);
  /** The network interface the data session runs on (wwan0), reported with the settings. */
  readonly netInterface?: string;
  /**
   * Link framing asked of the modem (WDA Set Data Format) and, for raw-ip, of qmi_wwan
   * (/sys/class/net/<if>/qmi/raw_ip). 'keep' leaves both as they are. Default 'raw-ip'.
   */
  readonly dataFormat?: 'raw-ip' | '802-3' | 'keep';
  /** Root of sysfs (tests point it elsewhere). */
  readonly sysfsRoot?: string;
  /** Opens a port; injected (serial/char device on hardware, the simulator's ptys in tests). */
  readonly open?: TransportOpener;
  readonly apn: string;
  readonly ipFamily?: IpFamilyChoice;
  readonly pin?: string;
  readonly username?: string;
  readonly password?: string;
  /** Try a PIN only when at least this many attempts remain (≥ 2 keeps the last one). */
  readonly minPinRetries?: number;
  readonly probeTimeoutMs?: number;
  /** Registration/data poll period while waiting or connected (indications act at once). */
  readonly pollMs?: number;
  readonly backoffBaseMs?: number;
  readonly backoffCapMs?: number;
  readonly connectTimeoutMs?: number;
  /** Timeout of an ordinary QMI request or AT command (default 5 s); a modem that stops
   *  answering is treated like a lost port: closed and probed again. */
  readonly requestTimeoutMs?: number;
  readonly rand?: () => number;
  /**
   * The data interface (DataInterface in netif.ts over rtnetlink): configured from the session
   * settings before the manager says 'connected', deconfigured first thing on any loss. Without
   * it the manager only reports the settings (someone else must configure the interface).
   */
  readonly netif?: { apply(s: WdsSettings): Promise<void>; remove(why: string): Promise<void>; close?(): Promise<void> };
  /** The data-session unit; default a QMI WDS session (QmiDataSession). */
  readonly dataSession?: (deps: DataSessionDeps) => DataSession;
}

export interface StateChange {
  readonly state: ModemState;
  readonly previous: ModemState;
  readonly event: ModemEvent;
  /** Why, in words (also logged). */
  readonly reason: string;
  readonly error?: { readonly code: string; readonly message: string; readonly origin: string };
}

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
}

export interface ModemManagerEvents {
  state: [StateChange];
  registration: [RegistrationInfo];
  signal: [SignalInfo];
  settings: [WdsSettings];
  info: [ModemInfo];
}

/** An EventEmitter whose event names and payloads are checked by the compiler. */
export class TypedEmitter<E extends { [K in keyof E]: unknown[] }> extends EventEmitter {
  override on<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    return super.on(event, listener as (...a: unknown[]) => void);
  }
  override once<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    return super.once(event, listener as (...a: unknown[]) => void);
  }
  override off<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    return super.off(event, listener as (...a: unknown[]) => void);
  }
  override emit<K extends keyof E & string>(event: K, ...args: E[K]): boolean {
    return super.emit(event, ...args);
  }
}


export class ModemManager extends TypedEmitter<ModemManagerEvents> {
  readonly #o: Required<Omit<ModemManagerOptions, 'pin' | 'username' | 'password' | 'netInterface' | 'netif' | 'dataSession'>> &
    Pick<ModemManagerOptions, 'pin' | 'username' | 'password' | 'netInterface' | 'netif' | 'dataSession'>;
  readonly #fsm = new ModemFsm('absent');
  #lastReason = 'not started';
  #lastError: DuocellError | undefined;
  #running = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #qmi: QmiClient | undefined;
  #at: AtClient | undefined;
  /** Bumped whenever the ports close: work begun on older ports must not publish its values. */
  #generation = 0;
  #portLost: DuocellError | undefined;
  #probeAttempt = 0;
  #connectAttempt = 0;
  #registered = false;
  #regLostWhy: string | undefined;
  #dataDropped: string | undefined;
  #settings: WdsSettings | undefined;
  #registration: RegistrationInfo | undefined;
  #signal: SignalInfo | undefined;
  #info: ModemInfo = {};
  #polls = 0;
  /** The SIM unit (PIN status, safe unlock). */
  readonly #sim: SimCard;
  /** The data-session unit (QMI WDS unless another is injected). */
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
  /** radios-at hook: the modem family, from AT+CGMI/CGMM at probe (generic without an AT port). */
  #family: ModemFamily = 'generic';

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
      ...opts,
    };
    this.#sim = new SimCard(() => this.#q(), this.#o.minPinRetries, opts.pin);
    const deps: DataSessionDeps = {
      qmi: () => this.#qmi,
      at: () => this.#at,
      dropped: (why) => {
        this.#dataDropped = why;
        this.#poke();
      },
    };
    this.#data =
      opts.dataSession?.(deps) ??
      new QmiDataSession({
        qmi: deps.qmi,
        apn: this.#o.apn,
        ipFamily: this.#o.ipFamily,
        ...(opts.username === undefined ? {} : { username: opts.username }),
        ...(opts.password === undefined ? {} : { password: opts.password }),
        connectTimeoutMs: this.#o.connectTimeoutMs,
        ...(opts.netInterface === undefined ? {} : { netInterface: opts.netInterface }),
        dropped: deps.dropped,
      });
  }

  get state(): ModemState {
    return this.#fsm.state;
  }

  /** A snapshot for the API and the paths service. */
  snapshot(): {
    state: ModemState;
    reason: string;
    error?: { code: string; message: string; origin: string };
    registration?: RegistrationInfo;
    signal?: SignalInfo;
    settings?: WdsSettings;
    info: ModemInfo;
  } {
    return {
      state: this.#fsm.state,
      reason: this.#lastReason,
      ...(this.#lastError ? { error: this.#lastError.toJSON() } : {}),
      ...(this.#registration ? { registration: this.#registration } : {}),
      ...(this.#signal ? { signal: this.#signal } : {}),
      ...(this.#settings ? { settings: this.#settings } : {}),
      info: this.#info,
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
    await this.#closePorts();
    await this.#loop;
    await this.#o.netif?.close?.().catch(() => undefined);
    this.#clearRadio();
    if (this.#fsm.state !== 'absent') this.#fire('stop', 'stopped');
  }

  // ---- radios-at hook (item 8): AT pass-through, serialised in the AT port's own queue ----
  async atCommand(cmd: string, timeoutMs: number): Promise<AtResponse> {
    const at = this.#at;
    if (at === undefined || at.closed) throw new DuocellError('DC_MODEM_CLOSED', 'no AT port is open (modem absent, probing, or its AT port lost)');
    return at.command(cmd, { timeoutMs });
  }
  // ---- end radios-at hook ----

  /** A new PIN from configuration: leaves a parked sim-locked state and tries it (safely). */
  setPin(pin: string | undefined): void {
    this.#sim.setPin(pin);
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
    (error ? log.warn : log.info).call(log, { state: tr.state, previous: tr.previous, event, ...(error ? { code: error.code } : {}) }, `modem ${tr.previous} → ${tr.state}: ${reason}`);
    this.emit('state', ev);
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
    await this.#closePorts();
    this.#portLost = undefined;
    // what a vanished modem said is no longer true: the API must not show it
    this.#clearRadio();
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
      (this.#probeAttempt <= 3 ? log.info : log.debug).call(log, { delayMs: d, attempt: this.#probeAttempt }, 'modem: waiting before probing again');
      await this.#sleep(d);
      if (!this.#running) return;
    }
    this.#fire('start', this.#probeAttempt === 0 ? 'starting' : `probing again (attempt ${this.#probeAttempt + 1})`);
  }

  /** probing: find the ports, then ask the SIM unit whether a PIN is needed. */
  async #probePortsAndSim(): Promise<void> {
    await this.#probe();
    if (await this.#sim.needsPin()) this.#fire('sim-locked', 'the SIM asks for its PIN');
    else this.#fire('sim-ready', 'SIM ready');
  }

  /** sim-locked: try the PIN (the SIM unit decides whether it is safe), else park. */
  async #unlockSim(): Promise<void> {
    const changed = this.#sim.takePinChange();
    if (changed || this.#lastError === undefined) {
      try {
        await this.#sim.unlock();
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
    await this.#online();
    this.#fire('online', 'radio on, searching for a network');
  }

  /** searching: poll the serving system (indications and URCs wake the poll early). */
  async #pollUntilRegistered(): Promise<void> {
    await this.#pollRegistration();
    if (this.#registered) {
      this.#regLostWhy = undefined;
      this.#fire('registered', `registered (${this.#registration?.state ?? 'home'}, ${this.#registration?.operator ?? 'unknown operator'})`);
      void this.#refreshSignal();
      return;
    }
    await this.#sleep(this.#o.pollMs);
  }

  /** registered: back off after a failed session, then connect. */
  async #waitThenConnect(): Promise<void> {
    if (!this.#registered) {
      this.#fire('deregistered', this.#regLostWhy ?? 'registration lost');
      return;
    }
    if (this.#connectAttempt > 0) {
      const d = backoffDelay(this.#connectAttempt - 1, this.#o.backoffBaseMs, this.#o.backoffCapMs, this.#o.rand);
      await this.#sleep(d);
      this.#checkPort();
      if (!this.#running) return;
      if (!this.#registered) return; // handled on the next run of this activity
    }
    this.#fire('connect', `starting the data session (APN ${JSON.stringify(this.#o.apn)}, ${this.#o.ipFamily})`);
  }

  /** connecting: the data-session unit starts; the data interface is configured from its settings. */
  async #startDataSession(): Promise<void> {
    this.#dataDropped = undefined;
    let settings: WdsSettings;
    try {
      settings = await this.#data.start();
    } catch (e) {
      const err = toDuocellError(e);
      if (!this.#data.refusalCodes.includes(err.code)) throw err;
      await this.#teardownSessions('connect failed');
      this.#connectAttempt++;
      if (!this.#registered) this.#fire('deregistered', this.#regLostWhy ?? 'registration lost while connecting', err);
      else this.#fire('connect-failed', err.message, err);
      return;
    }
    if (!this.#registered) {
      await this.#teardownSessions('registration lost');
      this.#fire('deregistered', this.#regLostWhy ?? 'registration lost while connecting');
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
    this.#fire('connected', `data session up: ${[settings.ipv4?.address, settings.ipv6?.address].filter(Boolean).join(', ')}`);
  }

  /** connected: wait for a poke or the poll; tear down on registration loss or a dropped session. */
  async #watchSession(): Promise<void> {
    await this.#sleep(this.#o.pollMs);
    this.#checkPort();
    if (!this.#running) return;
    if (this.#registered && this.#dataDropped === undefined) {
      // fall-back polling in case an indication was missed
      this.#polls++;
      await this.#pollRegistration();
      if (this.#registered) {
        const gone = await this.#data.check();
        if (gone !== undefined) this.#dataDropped = gone;
      }
      if (this.#polls % 5 === 0) void this.#refreshSignal();
      if (this.#polls % 3 === 0 && this.#info.atLost !== undefined) await this.#retryAt().catch(() => undefined);
    }
    if (!this.#registered) {
      const why = this.#regLostWhy ?? 'registration lost';
      await this.#teardownSessions(why);
      this.#fire('deregistered', why, new DuocellError('DC_MODEM_REGISTRATION', why, { origin: 'device' }));
      return;
    }
    if (this.#dataDropped !== undefined) {
      const why = this.#dataDropped;
      await this.#teardownSessions(why);
      if (!this.#registered) {
        // a modem that loses the network ends the session first (WDS indication) and then says
        // so (NAS indication, URC): when that arrived during the teardown, registration is the cause
        const lost = this.#regLostWhy ?? 'registration lost';
        this.#fire('deregistered', lost, new DuocellError('DC_MODEM_REGISTRATION', `${lost}; ${why}`, { origin: 'device' }));
        return;
      }
      this.#connectAttempt++;
      this.#fire('dropped', `data session dropped: ${why}`, new DuocellError('DC_MODEM_DISCONNECTED', `data session dropped: ${why}`, { origin: 'device' }));
    }
  }

  // ------------------------------------------------------------------------------------------
  // probing

  async #probe(): Promise<void> {
    let qmi: QmiClient | undefined;
    let at: AtClient | undefined;
    const tried: string[] = [];
    const ports = typeof this.#o.ports === 'function' ? await this.#o.ports() : this.#o.ports;
    for (const path of ports) {
      if (qmi && at) break;
      let t: ModemTransport;
      try {
        t = await this.#o.open(path);
      } catch (e) {
        // the port error already names the path
        const msg = (e as Error).message;
        tried.push(msg.startsWith(path) ? msg : `${path}: ${msg}`);
        continue;
      }
      const qmiFirst = /cdc-wdm|qmi/i.test(path);
      const order: ('qmi' | 'at')[] = qmiFirst ? ['qmi', 'at'] : ['at', 'qmi'];
      let used = false;
      for (const kind of order) {
        if (kind === 'qmi' && !qmi) {
          const c = new QmiClient(t);
          try {
            await c.sync(this.#o.probeTimeoutMs);
            qmi = c;
            used = true;
            break;
          } catch {
            c.detach();
          }
        } else if (kind === 'at' && !at) {
          const c = new AtClient(t);
          if (await this.#probeAt(c)) {
            at = c;
            used = true;
            break;
          }
          c.detach();
        }
      }
      if (!used) {
        tried.push(`${path}: answers neither AT nor QMI`);
        await t.close().catch(() => undefined);
      }
    }
    if (!qmi) {
      if (at) tried.push(`${at.transport.path}: answers AT, not QMI (AT-only data sessions are not supported)`);
      await at?.close().catch(() => undefined);
      const why = ports.length === 0 ? 'no candidate ports (none in the board profile, none found in sysfs)' : tried.join('; ');
      throw new DuocellError('DC_MODEM_PROBE', `no QMI port among ${ports.length} candidate(s): ${why}`, { tried, candidates: [...ports] });
    }
    this.#attach(qmi, at);
    const info: ModemInfo = { qmiPort: qmi.transport.path, ...(at ? { atPort: at.transport.path } : {}) };
    const [model, revision, ids] = await Promise.all([
      qmi.ask('dms.getModel', decodeDmsModel).catch(() => undefined),
      qmi.ask('dms.getRevision', decodeDmsRevision).catch(() => undefined),
      qmi.ask('dms.getIds', decodeDmsIds).catch((): { imei?: string } => ({})),
    ]);
    this.#info = {
      ...info,
      ...(model === undefined ? {} : { model }),
      ...(revision === undefined ? {} : { revision }),
      ...(ids.imei === undefined ? {} : { imei: ids.imei }),
    };
    // ---- radios-at hook (item 5): which family's serving-cell command to use ----
    if (at) this.#family = (await identifyModem(at).catch(() => ({ family: 'generic' as const }))).family;
    // ---- end radios-at hook ----
    this.emit('info', this.#info);
    log.info(this.#info, 'modem ports found');
  }

  async #probeAt(c: AtClient): Promise<boolean> {
    for (let i = 0; i < 2; i++) {
      try {
        await c.command('AT', { timeoutMs: Math.max(200, Math.floor(this.#o.probeTimeoutMs / 2)), resync: false });
        await c.command('ATE0', { resync: false }).catch(() => undefined);
        return true;
      } catch {
        /* try once more: the modem may have had half a line buffered */
      }
    }
    return false;
  }

  #attach(qmi: QmiClient, at: AtClient | undefined): void {
    this.#qmi = qmi;
    this.#at = at;
    qmi.defaultTimeoutMs = this.#o.requestTimeoutMs;
    if (at) at.defaultTimeoutMs = this.#o.requestTimeoutMs;
    const lost = (what: string) => (err?: DuocellError) => {
      if (!this.#running || this.#portLost) return;
      this.#portLost = err ?? new DuocellError('DC_MODEM_PORT', `${what} port closed`);
      this.#poke();
    };
    qmi.on('close', lost('QMI'));
    qmi.on('indication', (m: QmiMessage) => this.#onIndication(m));
    if (at) this.#attachAt(at);
  }

  /**
   * The AT port is optional: losing it (vanished, closed, wedged past resynchronisation) while
   * QMI is healthy only degrades the modem (a warning in `info.atLost`, no band, no URCs); the
   * data session stays. The port is tried again every few polls while connected.
   */
  #attachAt(at: AtClient): void {
    this.#at = at;
    at.defaultTimeoutMs = this.#o.requestTimeoutMs;
    const drop = (err: DuocellError): void => {
      if (this.#at !== at) return;
      this.#at = undefined;
      void at.close().catch(() => undefined);
      if (!this.#running || this.#portLost) return;
      if (this.#signal?.band !== undefined) {
        const { band: _b, ...rest } = this.#signal;
        this.#signal = rest;
        this.emit('signal', rest);
      }
      const { atPort: _p, ...info } = this.#info;
      this.#info = { ...info, atLost: { code: err.code, message: err.message } };
      this.emit('info', this.#info);
      log.warn({ code: err.code, port: at.transport.path }, `AT port lost, QMI healthy: degraded (no band, no URCs), data session kept: ${err.message}`);
    };
    at.on('close', (err?: DuocellError) => drop(err ?? new DuocellError('DC_MODEM_PORT', `${at.transport.path}: AT port closed`)));
    at.on('desync', (err: DuocellError) => drop(err));
    at.on('urc', (u: AtUrc) => this.#onUrc(u));
    if (this.#info.atLost !== undefined) {
      const { atLost: _l, ...info } = this.#info;
      this.#info = { ...info, atPort: at.transport.path };
      this.emit('info', this.#info);
      log.info({ port: at.transport.path }, 'AT port back');
    }
    void at.command('AT+CEREG=2').catch(() => undefined);
  }

  /** While degraded: look for the AT port again (it may have come back after a re-plug). */
  async #retryAt(): Promise<void> {
    if (this.#at !== undefined || this.#qmi === undefined) return;
    const gen = this.#generation;
    const ports = typeof this.#o.ports === 'function' ? await this.#o.ports() : this.#o.ports;
    for (const path of ports) {
      if (this.#qmi === undefined || path === this.#qmi.transport.path) continue;
      let t: ModemTransport;
      try {
        t = await this.#o.open(path);
      } catch {
        continue;
      }
      const c = new AtClient(t);
      if (await this.#probeAt(c)) {
        if (this.#qmi === undefined || !this.#running || gen !== this.#generation) {
          await c.close().catch(() => undefined);
          return;
        }
        this.#attachAt(c);
        return;
      }
      await c.close().catch(() => undefined);
    }
  }

  async #closePorts(): Promise<void> {
    const q = this.#qmi;
    const a = this.#at;
    this.#qmi = undefined;
    this.#at = undefined;
    this.#generation++;
    this.#registered = false;
    await Promise.all([q?.close().catch(() => undefined), a?.close().catch(() => undefined)]);
  }

  /** Forget everything the modem said (it is gone or stopped): registration, signal, band, session, device. */
  #clearRadio(): void {
    const hadReg = this.#registration !== undefined;
    this.#registration = undefined;
    this.#signal = undefined;
    this.#settings = undefined;
    this.#info = {};
    if (hadReg) this.emit('registration', { registered: false, state: 'unknown', source: 'qmi' });
  }

  #q(): QmiClient {
    if (!this.#qmi) throw new DuocellError('DC_MODEM_CLOSED', 'no QMI port');
    return this.#qmi;
  }

  // ------------------------------------------------------------------------------------------
  // radio, registration, signal

  async #online(): Promise<void> {
    const q = this.#q();
    const mode = await q.ask('dms.getOperatingMode', decodeDmsOperatingMode).catch(() => undefined);
    if (mode !== undefined && mode !== 0) await q.call('dms.setOperatingMode', { mode: 'online' });
    await q.call('nas.registerIndications', { serving_system_events: 1, signal_info: 1 }).catch(() => undefined);
    await this.#dataFormat();
  }

  /** Agree the link framing with the modem and, for raw IP, with the qmi_wwan driver. */
  async #dataFormat(): Promise<void> {
    const want = this.#o.dataFormat;
    if (want === 'keep') return;
    let got: number | undefined;
    try {
      got = (await this.#q().ask('wda.setDataFormat', decodeWdaDataFormat, { link_layer_protocol: want }, { timeoutMs: 3000 })).linkLayer;
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'WDA Set Data Format refused: keeping the modem framing');
      return;
    }
    const raw = got === undefined ? want === 'raw-ip' : got === DATA_FORMAT['raw-ip'];
    this.#info = { ...this.#info, dataFormat: raw ? 'raw-ip' : '802-3' };
    const ifname = this.#o.netInterface;
    if (!ifname || this.#o.netif !== undefined) return; // the data interface sets raw_ip itself
    const file = `${this.#o.sysfsRoot}/class/net/${ifname}/qmi/raw_ip`;
    try {
      const cur = (await fsp.readFile(file, 'utf8')).trim();
      const next = raw ? 'Y' : 'N';
      if (cur !== next) await fsp.writeFile(file, next);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') log.warn({ file, err: (e as Error).message }, 'could not set qmi_wwan raw_ip (is the interface down?)');
    }
  }

  async #pollRegistration(): Promise<void> {
    const ss = await this.#q().ask('nas.getServingSystem', (t) => decodeNasServingSystem(t));
    this.#applyServingSystem(ss, 'poll');
  }

  #applyServingSystem(ss: NasServingSystem | undefined, how: string): void {
    if (!ss) return;
    const registered = ss.registered;
    const rif = ss.radioInterfaces[0];
    const info: RegistrationInfo = {
      registered,
      state: registered ? (ss.roaming ? 'roaming' : 'home') : ss.registrationState === NAS_REG.searching ? 'searching' : ss.registrationState === NAS_REG.denied ? 'denied' : 'idle',
      ...(ss.plmn ? { mcc: ss.plmn.mcc, mnc: ss.plmn.mnc, operator: ss.plmn.description } : {}),
      ...(ss.lac === undefined ? {} : { lacOrTac: ss.lac }),
      ...(ss.cellId === undefined ? {} : { cellId: ss.cellId }),
      ...(rif === undefined ? {} : { accessTech: rif }),
      source: 'qmi',
    };
    this.#setRegistration(info, `QMI serving system (${how})`);
  }

  #setRegistration(info: RegistrationInfo, why: string): void {
    const before = this.#registered;
    this.#registered = info.registered;
    const changed = JSON.stringify(info) !== JSON.stringify(this.#registration);
    this.#registration = info;
    if (changed) this.emit('registration', info);
    if (before && !info.registered) {
      this.#regLostWhy = `registration lost (${info.state}, from ${why})`;
      this.#poke();
    } else if (!before && info.registered) this.#poke();
  }

  #onIndication(m: QmiMessage): void {
    try {
      if (m.key === 'nas.servingSystemIndication') this.#applyServingSystem(decodeNasServingSystem(m.frame.tlvs, true), 'indication');
      else if (m.key === 'nas.signalInfoIndication') this.#applySignal(decodeNasSignalInfo(m.frame.tlvs, true));
      else this.#data.indication?.(m);
    } catch (e) {
      const err = toDuocellError(e);
      log.warn({ code: err.code, key: m.key, err: err.message }, 'QMI indication dropped');
    }
  }

  #onUrc(u: AtUrc): void {
    if (u.name === '+CEREG' || u.name === '+CREG' || u.name === '+CGREG' || u.name === '+C5GREG') {
      try {
        const r = parseRegistration(u.line);
        // AT only reports losses faster; gains are confirmed over QMI (which also gives the PLMN)
        if (!r.registered && this.#registered)
          this.#setRegistration({ registered: false, state: r.state.toLowerCase(), accessTech: r.accessTech.toLowerCase(), source: 'at' }, `${u.name} URC`);
        else if (r.registered && !this.#registered) this.#poke();
      } catch (e) {
        log.debug({ line: u.line, err: (e as Error).message }, 'unparsable registration URC');
      }
      return;
    }
    this.#data.urc?.(u);
  }

  #applySignal(v: NasSignalInfo): void {
    let s: SignalInfo | undefined;
    if (v.lte) s = { rat: 'lte', rssi: v.lte.rssi, rsrq: v.lte.rsrq, rsrp: v.lte.rsrp, snr: v.lte.snrTenths / 10 };
    if (v.nr5g && !v.lte) s = { rat: '5gnr', rsrp: v.nr5g.rsrp, snr: v.nr5g.snrTenths / 10 };
    if (!s) return;
    if (this.#signal?.band !== undefined) s = { ...s, band: this.#signal.band };
    this.#signal = s;
    this.emit('signal', s);
  }

  async #refreshSignal(): Promise<void> {
    // a refresh still in flight when the modem vanishes must not put its values back
    const gen = this.#generation;
    try {
      const v = await this.#q().ask('nas.getSignalInfo', (t) => decodeNasSignalInfo(t), {}, { timeoutMs: 2000 });
      // ---- radios-at hook (item 5): the family's serving-cell query gives the band ----
      if (this.#at && !this.#at.closed) {
        const cell = await readServingCell(this.#at, this.#family);
        if (cell?.signal?.band !== undefined && gen === this.#generation) this.#signal = { ...(this.#signal ?? { rat: cell.signal.rat }), band: cell.signal.band };
      }
      // ---- end radios-at hook ----
      if (gen !== this.#generation) return;
      this.#applySignal(v);
    } catch (e) {
      log.debug({ err: (e as Error).message }, 'signal refresh failed');
    }
  }

  // ------------------------------------------------------------------------------------------
  // data session (the unit in data-session.ts; the data interface is configured here)

  async #teardownSessions(why: string, talk = true): Promise<void> {
    const had = this.#settings !== undefined || this.#data.active;
    this.#settings = undefined;
    // the interface first: local and fast, so the path goes down before the modem is asked
    if (had) await this.#o.netif?.remove(why).catch((e: unknown) => log.warn({ err: (e as Error).message }, 'deconfiguring the data interface failed'));
    await this.#data.stop(why, talk);
  }
}

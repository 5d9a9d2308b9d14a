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
 * The modem's life as a table (TRANSITIONS below); every change is an event with a reason:
 *
 *     absent ─start─► probing ─sim-locked─► sim-locked ─pin-accepted─┐
 *        ▲              │ └────sim-ready──────────────────────► sim-ready ─online─► searching
 *        │              └─probe-failed─► absent (back-off)                            │ ▲
 *        │                                                                  registered │ │ deregistered
 *        │                                                                            ▼ │
 *        │                      connected ◄─connected─ connecting ◄─connect─ registered
 *        │                          └────────dropped────────┴─connect-failed──► registered (back-off)
 *        └──────── port-lost (any state: port error, vanished, wedged) ── back-off, re-probe
 *
 * PIN safety: the retry counter is read before every verify; a PIN is tried only when at least
 * `minPinRetries` attempts remain (default 2, so a wrong PIN never uses the last attempt), and a
 * PIN the SIM rejected once is never tried again automatically. A PIN problem parks the
 * manager in sim-locked until setPin() gives a new one.
 */
import { EventEmitter } from 'node:events';
import fsp from 'node:fs/promises';
import { backoffDelay } from '../../core/backoff.js';
import { DuocellError, isDuocellError, toDuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import { parseRegistration } from '../../protocols/at/parsers.js';
import { decodeWdsCurrentSettings, NAS_RADIO_INTERFACE, SERVICE, WDS_CURRENT_SETTINGS_MASK, type QmiMessage, type QmiObject, type WdsCurrentSettings } from '../../protocols/qmi/index.js';
import { AtClient, type AtUrc } from './at.js';
import { QmiClient } from './qmi.js';
// ---- radios-at hook (item 5/8): family-specific AT queries, AT pass-through ----
import type { AtResponse } from '../../protocols/at/framer.js';
import type { ModemFamily } from '../../protocols/at/vendors.js';
import { identifyModem, readServingCell } from './at-family.js';
// ---- end radios-at hook ----
import { openModemPort, type ModemTransport, type TransportOpener } from './transport.js';

const log = logger('duocell:modem');

export const MODEM_STATES = ['absent', 'probing', 'sim-locked', 'sim-ready', 'searching', 'registered', 'connecting', 'connected'] as const;
export type ModemState = (typeof MODEM_STATES)[number];

export type ModemEvent =
  | 'start'
  | 'probe-failed'
  | 'sim-locked'
  | 'sim-ready'
  | 'pin-accepted'
  | 'online'
  | 'registered'
  | 'deregistered'
  | 'connect'
  | 'connected'
  | 'connect-failed'
  | 'dropped'
  | 'port-lost'
  | 'stop';

/** The declarative state table: state → event → next state. Anything else is a bug. */
export const TRANSITIONS: Readonly<Record<ModemState, Partial<Record<ModemEvent, ModemState>>>> = {
  absent: { start: 'probing' },
  probing: { 'sim-locked': 'sim-locked', 'sim-ready': 'sim-ready', 'probe-failed': 'absent', 'port-lost': 'absent' },
  'sim-locked': { 'pin-accepted': 'sim-ready', 'sim-locked': 'sim-locked', 'port-lost': 'absent' },
  'sim-ready': { online: 'searching', 'sim-locked': 'sim-locked', 'port-lost': 'absent' },
  searching: { registered: 'registered', 'port-lost': 'absent' },
  registered: { connect: 'connecting', deregistered: 'searching', 'port-lost': 'absent' },
  connecting: { connected: 'connected', 'connect-failed': 'registered', deregistered: 'searching', 'port-lost': 'absent' },
  connected: { dropped: 'registered', deregistered: 'searching', 'port-lost': 'absent' },
};

export type IpFamilyChoice = 'ipv4' | 'ipv6' | 'ipv4v6';

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
}

export interface StateChange {
  readonly state: ModemState;
  readonly previous: ModemState;
  readonly event: ModemEvent;
  /** Why, in words (also logged). */
  readonly reason: string;
  readonly error?: { readonly code: string; readonly message: string; readonly origin: string };
}

export interface RegistrationInfo {
  readonly registered: boolean;
  /** home, roaming, searching, denied, idle, unknown */
  readonly state: string;
  readonly mcc?: number;
  readonly mnc?: number;
  readonly operator?: string;
  readonly lacOrTac?: number;
  readonly cellId?: number;
  readonly accessTech?: string;
  readonly source: 'qmi' | 'at';
}

export interface SignalInfo {
  readonly rat: string;
  readonly rssi?: number;
  readonly rsrp?: number;
  readonly rsrq?: number;
  /** dB */
  readonly snr?: number;
  readonly band?: number;
}

export interface FamilySettings {
  readonly address: string;
  readonly prefixLength: number;
  readonly gateway?: string;
  readonly dns: string[];
  readonly mtu?: number;
}

export interface WdsSettings {
  readonly apn: string;
  /** Network interface carrying the session (from the board profile), e.g. wwan0. */
  readonly interface?: string;
  readonly ipv4?: FamilySettings;
  readonly ipv6?: FamilySettings;
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

interface DataSession {
  readonly family: 4 | 6;
  readonly client: number;
  readonly handle: number;
}

const PIN_ENABLED_NOT_VERIFIED = 1;
const PIN_BLOCKED = 4;
const PIN_PERMANENTLY_BLOCKED = 5;
const QMI_INCORRECT_PIN = 12;
const QMI_PIN_BLOCKED = 35;
const QMI_NO_EFFECT = 26;


export class ModemManager extends TypedEmitter<ModemManagerEvents> {
  readonly #o: Required<Omit<ModemManagerOptions, 'pin' | 'username' | 'password' | 'netInterface' | 'netif'>> &
    Pick<ModemManagerOptions, 'pin' | 'username' | 'password' | 'netInterface' | 'netif'>;
  #state: ModemState = 'absent';
  #lastReason = 'not started';
  #lastError: DuocellError | undefined;
  #running = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #qmi: QmiClient | undefined;
  #at: AtClient | undefined;
  #portLost: DuocellError | undefined;
  #probeAttempt = 0;
  #connectAttempt = 0;
  #registered = false;
  #regLostWhy: string | undefined;
  #dataDropped: string | undefined;
  #sessions: DataSession[] = [];
  #settings: WdsSettings | undefined;
  #registration: RegistrationInfo | undefined;
  #signal: SignalInfo | undefined;
  #info: ModemInfo = {};
  #pin: string | undefined;
  #pinChanged = false;
  #uimService = false;
  readonly #rejectedPins = new Set<string>();
  #polls = 0;
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
    this.#pin = opts.pin;
  }

  get state(): ModemState {
    return this.#state;
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
      state: this.#state,
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
    if (this.#state !== 'absent') this.#set('absent', 'stop', 'stopped');
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
    this.#pin = pin;
    this.#pinChanged = true;
    this.#poke();
  }

  // ------------------------------------------------------------------------------------------
  // state machine plumbing

  #fire(event: ModemEvent, reason: string, error?: DuocellError): void {
    const next = TRANSITIONS[this.#state][event];
    if (next === undefined) throw new DuocellError('DC_INTERNAL', `modem: no transition from ${this.#state} on ${event}`);
    this.#set(next, event, reason, error);
  }

  #set(next: ModemState, event: ModemEvent, reason: string, error?: DuocellError): void {
    const previous = this.#state;
    this.#state = next;
    this.#lastReason = reason;
    this.#lastError = error;
    const ev: StateChange = { state: next, previous, event, reason, ...(error ? { error: error.toJSON() } : {}) };
    (error ? log.warn : log.info).call(log, { state: next, previous, event, ...(error ? { code: error.code } : {}) }, `modem ${previous} → ${next}: ${reason}`);
    this.emit('state', ev);
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

  async #run(): Promise<void> {
    while (this.#running) {
      try {
        this.#checkPort();
        await this.#step();
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
    if (this.#state === 'probing' && e.code === 'DC_MODEM_PROBE') this.#fire('probe-failed', e.message, e);
    else if (this.#state !== 'absent') this.#fire('port-lost', `${e.code}: ${e.message}`, e);
  }

  async #step(): Promise<void> {
    switch (this.#state) {
      case 'absent': {
        if (this.#probeAttempt > 0) {
          const d = backoffDelay(this.#probeAttempt - 1, this.#o.backoffBaseMs, this.#o.backoffCapMs, this.#o.rand);
          log.info({ delayMs: d, attempt: this.#probeAttempt }, 'modem: waiting before probing again');
          await this.#sleep(d);
          if (!this.#running) return;
        }
        this.#fire('start', this.#probeAttempt === 0 ? 'starting' : `probing again (attempt ${this.#probeAttempt + 1})`);
        return;
      }
      case 'probing': {
        await this.#probe();
        const locked = await this.#simNeedsPin();
        if (locked) this.#fire('sim-locked', 'the SIM asks for its PIN');
        else this.#fire('sim-ready', 'SIM ready');
        return;
      }
      case 'sim-locked': {
        if (this.#pinChanged || this.#lastError === undefined) {
          this.#pinChanged = false;
          try {
            await this.#unlock();
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
        return;
      }
      case 'sim-ready': {
        await this.#online();
        this.#fire('online', 'radio on, searching for a network');
        return;
      }
      case 'searching': {
        await this.#pollRegistration();
        if (this.#registered) {
          this.#regLostWhy = undefined;
          this.#fire('registered', `registered (${this.#registration?.state ?? 'home'}, ${this.#registration?.operator ?? 'unknown operator'})`);
          void this.#refreshSignal();
          return;
        }
        await this.#sleep(this.#o.pollMs);
        return;
      }
      case 'registered': {
        if (!this.#registered) {
          this.#fire('deregistered', this.#regLostWhy ?? 'registration lost');
          return;
        }
        if (this.#connectAttempt > 0) {
          const d = backoffDelay(this.#connectAttempt - 1, this.#o.backoffBaseMs, this.#o.backoffCapMs, this.#o.rand);
          await this.#sleep(d);
          this.#checkPort();
          if (!this.#running) return;
          if (!this.#registered) return; // handled on the next step
        }
        this.#fire('connect', `starting the data session (APN ${JSON.stringify(this.#o.apn)}, ${this.#o.ipFamily})`);
        return;
      }
      case 'connecting': {
        this.#dataDropped = undefined;
        let settings: WdsSettings;
        try {
          settings = await this.#connect();
        } catch (e) {
          const err = toDuocellError(e);
          if (err.code !== 'DC_MODEM_CONNECT' && err.code !== 'DC_QMI_RESULT') throw err;
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
        return;
      }
      case 'connected': {
        await this.#sleep(this.#o.pollMs);
        this.#checkPort();
        if (!this.#running) return;
        if (this.#registered && this.#dataDropped === undefined) {
          // fall-back polling in case an indication was missed
          this.#polls++;
          await this.#pollRegistration();
          if (this.#registered) await this.#pollData();
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
          this.#connectAttempt++;
          this.#fire('dropped', `data session dropped: ${why}`, new DuocellError('DC_MODEM_DISCONNECTED', `data session dropped: ${why}`, { origin: 'device' }));
        }
        return;
      }
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
      qmi.call('dms.getModel').catch(() => ({}) as QmiObject),
      qmi.call('dms.getRevision').catch(() => ({}) as QmiObject),
      qmi.call('dms.getIds').catch(() => ({}) as QmiObject),
    ]);
    this.#info = {
      ...info,
      ...(typeof model.model === 'string' ? { model: model.model } : {}),
      ...(typeof revision.revision === 'string' ? { revision: revision.revision } : {}),
      ...(typeof ids.imei === 'string' ? { imei: ids.imei } : {}),
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
    const ports = typeof this.#o.ports === 'function' ? await this.#o.ports() : this.#o.ports;
    for (const path of ports) {
      if (path === this.#qmi.transport.path) continue;
      let t: ModemTransport;
      try {
        t = await this.#o.open(path);
      } catch {
        continue;
      }
      const c = new AtClient(t);
      if (await this.#probeAt(c)) {
        if (this.#qmi === undefined || !this.#running) {
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
    this.#registered = false;
    await Promise.all([q?.close().catch(() => undefined), a?.close().catch(() => undefined)]);
  }

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
  // SIM

  /**
   * PIN1 status: DMS UIM Get PIN Status, or, on modems whose DMS no longer carries the UIM
   * messages (newer Quectel RM5xx), UIM Get Card Status. Both report the same state numbers
   * (1 enabled-not-verified, 4 blocked, 5 permanently blocked) and the retry counters.
   */
  async #pinStatus(): Promise<{ status: number; retries: number; unblock: number }> {
    if (!this.#uimService) {
      try {
        const v = await this.#q().call('dms.uimGetPinStatus');
        const p = v.pin1_status as { current_status: number; verify_retries_left: number; unblock_retries_left: number } | undefined;
        if (!p) return { status: 3, retries: 3, unblock: 10 };
        return { status: p.current_status, retries: p.verify_retries_left, unblock: p.unblock_retries_left };
      } catch (e) {
        if (!isDuocellError(e, 'DC_QMI_RESULT')) throw e;
        log.info({ err: e.message }, 'DMS UIM messages refused: using the UIM service for the SIM');
        this.#uimService = true;
      }
    }
    const v = await this.#q().call('uim.getCardStatus');
    type App = { pin1_state: number; pin1_retries: number; puk1_retries: number };
    const cs = v.card_status as { cards: { card_state: number; applications: App[] }[] } | undefined;
    const card = cs?.cards.find((c) => c.card_state === 1);
    if (!card) throw new DuocellError('DC_MODEM_SIM', 'no SIM card present', { origin: 'device' });
    const app = card.applications[0];
    if (!app) return { status: 3, retries: 3, unblock: 10 };
    return { status: app.pin1_state, retries: app.pin1_retries, unblock: app.puk1_retries };
  }

  async #simNeedsPin(): Promise<boolean> {
    const s = await this.#pinStatus();
    if (s.status === PIN_BLOCKED || s.status === PIN_PERMANENTLY_BLOCKED) return true;
    return s.status === PIN_ENABLED_NOT_VERIFIED;
  }

  async #unlock(): Promise<void> {
    const s = await this.#pinStatus();
    if (s.status === PIN_BLOCKED || s.status === PIN_PERMANENTLY_BLOCKED)
      throw new DuocellError('DC_MODEM_SIM', `the SIM is blocked (PUK needed, ${s.unblock} PUK attempts left); duocell never enters a PUK`, { origin: 'device', unblockRetries: s.unblock });
    if (s.status !== PIN_ENABLED_NOT_VERIFIED) return;
    const pin = this.#pin;
    if (pin === undefined || pin === '') throw new DuocellError('DC_MODEM_PIN_REQUIRED', `the SIM needs a PIN and none is configured (${s.retries} attempts left)`, { retries: s.retries });
    if (this.#rejectedPins.has(pin))
      throw new DuocellError('DC_MODEM_PIN_WRONG', `the configured PIN was rejected before; not trying it again (${s.retries} attempts left)`, { retries: s.retries });
    if (s.retries < this.#o.minPinRetries)
      throw new DuocellError('DC_MODEM_PIN_UNSAFE', `only ${s.retries} PIN attempt(s) left: not trying, a wrong PIN would lock the SIM`, { retries: s.retries });
    try {
      if (this.#uimService)
        await this.#q().call('uim.verifyPin', { session: { session_type: 'primary-gw-provisioning', application_identifier: '' }, info: { pin_id: 'pin1', pin } });
      else await this.#q().call('dms.uimVerifyPin', { info: { pin_id: 'pin', pin } });
    } catch (e) {
      if (isDuocellError(e, 'DC_QMI_RESULT') && (e.detail.qmiError === QMI_INCORRECT_PIN || e.detail.qmiError === QMI_PIN_BLOCKED)) {
        this.#rejectedPins.add(pin);
        const vals = e.detail.values as QmiObject | undefined;
        const r = (vals?.pin_retries_status ?? vals?.retries_remaining) as { verify_retries_left?: number } | undefined;
        throw new DuocellError('DC_MODEM_PIN_WRONG', `the SIM rejected the configured PIN (${r?.verify_retries_left ?? '?'} attempts left)`, {
          origin: 'device',
          cause: e,
          retries: r?.verify_retries_left,
        });
      }
      throw e;
    }
  }

  // ------------------------------------------------------------------------------------------
  // radio, registration, signal

  async #online(): Promise<void> {
    const q = this.#q();
    const m = await q.call('dms.getOperatingMode').catch(() => ({}) as QmiObject);
    if (m.mode !== undefined && m.mode !== 0) await q.call('dms.setOperatingMode', { mode: 'online' });
    await q.call('nas.registerIndications', { serving_system_events: 1, signal_info: 1 }).catch(() => undefined);
    await this.#dataFormat();
  }

  /** Agree the link framing with the modem and, for raw IP, with the qmi_wwan driver. */
  async #dataFormat(): Promise<void> {
    const want = this.#o.dataFormat;
    if (want === 'keep') return;
    let got: unknown;
    try {
      const v = await this.#q().call('wda.setDataFormat', { link_layer_protocol: want }, { timeoutMs: 3000 });
      got = v.link_layer_protocol;
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'WDA Set Data Format refused: keeping the modem framing');
      return;
    }
    const raw = got === undefined ? want === 'raw-ip' : got === 2;
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
    const v = await this.#q().call('nas.getServingSystem');
    this.#applyServingSystem(v, 'poll');
  }

  #applyServingSystem(v: QmiObject, how: string): void {
    const ss = v.serving_system as { registration_state: number; ps_attach_state: number; radio_interfaces: number[] } | undefined;
    if (!ss) return;
    const registered = ss.registration_state === 1;
    const plmn = v.current_plmn as { mcc: number; mnc: number; description: string } | undefined;
    const roaming = v.roaming_indicator === 0;
    const rif = ss.radio_interfaces[0];
    const info: RegistrationInfo = {
      registered,
      state: registered ? (roaming ? 'roaming' : 'home') : ss.registration_state === 2 ? 'searching' : ss.registration_state === 3 ? 'denied' : 'idle',
      ...(plmn ? { mcc: plmn.mcc, mnc: plmn.mnc, operator: plmn.description } : {}),
      ...(typeof v.lac_3gpp === 'number' ? { lacOrTac: v.lac_3gpp } : {}),
      ...(typeof v.cid_3gpp === 'number' ? { cellId: v.cid_3gpp } : {}),
      ...(rif !== undefined ? { accessTech: (NAS_RADIO_INTERFACE as Record<number, string>)[rif] ?? 'unknown' } : {}),
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
    if (m.key === 'nas.servingSystemIndication') this.#applyServingSystem(m.values, 'indication');
    else if (m.key === 'wds.packetServiceStatusIndication') {
      const s = m.values.connection_status as { status: number } | undefined;
      if (s && s.status === 1 && this.#sessions.some((x) => x.client === m.frame.client)) {
        const reason = typeof m.values.call_end_reason === 'number' ? m.values.call_end_reason : 'unknown';
        this.#dataDropped = `network ended the session (call end reason ${reason})`;
        this.#poke();
      }
    } else if (m.key === 'nas.signalInfoIndication') this.#applySignal(m.values);
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
    }
  }

  #applySignal(v: QmiObject): void {
    const lte = v.lte_signal_strength as { rssi: number; rsrq: number; rsrp: number; snr: number } | undefined;
    const nr = v['5g_signal_strength'] as { rsrp: number; snr: number } | undefined;
    let s: SignalInfo | undefined;
    if (lte) s = { rat: 'lte', rssi: lte.rssi, rsrq: lte.rsrq, rsrp: lte.rsrp, snr: lte.snr / 10 };
    if (nr && !lte) s = { rat: '5gnr', rsrp: nr.rsrp, snr: nr.snr / 10 };
    if (!s) return;
    if (this.#signal?.band !== undefined) s = { ...s, band: this.#signal.band };
    this.#signal = s;
    this.emit('signal', s);
  }

  async #refreshSignal(): Promise<void> {
    try {
      const v = await this.#q().call('nas.getSignalInfo', {}, { timeoutMs: 2000 });
      // ---- radios-at hook (item 5): the family's serving-cell query gives the band ----
      if (this.#at && !this.#at.closed) {
        const cell = await readServingCell(this.#at, this.#family);
        if (cell?.signal?.band !== undefined) this.#signal = { ...(this.#signal ?? { rat: cell.signal.rat }), band: cell.signal.band };
      }
      // ---- end radios-at hook ----
      this.#applySignal(v);
    } catch (e) {
      log.debug({ err: (e as Error).message }, 'signal refresh failed');
    }
  }

  // ------------------------------------------------------------------------------------------
  // data session

  async #pollData(): Promise<void> {
    for (const s of this.#sessions) {
      const v = await this.#q().call('wds.getPacketServiceStatus', {}, { client: s.client });
      if (v.connection_status !== 2) {
        this.#dataDropped = `packet service status is ${String(v.connection_status)} (polled)`;
        return;
      }
    }
  }

  async #connect(): Promise<WdsSettings> {
    const q = this.#q();
    const families: (4 | 6)[] = this.#o.ipFamily === 'ipv4v6' ? [4, 6] : this.#o.ipFamily === 'ipv6' ? [6] : [4];
    const out: { ipv4?: FamilySettings; ipv6?: FamilySettings } = {};
    const failures: DuocellError[] = [];
    for (const family of families) {
      const client = await q.allocateClient(SERVICE.WDS, false);
      try {
        await q.request('wds.setIpFamily', { preference: family }, { client, allowFailure: true });
        const m = await q.request(
          'wds.startNetwork',
          {
            apn: this.#o.apn,
            ip_family_preference: family,
            ...(this.#o.username ? { username: this.#o.username, password: this.#o.password ?? '', authentication_preference: 'both' } : {}),
          },
          { client, allowFailure: true, timeoutMs: this.#o.connectTimeoutMs },
        );
        if (m.result && !m.result.ok && m.result.error !== QMI_NO_EFFECT) {
          const verbose = m.values.verbose_call_end_reason as { type: number; reason: number } | undefined;
          throw new DuocellError('DC_MODEM_CONNECT', `IPv${family} start network failed: ${m.result.errorName}${verbose ? ` (verbose reason type ${verbose.type} cause ${verbose.reason})` : ''}`, {
            origin: 'device',
            family,
            qmiError: m.result.error,
            callEndReason: m.values.call_end_reason,
            verbose,
          });
        }
        const handle = typeof m.values.packet_data_handle === 'number' ? m.values.packet_data_handle : 0;
        this.#sessions.push({ family, client, handle });
        const st = await q.request('wds.getCurrentSettings', { requested_settings: WDS_CURRENT_SETTINGS_MASK }, { client });
        let cur: WdsCurrentSettings;
        try {
          cur = decodeWdsCurrentSettings(st.frame.tlvs);
        } catch (e) {
          const d = toDuocellError(e);
          throw new DuocellError('DC_MODEM_CONNECT', `IPv${family} session up but its settings are malformed: ${d.code}: ${d.message}`, { origin: 'device', family, cause: d });
        }
        const fs = familySettings(family, cur);
        if (!fs) throw new DuocellError('DC_MODEM_CONNECT', `IPv${family} session up but the modem reported no address`, { origin: 'device', family });
        if (family === 4) out.ipv4 = fs;
        else out.ipv6 = fs;
      } catch (e) {
        const err = toDuocellError(e);
        if (err.code !== 'DC_MODEM_CONNECT' && err.code !== 'DC_QMI_RESULT') throw err;
        failures.push(err);
        if (!this.#sessions.some((s) => s.client === client)) await q.releaseClient(SERVICE.WDS, client).catch(() => undefined);
        log.warn({ family, code: err.code }, err.message);
      }
    }
    if (!out.ipv4 && !out.ipv6) throw failures[0] ?? new DuocellError('DC_MODEM_CONNECT', 'no family could be started');
    return { apn: this.#o.apn, ...(this.#o.netInterface ? { interface: this.#o.netInterface } : {}), ...out };
  }

  async #teardownSessions(why: string, talk = true): Promise<void> {
    const sessions = this.#sessions;
    this.#sessions = [];
    const had = this.#settings !== undefined || sessions.length > 0;
    this.#settings = undefined;
    // the interface first: local and fast, so the path goes down before the modem is asked
    if (had) await this.#o.netif?.remove(why).catch((e: unknown) => log.warn({ err: (e as Error).message }, 'deconfiguring the data interface failed'));
    const q = this.#qmi;
    if (!talk || !q || q.closed) return;
    for (const s of sessions) {
      if (s.handle) await q.call('wds.stopNetwork', { packet_data_handle: s.handle }, { client: s.client, timeoutMs: 2000 }).catch(() => undefined);
      await q.releaseClient(SERVICE.WDS, s.client).catch(() => undefined);
    }
    if (sessions.length > 0) log.info({ why, sessions: sessions.length }, 'data session torn down');
  }
}

function familySettings(family: 4 | 6, v: WdsCurrentSettings): FamilySettings | undefined {
  const f = family === 4 ? v.ipv4 : v.ipv6;
  if (f === undefined) return undefined;
  return { address: f.address, prefixLength: f.prefixLength, ...(f.gateway === undefined ? {} : { gateway: f.gateway }), dns: f.dns, ...(v.mtu === undefined ? {} : { mtu: v.mtu }) };
}

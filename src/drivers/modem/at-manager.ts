/**
 * The manager of an AT-only modem (`modem.control: "at"`): the same states, events and
 * snapshot as the QMI ModemManager (its TRANSITIONS table is reused, so the paths service, the
 * API and `duocell modem` see no difference), with everything done over one AT port and the
 * data path an ECM/NCM USB netdev configured from a DHCP lease (at-data.ts, dhcp-lease.ts).
 *
 *   absent ─start─► probing: open each candidate, "AT" ×2, ATE0, AT+CMEE=1,
 *                            identify (AT+CGMI/CGMM/CGMR/CGSN → family), AT+CPIN? → pinDecision
 *     sim-locked: AT+CPIN="<pin>" only when pinDecision says send-pin (attempts from
 *                 AT+QPINC / AT+CPINR, never the last ones, a rejected PIN never twice)
 *     sim-ready:  AT+CFUN=1 if needed; AT+CEREG=2, AT+CGREG=2, AT+CREG=2 (URCs)
 *     searching:  AT+CEREG? / AT+CGREG? / AT+CREG? every poll (URCs act at once); AT+COPS?
 *     registered ─connect─► connecting: AtDataSession.connect (CGDCONT, QNETDEVCTL|CGACT, DHCP)
 *                 then DataInterface.apply(lease) (rtnetlink: address, link, default route)
 *     connected:  a +CEREG/+CGREG loss URC pokes the loop: the interface goes down first (path
 *                 down), then the session; polls AT+CEREG? and the session query; serving cell
 *                 every 5 polls by family (AT!GSTATUS?, AT+CPSI?, AT#RFSTS, AT+QENG, AT+CESQ)
 *   any state ─port-lost─► absent (the AT port closed, vanished or wedged past resync), back-off
 */
import { backoffDelay } from '../../core/backoff.js';
import { DuocellError, isDuocellError, toDuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import type { AtResponse } from '../../protocols/at/framer.js';
import { parseCops, parseRegistration } from '../../protocols/at/parsers.js';
import type { ServingCellReport } from '../../protocols/at/cells.js';
import type { ModemFamily } from '../../protocols/at/vendors.js';
import { AtClient, type AtUrc } from './at.js';
import { AtDataSession } from './at-data.js';
import { identifyModem, readServingCell, readSim } from './at-family.js';
import type { DhcpLease } from './dhcp-lease.js';
import {
  TRANSITIONS,
  TypedEmitter,
  type ModemEvent,
  type ModemInfo,
  type ModemManagerEvents,
  type ModemManagerOptions,
  type ModemState,
  type RegistrationInfo,
  type SignalInfo,
  type StateChange,
  type WdsSettings,
} from './manager.js';
import { openModemPort, type ModemTransport, type TransportOpener } from './transport.js';

const log = logger('duocell:modem:at-only');

export interface AtModemManagerOptions {
  /** Candidate AT ports (or a function asked before every probe). */
  readonly ports: ModemManagerOptions['ports'];
  /** The module's USB network device (ECM/NCM/RNDIS), e.g. usb0. */
  readonly netInterface: string;
  readonly open?: TransportOpener;
  readonly apn: string;
  readonly cid?: number;
  readonly pin?: string;
  readonly username?: string;
  readonly password?: string;
  readonly minPinRetries?: number;
  readonly probeTimeoutMs?: number;
  readonly pollMs?: number;
  readonly backoffBaseMs?: number;
  readonly backoffCapMs?: number;
  readonly connectTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
  readonly rand?: () => number;
  /** Configures usb0 from the lease (DataInterface over rtnetlink). */
  readonly netif?: ModemManagerOptions['netif'];
  /** Link usb0 up before DHCP. */
  readonly linkUp: (ifname: string) => Promise<void>;
  /** Tests: another lease source. */
  readonly lease?: () => DhcpLease;
}

export interface AtModemInfo extends ModemInfo {
  readonly manufacturer?: string;
  readonly family?: ModemFamily;
  readonly control?: 'at';
}

const PS_REG = new Set(['+CEREG', '+CGREG', '+C5GREG']);
const PROBE_BACKOFF_CAP_MS = 2000;

export class AtModemManager extends TypedEmitter<ModemManagerEvents> {
  readonly #o: AtModemManagerOptions & Required<Pick<AtModemManagerOptions, 'open' | 'minPinRetries' | 'probeTimeoutMs' | 'pollMs' | 'backoffBaseMs' | 'backoffCapMs' | 'connectTimeoutMs' | 'requestTimeoutMs' | 'rand'>>;
  #state: ModemState = 'absent';
  #lastReason = 'not started';
  #lastError: DuocellError | undefined;
  #running = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #at: AtClient | undefined;
  #portLost: DuocellError | undefined;
  #probeAttempt = 0;
  #connectAttempt = 0;
  #registered = false;
  /** Last registration stat per command (+CEREG, +CGREG, +C5GREG, +CREG). */
  readonly #regBy = new Map<string, boolean>();
  #regLostWhy: string | undefined;
  #dataDropped: string | undefined;
  #session: AtDataSession | undefined;
  #settings: WdsSettings | undefined;
  #registration: RegistrationInfo | undefined;
  #signal: SignalInfo | undefined;
  #servingCell: ServingCellReport | undefined;
  #info: AtModemInfo = {};
  #family: ModemFamily = 'generic';
  #pin: string | undefined;
  #pinChanged = false;
  readonly #rejectedPins = new Set<string>();
  #simWaits = 0;
  #polls = 0;

  constructor(opts: AtModemManagerOptions) {
    super();
    this.#o = {
      open: openModemPort,
      minPinRetries: 2,
      probeTimeoutMs: 1500,
      pollMs: 1000,
      backoffBaseMs: 500,
      backoffCapMs: 30_000,
      connectTimeoutMs: 30_000,
      requestTimeoutMs: 5000,
      rand: Math.random,
      ...opts,
    };
    this.#pin = opts.pin;
  }

  get state(): ModemState {
    return this.#state;
  }

  snapshot(): ReturnType<import('./manager.js').ModemManager['snapshot']> & { servingCell?: ServingCellReport } {
    return {
      state: this.#state,
      reason: this.#lastReason,
      ...(this.#lastError ? { error: this.#lastError.toJSON() } : {}),
      ...(this.#registration ? { registration: this.#registration } : {}),
      ...(this.#signal ? { signal: this.#signal } : {}),
      ...(this.#settings ? { settings: this.#settings } : {}),
      ...(this.#servingCell ? { servingCell: this.#servingCell } : {}),
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
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#loop, new Promise<void>((r) => (timer = setTimeout(r, 300)))]);
    clearTimeout(timer);
    await Promise.race([this.#teardown('stopping'), new Promise<void>((r) => (timer = setTimeout(r, 700)))]);
    clearTimeout(timer);
    await this.#o.netif?.remove('stopping').catch(() => undefined);
    await this.#closePort();
    await this.#loop;
    await this.#o.netif?.close?.().catch(() => undefined);
    this.#clearRadio();
    if (this.#state !== 'absent') this.#set('absent', 'stop', 'stopped');
  }

  setPin(pin: string | undefined): void {
    this.#pin = pin;
    this.#pinChanged = true;
    this.#poke();
  }

  /**
   * One AT command from outside (the pass-through), serialised in the same queue as the
   * manager's own commands: never a second writer on the port. Validation is the caller's
   * (at-passthrough.ts).
   */
  async atCommand(cmd: string, timeoutMs: number): Promise<AtResponse> {
    const at = this.#at;
    if (at === undefined || at.closed) throw new DuocellError('DC_MODEM_CLOSED', 'no AT port is open (modem absent or probing)');
    return at.command(cmd, { timeoutMs });
  }

  // ------------------------------------------------------------------------------------------

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

  #a(): AtClient {
    if (!this.#at) throw new DuocellError('DC_MODEM_CLOSED', 'no AT port');
    return this.#at;
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
    await this.#teardown('port lost', false);
    await this.#closePort();
    this.#portLost = undefined;
    this.#clearRadio();
    this.#probeAttempt++;
    if (this.#state === 'probing' && e.code === 'DC_MODEM_PROBE') this.#fire('probe-failed', e.message, e);
    else if (this.#state !== 'absent') this.#fire('port-lost', `${e.code}: ${e.message}`, e);
  }

  async #step(): Promise<void> {
    switch (this.#state) {
      case 'absent': {
        if (this.#probeAttempt > 0) {
          // re-probing a vanished port costs one failed open: capped at 2 s so that a modem that
          // comes back is found within the ≤ 5 s the issue asks (the connect back-off keeps the full cap)
          const d = backoffDelay(this.#probeAttempt - 1, this.#o.backoffBaseMs, Math.min(this.#o.backoffCapMs, PROBE_BACKOFF_CAP_MS), this.#o.rand);
          await this.#sleep(d);
          if (!this.#running) return;
        }
        this.#fire('start', this.#probeAttempt === 0 ? 'starting' : `probing again (attempt ${this.#probeAttempt + 1})`);
        return;
      }
      case 'probing': {
        if (this.#at === undefined) await this.#probe();
        const sim = await readSim(this.#a(), this.#family, { pinConfigured: !!this.#pin, alreadySent: this.#pin !== undefined && this.#rejectedPins.has(this.#pin), minRetries: this.#o.minPinRetries });
        if (sim.decision.action === 'wait' && this.#simWaits++ < 20) {
          await this.#sleep(this.#o.pollMs);
          return; // stays probing: the SIM is initialising
        }
        this.#simWaits = 0;
        if (sim.decision.action === 'none') this.#fire('sim-ready', `SIM ready (${sim.state.code ?? sim.state.kind})`);
        else this.#fire('sim-locked', `the SIM is ${sim.state.code ?? sim.state.kind}`);
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
        await this.#sleep(this.#o.pollMs * 5);
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
          await this.#refreshSignal();
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
          await this.#sleep(backoffDelay(this.#connectAttempt - 1, this.#o.backoffBaseMs, this.#o.backoffCapMs, this.#o.rand));
          this.#checkPort();
          if (!this.#running || !this.#registered) return;
        }
        this.#fire('connect', `starting the data session on ${this.#o.netInterface} (APN ${JSON.stringify(this.#o.apn)}, AT + DHCP)`);
        return;
      }
      case 'connecting': {
        this.#dataDropped = undefined;
        const s = new AtDataSession({
          ifname: this.#o.netInterface,
          apn: this.#o.apn,
          family: this.#family,
          linkUp: this.#o.linkUp,
          ...(this.#o.cid === undefined ? {} : { cid: this.#o.cid }),
          ...(this.#o.username ? { username: this.#o.username, password: this.#o.password ?? '' } : {}),
          ...(this.#o.lease ? { lease: this.#o.lease } : {}),
        });
        s.onLost = (why) => {
          this.#dataDropped = why;
          this.#poke();
        };
        this.#session = s;
        let settings: WdsSettings;
        try {
          settings = await s.connect(this.#a(), this.#o.connectTimeoutMs);
          this.#checkPort();
          if (this.#o.netif !== undefined) await this.#o.netif.apply(settings);
        } catch (e) {
          const err = toDuocellError(e);
          if (err.code !== 'DC_MODEM_CONNECT' && err.code !== 'DC_MODEM_DHCP' && err.code !== 'DC_MODEM_NETIF') throw err;
          await this.#teardown(`connect failed: ${err.message}`);
          this.#connectAttempt++;
          if (!this.#registered) this.#fire('deregistered', this.#regLostWhy ?? 'registration lost while connecting', err);
          else this.#fire('connect-failed', err.message, err);
          return;
        }
        if (!this.#registered) {
          await this.#teardown('registration lost');
          this.#fire('deregistered', this.#regLostWhy ?? 'registration lost while connecting');
          return;
        }
        this.#connectAttempt = 0;
        this.#probeAttempt = 0;
        this.#settings = settings;
        this.emit('settings', settings);
        this.#fire('connected', `data session up: ${settings.ipv4?.address ?? '?'} on ${this.#o.netInterface} (DHCP from the modem)`);
        return;
      }
      case 'connected': {
        if (this.#registered && this.#dataDropped === undefined) {
          await this.#sleep(this.#o.pollMs);
          this.#checkPort();
          if (!this.#running) return;
        }
        if (this.#registered && this.#dataDropped === undefined) {
          this.#polls++;
          await this.#pollRegistration();
          if (this.#registered && this.#dataDropped === undefined && this.#session !== undefined) {
            const up = await this.#session.poll(this.#a()).catch((e: DuocellError) => {
              if (e.code === 'DC_MODEM_CLOSED' || e.code === 'DC_MODEM_PORT') throw e;
              return true; // a refused query says nothing about the session
            });
            if (!up) this.#dataDropped = 'the modem reports the data session inactive (polled)';
          }
          if (this.#polls % 5 === 0) await this.#refreshSignal();
        }
        if (!this.#registered) {
          const why = this.#regLostWhy ?? 'registration lost';
          await this.#teardown(why);
          this.#fire('deregistered', why, new DuocellError('DC_MODEM_REGISTRATION', why, { origin: 'device' }));
          return;
        }
        if (this.#dataDropped !== undefined) {
          const why = this.#dataDropped;
          await this.#teardown(why);
          this.#connectAttempt++;
          this.#fire('dropped', `data session dropped: ${why}`, new DuocellError('DC_MODEM_DISCONNECTED', `data session dropped: ${why}`, { origin: 'device' }));
        }
        return;
      }
    }
  }

  // ------------------------------------------------------------------------------------------

  async #probe(): Promise<void> {
    const ports = typeof this.#o.ports === 'function' ? await this.#o.ports() : this.#o.ports;
    const tried: string[] = [];
    for (const path of ports) {
      let t: ModemTransport;
      try {
        t = await this.#o.open(path);
      } catch (e) {
        const msg = (e as Error).message;
        tried.push(msg.startsWith(path) ? msg : `${path}: ${msg}`);
        continue;
      }
      const c = new AtClient(t);
      if (await this.#probeAt(c)) {
        this.#attach(c);
        await this.#identify();
        return;
      }
      c.detach();
      await t.close().catch(() => undefined);
      tried.push(`${path}: does not answer AT`);
    }
    const why = ports.length === 0 ? 'no candidate AT ports in the board profile' : tried.join('; ');
    throw new DuocellError('DC_MODEM_PROBE', `no AT port among ${ports.length} candidate(s): ${why}`, { tried, candidates: [...ports] });
  }

  async #probeAt(c: AtClient): Promise<boolean> {
    for (let i = 0; i < 2; i++) {
      try {
        await c.command('AT', { timeoutMs: Math.max(200, Math.floor(this.#o.probeTimeoutMs / 2)), resync: false });
        await c.command('ATE0', { resync: false }).catch(() => undefined);
        return true;
      } catch {
        /* once more */
      }
    }
    return false;
  }

  #attach(at: AtClient): void {
    this.#at = at;
    at.defaultTimeoutMs = this.#o.requestTimeoutMs;
    const lost = (err?: DuocellError): void => {
      if (!this.#running || this.#portLost || this.#at !== at) return;
      this.#portLost = err ?? new DuocellError('DC_MODEM_PORT', `${at.transport.path}: AT port closed`);
      this.#poke();
    };
    at.on('close', lost);
    at.on('desync', lost);
    at.on('urc', (u: AtUrc) => this.#onUrc(u));
  }

  async #identify(): Promise<void> {
    const at = this.#a();
    await at.command('AT+CMEE=1').catch(() => undefined);
    const id = await identifyModem(at);
    this.#family = id.family;
    this.#info = {
      control: 'at',
      atPort: at.transport.path,
      family: id.family,
      ...(id.manufacturer === undefined ? {} : { manufacturer: id.manufacturer }),
      ...(id.model === undefined ? {} : { model: id.model }),
      ...(id.revision === undefined ? {} : { revision: id.revision }),
      ...(id.imei === undefined ? {} : { imei: id.imei }),
    };
    this.emit('info', this.#info);
    log.info(this.#info, 'AT-only modem found');
  }

  async #closePort(): Promise<void> {
    const a = this.#at;
    this.#at = undefined;
    this.#registered = false;
    this.#regBy.clear();
    await a?.close().catch(() => undefined);
  }

  #clearRadio(): void {
    const hadReg = this.#registration !== undefined;
    this.#registration = undefined;
    this.#signal = undefined;
    this.#servingCell = undefined;
    this.#settings = undefined;
    this.#info = {};
    if (hadReg) this.emit('registration', { registered: false, state: 'unknown', source: 'at' });
  }

  async #unlock(): Promise<void> {
    const at = this.#a();
    const pin = this.#pin;
    const sim = await readSim(at, this.#family, { pinConfigured: !!pin, alreadySent: pin !== undefined && this.#rejectedPins.has(pin), minRetries: this.#o.minPinRetries });
    const d = sim.decision;
    if (d.action === 'none') return;
    if (d.action === 'wait') throw new DuocellError('DC_MODEM_SIM', d.reason, { origin: 'device' });
    if (d.action === 'stop') {
      const code = d.code === 'DC_MODEM_PIN_UNSAFE' && pin !== undefined && this.#rejectedPins.has(pin) ? 'DC_MODEM_PIN_WRONG' : d.code;
      throw new DuocellError(code, `${d.reason}${sim.retriesLeft === undefined ? '' : ` (${sim.retriesLeft} attempts left)`}`, { origin: 'device', ...(sim.retriesLeft === undefined ? {} : { retries: sim.retriesLeft }) });
    }
    try {
      await at.command(`AT+CPIN="${pin!.replace(/[^0-9]/g, '')}"`, { timeoutMs: 10_000 });
    } catch (e) {
      if (isDuocellError(e, 'DC_AT_CME_ERROR') || isDuocellError(e, 'DC_AT_ERROR')) {
        this.#rejectedPins.add(pin!);
        throw new DuocellError('DC_MODEM_PIN_WRONG', `the SIM rejected the configured PIN (${e.message})`, { origin: 'device', cause: e });
      }
      throw e;
    }
    // the SIM takes a moment after the PIN; the next probe/registration step re-reads it
    await this.#sleep(200);
  }

  async #online(): Promise<void> {
    const at = this.#a();
    const cfun = await at.text('AT+CFUN?').catch(() => '');
    if (!/\+CFUN:\s*1\b/.test(cfun)) await at.command('AT+CFUN=1', { timeoutMs: 15_000 });
    for (const c of ['AT+CEREG=2', 'AT+CGREG=2', 'AT+CREG=2']) await at.command(c).catch(() => undefined);
    await at.command('AT+COPS=3,0').catch(() => undefined); // long alphanumeric operator names
  }

  #regNow(): boolean {
    const ps = [...this.#regBy].filter(([k]) => PS_REG.has(k));
    if (ps.length > 0) return ps.some(([, v]) => v);
    return this.#regBy.get('+CREG') ?? false;
  }

  async #pollRegistration(): Promise<void> {
    const at = this.#a();
    let last: ReturnType<typeof parseRegistration> | undefined;
    for (const [cmd, name] of [['AT+CEREG?', '+CEREG'], ['AT+CGREG?', '+CGREG'], ['AT+CREG?', '+CREG']] as const) {
      try {
        const r = parseRegistration(await at.text(cmd, { timeoutMs: 3000 }));
        this.#regBy.set(name, r.registered);
        if (r.registered || last === undefined) last = r;
        if (r.registered) break;
      } catch (e) {
        const d = toDuocellError(e);
        if (d.code === 'DC_MODEM_CLOSED' || d.code === 'DC_MODEM_PORT') throw d;
      }
    }
    if (last === undefined) return;
    let operator: string | undefined;
    let act = last.accessTech.toLowerCase();
    if (last.registered) {
      try {
        const c = parseCops(await at.text('AT+COPS?', { timeoutMs: 5000 }));
        operator = c.operator;
        if (c.act !== undefined) act = c.accessTech.toLowerCase();
      } catch {
        /* no operator name */
      }
    }
    const info: RegistrationInfo = {
      registered: last.registered,
      state: last.state.toLowerCase(),
      ...(operator ? { operator } : {}),
      ...(last.lacOrTac !== 0 ? { lacOrTac: last.lacOrTac } : {}),
      ...(last.ci !== 0 ? { cellId: last.ci } : {}),
      accessTech: act,
      source: 'at',
    };
    this.#setRegistration(info, 'AT poll');
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

  #onUrc(u: AtUrc): void {
    if (u.name !== '+CEREG' && u.name !== '+CREG' && u.name !== '+CGREG' && u.name !== '+C5GREG') return;
    let r: ReturnType<typeof parseRegistration>;
    try {
      r = parseRegistration(u.line);
    } catch (e) {
      log.debug({ line: u.line, err: (e as Error).message }, 'unparsable registration URC');
      return;
    }
    this.#regBy.set(u.name, r.registered);
    const now = this.#regNow();
    if (!now && this.#registered) this.#setRegistration({ registered: false, state: r.state.toLowerCase(), accessTech: r.accessTech.toLowerCase(), source: 'at' }, `${u.name} URC`);
    else if (now && !this.#registered) this.#poke(); // confirmed (with the operator) by the next poll
  }

  async #refreshSignal(): Promise<void> {
    const at = this.#at;
    if (!at || at.closed) return;
    const r = await readServingCell(at, this.#family);
    if (r === undefined) return;
    this.#servingCell = r.report;
    if (r.signal !== undefined) {
      this.#signal = r.signal;
      this.emit('signal', r.signal);
    }
  }

  async #teardown(why: string, talk = true): Promise<void> {
    const s = this.#session;
    this.#session = undefined;
    const had = this.#settings !== undefined || s !== undefined;
    this.#settings = undefined;
    // the interface first: local and fast, so the path goes down before the modem is asked
    if (had) await this.#o.netif?.remove(why).catch((e: unknown) => log.warn({ err: (e as Error).message }, 'deconfiguring the data interface failed'));
    if (s) await s.disconnect(talk ? this.#at : undefined, why);
  }
}

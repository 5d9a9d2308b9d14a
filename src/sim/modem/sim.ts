import { EventEmitter } from 'node:events';
import { randomInt } from 'node:crypto';
import { logger } from '../../core/logger.js';
import { PtyPort } from './pty.js';
import { SimQmi, type Session } from './sim-qmi.js';

/**
 * A Quectel EC25-class modem, simulated: an AT port and a QMI port, each a pseudo-terminal.
 *
 *   host (duocell) ── /…/at  ⇄ pty ⇄ socat ⇄ AT interpreter  ─┐
 *                  └─ /…/qmi ⇄ pty ⇄ socat ⇄ QMI dispatcher ──┴─ one modem state:
 *                                                                 SIM (PIN, retries, PUK), CFUN,
 *                                                                 registration, data sessions
 *
 * The QMI dispatcher and its client ids and WDS sessions are in sim-qmi.ts.
 *
 * Scriptable through act(): SIM PIN, wrong PIN count, no service, registration lost/regained,
 * data session drop, garbage bytes, ports vanishing and reappearing.
 *
 * Events: 'wds-started' (WdsSessionEvent) when a QMI Start Network succeeds — the simulated
 * board brings wwan0 up with that address; 'wds-stopped' (WdsSessionEvent & {reason});
 * 'registration' ({stat}); 'ports' ({up}).
 */

export interface SimFamilyConfig {
  readonly address: string;
  readonly prefixLength: number;
  readonly gateway: string;
  readonly dns: readonly string[];
  readonly mtu: number;
}

export interface ModemSimConfig {
  readonly atLink: string;
  readonly qmiLink: string;
  /** SIM PIN; undefined = PIN disabled. */
  readonly pin?: string;
  readonly pinRetries?: number;
  readonly pukRetries?: number;
  readonly registerDelayMs?: number;
  /** False = no network in range (stays searching) until act({action:'register'}). */
  readonly network?: boolean;
  readonly operator?: { readonly mcc: number; readonly mnc: number; readonly name: string };
  readonly ipv4?: SimFamilyConfig;
  readonly ipv6?: SimFamilyConfig;
  readonly model?: string;
  readonly revision?: string;
  readonly imei?: string;
  readonly tac?: number;
  readonly cellId?: number;
  readonly band?: number;
  readonly signal?: { readonly rssi: number; readonly rsrq: number; readonly rsrp: number; readonly snr: number };
  /** False: DMS refuses the UIM PIN messages (as newer firmware does); the UIM service works. */
  readonly dmsUim?: boolean;
  /** False: no NAS Serving System indications (only AT URCs and polling tell of changes). */
  readonly nasIndications?: boolean;
  /**
   * False: an AT-only module (no QMI port appears). Its data side is then an ECM/NCM netdev:
   * the data session is controlled with AT+QNETDEVCTL / AT+CGACT and announced as 'at-data'
   * events; whoever hosts the simulator starts the module's DHCP server on them (ecm.ts).
   */
  readonly qmi?: boolean;
  /** Manufacturer string (AT+CGMI, ATI), default Quectel. */
  readonly manufacturer?: string;
}

export const DEFAULT_SIM_CONFIG = {
  pinRetries: 3,
  pukRetries: 10,
  registerDelayMs: 200,
  network: true,
  operator: { mcc: 262, mnc: 1, name: 'duocell sim' },
  ipv4: { address: '10.64.12.7', prefixLength: 30, gateway: '10.64.12.6', dns: ['10.64.0.53', '10.64.1.53'], mtu: 1500 },
  ipv6: { address: '2001:db8:64:1::7', prefixLength: 64, gateway: '2001:db8:64:1::1', dns: ['2001:db8:64::53'], mtu: 1500 },
  model: 'EC25',
  revision: 'EC25EFAR06A06M4G',
  imei: '866758040000001',
  tac: 0x1f00,
  cellId: 0x79d903,
  band: 3,
  signal: { rssi: -65, rsrq: -9, rsrp: -95, snr: 120 },
  dmsUim: true,
  nasIndications: true,
  qmi: true,
  manufacturer: 'Quectel',
} as const;

export interface WdsSessionEvent {
  readonly family: 4 | 6;
  readonly handle: number;
  readonly client: number;
  readonly apn: string;
  readonly address: string;
  readonly prefixLength: number;
  readonly gateway: string;
  readonly dns: readonly string[];
  readonly mtu: number;
}

export type SimAction =
  | { action: 'register' }
  | { action: 'deregister' }
  | { action: 'no-service' }
  | { action: 'drop-data' }
  | { action: 'garbage'; port?: 'at' | 'qmi'; bytes?: number }
  | { action: 'vanish' }
  | { action: 'hang' }
  | { action: 'unhang' }
  | { action: 'appear' }
  | { action: 'set-signal'; rsrp?: number; rsrq?: number; rssi?: number; snr?: number };

const log = logger('duocell:sim:modem');

export class ModemSimulator extends EventEmitter {
  readonly cfg: Required<Omit<ModemSimConfig, 'pin'>> & { pin?: string };
  readonly at: PtyPort;
  readonly qmi: PtyPort;

  // SIM
  #pinVerified = false;
  pinRetriesLeft: number;
  pukRetriesLeft: number;
  // radio
  /** AT+CFUN / DMS operating mode (read and set by the QMI side too, sim-qmi.ts). */
  cfun = 1;
  #network: boolean;
  regStat = 0;
  signal: { rssi: number; rsrq: number; rsrp: number; snr: number };
  #cregMode = 0;
  #cgregMode = 0;
  #ceregMode = 0;
  #echo = true;
  #contexts = new Map<number, { type: string; apn: string }>();
  /** The context carried on the ECM/NCM netdev (AT-controlled data session), if active. */
  atDataCid: number | undefined;
  #atBuf = '';
  // QMI
  /** The QMI side (sim-qmi.ts): client ids, data sessions, the request dispatcher. */
  readonly #q = new SimQmi(this);
  #timers = new Set<NodeJS.Timeout>();
  /** Counters for tests: PIN attempts seen on either port. */
  pinAttempts = 0;
  /** A wedged modem: ports stay, nothing is answered. */
  hung = false;
  /** Link framing set over WDA (an EC25 boots in 802.3). */
  dataFormat: 'raw-ip' | '802-3' = '802-3';

  constructor(cfg: ModemSimConfig) {
    super();
    this.cfg = { ...DEFAULT_SIM_CONFIG, ...cfg } as ModemSimulator['cfg'];
    this.pinRetriesLeft = this.cfg.pinRetries;
    this.pukRetriesLeft = this.cfg.pukRetries;
    this.#network = this.cfg.network;
    this.signal = { ...this.cfg.signal };
    this.at = new PtyPort(cfg.atLink);
    this.qmi = new PtyPort(cfg.qmiLink);
    this.at.on('data', (d: Buffer) => this.#onAt(d));
    this.qmi.on('data', (d: Buffer) => this.#q.onData(d));
  }

  // ------------------------------------------------------------------------------------------
  // life

  async start(): Promise<void> {
    await this.#powerOn();
  }

  async stop(): Promise<void> {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    await Promise.all([this.at.vanish(), this.qmi.vanish()]);
  }

  get simLocked(): boolean {
    return this.cfg.pin !== undefined && !this.#pinVerified;
  }

  get pukRequired(): boolean {
    return this.pinRetriesLeft === 0;
  }

  get sessions(): readonly Session[] {
    return this.#q.sessions;
  }

  #later(ms: number, f: () => void): void {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      f();
    }, ms);
    this.#timers.add(t);
  }

  async #powerOn(): Promise<void> {
    await Promise.all([this.at.appear(), this.cfg.qmi === false ? undefined : this.qmi.appear()]);
    this.emit('ports', { up: true });
    this.#later(50, () => {
      this.#urc('RDY');
      this.#urc(`+CPIN: ${this.#cpinWord()}`);
      this.maybeRegister();
    });
  }

  /** Apply one scripted action. */
  async act(a: SimAction): Promise<void> {
    log.info({ action: a }, 'sim action');
    switch (a.action) {
      case 'register':
        this.#network = true;
        this.maybeRegister(0);
        break;
      case 'deregister':
      case 'no-service':
        this.#network = false;
        this.setReg(a.action === 'deregister' ? 2 : 0);
        break;
      case 'drop-data':
        this.#q.dropSessions('generic-no-service');
        break;
      case 'garbage': {
        const n = a.bytes ?? 64;
        const b = Buffer.alloc(n);
        for (let i = 0; i < n; i++) b[i] = randomInt(256);
        (a.port === 'qmi' ? this.qmi : this.at).write(b);
        break;
      }
      case 'vanish':
        await this.#vanish();
        break;
      case 'hang':
        this.hung = true;
        break;
      case 'unhang':
        this.hung = false;
        break;
      case 'appear':
        await this.#powerOn();
        break;
      case 'set-signal':
        this.signal = { ...this.signal, ...Object.fromEntries(Object.entries(a).filter(([k]) => k !== 'action')) };
        break;
    }
  }

  async #vanish(): Promise<void> {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#q.dropSessions('generic-unspecified', false);
    this.#atDataDown('vanished');
    this.regStat = 0;
    this.#pinVerified = false; // a modem reboot locks the SIM again
    this.dataFormat = '802-3';
    this.#q.reset();
    this.#cregMode = this.#cgregMode = this.#ceregMode = 0;
    this.#echo = true;
    this.#atBuf = '';
    await Promise.all([this.at.vanish(), this.qmi.vanish()]);
    this.emit('ports', { up: false });
  }

  // ------------------------------------------------------------------------------------------
  // registration

  maybeRegister(delay = this.cfg.registerDelayMs): void {
    if (this.simLocked || this.cfun !== 1) return;
    if (!this.#network) {
      this.setReg(2);
      return;
    }
    if (this.regStat === 1) return;
    if (this.regStat !== 2) this.setReg(2);
    this.#later(delay, () => {
      if (this.#network && !this.simLocked && this.cfun === 1) this.setReg(1);
    });
  }

  setReg(stat: number): void {
    if (stat === this.regStat) return;
    this.regStat = stat;
    if (stat !== 1) this.#q.dropSessions('generic-no-service');
    if (stat !== 1) this.#atDataDown('no service');
    this.emit('registration', { stat });
    const loc = stat === 1 ? `,"${this.cfg.tac.toString(16).toUpperCase()}","${this.cfg.cellId.toString(16).toUpperCase()}",7` : '';
    if (this.#ceregMode > 0) this.#urc(`+CEREG: ${stat}${this.#ceregMode >= 2 ? loc : ''}`);
    if (this.#cgregMode > 0) this.#urc(`+CGREG: ${stat}${this.#cgregMode >= 2 ? loc : ''}`);
    if (this.#cregMode > 0) this.#urc(`+CREG: ${stat}${this.#cregMode >= 2 ? loc : ''}`);
    if (this.cfg.nasIndications) this.#q.servingSystemChanged();
  }

  #atDataDown(reason: string): void {
    const cid = this.atDataCid;
    if (cid === undefined) return;
    this.atDataCid = undefined;
    this.emit('at-data', { up: false, cid, reason });
  }


  // ------------------------------------------------------------------------------------------
  // AT

  #urc(line: string): void {
    this.at.write(`\r\n${line}\r\n`);
  }

  #onAt(d: Buffer): void {
    if (this.hung) return;
    this.#atBuf += d.toString('latin1');
    if (this.#atBuf.length > 4096) this.#atBuf = this.#atBuf.slice(-4096);
    let i: number;
    while ((i = this.#atBuf.search(/[\r\n]/)) >= 0) {
      const line = this.#atBuf.slice(0, i);
      this.#atBuf = this.#atBuf.slice(i + 1);
      if (line.trim() === '') continue;
      if (this.#echo) this.at.write(`${line}\r`);
      const { lines, final } = this.#atCommand(line.trim());
      this.at.write(lines.map((l) => `\r\n${l}\r\n`).join('') + `\r\n${final}\r\n`);
    }
  }

  #cpinWord(): string {
    return this.pukRequired ? 'SIM PUK' : this.simLocked ? 'SIM PIN' : 'READY';
  }

  #regLine(cmd: string, n: number): string {
    const loc = this.regStat === 1 && n >= 2 ? `,"${this.cfg.tac.toString(16).toUpperCase()}","${this.cfg.cellId.toString(16).toUpperCase()}",7` : '';
    return `+${cmd}: ${n},${this.regStat}${loc}`;
  }

  #atCommand(raw: string): { lines: string[]; final: string } {
    const ok = (...lines: string[]): { lines: string[]; final: string } => ({ lines, final: 'OK' });
    const cme = (n: number): { lines: string[]; final: string } => ({ lines: [], final: `+CME ERROR: ${n}` });
    if (!/^AT/i.test(raw)) return { lines: [], final: 'ERROR' };
    const c = raw.slice(2);
    const u = c.toUpperCase();
    const reg = this.regStat === 1;
    let m: RegExpExecArray | null;
    if (u === '') return ok();
    if (u === 'E0' || u === 'E1') {
      this.#echo = u === 'E1';
      return ok();
    }
    if (u === 'I') return ok(this.cfg.manufacturer, this.cfg.model, `Revision: ${this.cfg.revision}`);
    if (u === '+CGMI') return ok(this.cfg.manufacturer);
    if (u === '+CGMM') return ok(this.cfg.model);
    if (u === '+CGMR') return ok(this.cfg.revision);
    if (u === '+CGSN' || u === '+GSN') return ok(this.cfg.imei);
    if (u === '+CPIN?') return ok(`+CPIN: ${this.#cpinWord()}`);
    if ((m = /^\+CPIN="?(\d{4,8})"?$/.exec(u))) {
      const r = this.verifyPin(m[1]!);
      if (r === 'ok') {
        this.#later(30, () => this.#urc('+CPIN: READY'));
        return ok();
      }
      return cme(r === 'blocked' ? 12 : r === 'not-locked' ? 3 : 16);
    }
    if (u === '+QPINC="SC"' || u === '+QPINC?') return ok(`+QPINC: "SC",${this.pinRetriesLeft},${this.pukRetriesLeft}`);
    // 27.007 §8.65: +CPINR: <code>,<retries>,<default_retries>
    if (u === '+CPINR="SIM PIN"' || u === '+CPINR') return ok(`+CPINR: "SIM PIN",${this.pinRetriesLeft},${this.cfg.pinRetries}`);
    if (u === '+CFUN?') return ok(`+CFUN: ${this.cfun}`);
    if ((m = /^\+CFUN=(\d)/.exec(u))) {
      this.cfun = Number(m[1]) === 1 ? 1 : Number(m[1]);
      if (this.cfun === 1) this.maybeRegister();
      else this.setReg(0);
      return ok();
    }
    if ((m = /^\+(CREG|CGREG|CEREG)\?$/.exec(u))) {
      const mode = m[1] === 'CREG' ? this.#cregMode : m[1] === 'CGREG' ? this.#cgregMode : this.#ceregMode;
      return ok(this.#regLine(m[1]!, mode));
    }
    if ((m = /^\+(CREG|CGREG|CEREG)=(\d)$/.exec(u))) {
      const n = Number(m[2]);
      if (n > 2) return cme(50);
      if (m[1] === 'CREG') this.#cregMode = n;
      else if (m[1] === 'CGREG') this.#cgregMode = n;
      else this.#ceregMode = n;
      return ok();
    }
    if (this.simLocked && /^\+(CSQ|CESQ|COPS\?|QENG|CGPADDR|CGDCONT)/.test(u)) return cme(this.pukRequired ? 12 : 11);
    if (u === '+CSQ') return ok(reg ? `+CSQ: ${Math.max(0, Math.min(31, Math.round((this.signal.rssi + 113) / 2)))},99` : '+CSQ: 99,99');
    if (u === '+CESQ') {
      const s = this.signal;
      return ok(reg ? `+CESQ: 99,99,255,255,${Math.round((s.rsrq + 20) * 2)},${s.rsrp + 141}` : '+CESQ: 99,99,255,255,255,255');
    }
    if (u === '+COPS?') return ok(reg ? `+COPS: 0,0,"${this.cfg.operator.name}",7` : '+COPS: 0');
    if (u === '+CGDCONT?') return ok(...[...this.#contexts].map(([cid, x]) => `+CGDCONT: ${cid},"${x.type}","${x.apn}","0.0.0.0",0,0,0,0`));
    if ((m = /^\+CGDCONT=(\d+),"([A-Z0-9]+)","([^"]*)"/i.exec(c))) {
      this.#contexts.set(Number(m[1]), { type: m[2]!.toUpperCase(), apn: m[3]! });
      return ok();
    }
    if ((m = /^\+CGPADDR(?:=(\d+))?$/.exec(u))) {
      const v4 = this.#q.sessions.find((s) => s.family === 4) ? this.cfg.ipv4.address : '0.0.0.0';
      const v6 = this.#q.sessions.find((s) => s.family === 6) ? this.cfg.ipv6.address : undefined;
      return ok(`+CGPADDR: ${m[1] ?? 1},"${v4}"${v6 ? `,"${v6}"` : ''}`);
    }
    // AT-controlled data on the ECM/NCM netdev. Quectel: AT+QNETDEVCTL=<op>,<cid>,<urc_en>, query
    // +QNETDEVCTL: <op>,<cid>,<urc_en>,<state>; 27.007 §10.1.10: AT+CGACT=<state>,<cid>, +CGACT: <cid>,<state>
    if ((m = /^\+(QNETDEVCTL|CGACT)=(\d),(\d+)(?:,(\d))?$/.exec(u))) {
      const on = Number(m[2]) === 1;
      const cid = Number(m[3]);
      if (!on) {
        if (this.atDataCid === cid) this.#atDataDown('deactivated');
        return ok();
      }
      if (!reg) return cme(30); // no network service
      if (!this.#contexts.has(cid)) return cme(50);
      if (this.atDataCid === cid) return ok();
      this.atDataCid = cid;
      this.#later(20, () => this.emit('at-data', { up: true, cid, apn: this.#contexts.get(cid)?.apn ?? '' }));
      return ok();
    }
    if (u === '+QNETDEVCTL?') return ok(`+QNETDEVCTL: ${this.atDataCid === undefined ? 0 : 1},${this.atDataCid ?? 1},1,${this.atDataCid === undefined ? 0 : 1}`);
    if (u === '+CGACT?') return ok(...[...this.#contexts.keys()].map((cid) => `+CGACT: ${cid},${this.atDataCid === cid ? 1 : 0}`));
    if (/^\+CGAUTH=/.test(u)) return ok();
    if (u === '+QENG="SERVINGCELL"') {
      if (!reg) return ok('+QENG: "servingcell","SEARCH"');
      const s = this.signal;
      const { mcc, mnc } = this.cfg.operator;
      return ok(
        `+QENG: "servingcell","NOCONN","LTE","FDD",${mcc},${String(mnc).padStart(2, '0')},${this.cfg.cellId.toString(16).toUpperCase()},123,1300,${this.cfg.band},5,5,${this.cfg.tac.toString(16).toUpperCase()},${s.rsrp},${s.rsrq},${s.rssi},${Math.round((s.snr / 10 + 20) * 5)},9,-,30`,
      );
    }
    if (/^\+QCFG=/.test(u) || u === '+CMEE=1' || u === '+CMEE=2' || u === 'V1' || u === 'Q0') return ok();
    return { lines: [], final: 'ERROR' };
  }

  verifyPin(pin: string): 'ok' | 'wrong' | 'blocked' | 'not-locked' {
    this.pinAttempts++;
    if (this.pukRequired) return 'blocked';
    if (!this.simLocked) return 'not-locked';
    if (pin === this.cfg.pin) {
      this.#pinVerified = true;
      this.pinRetriesLeft = this.cfg.pinRetries;
      this.#later(10, () => this.maybeRegister());
      return 'ok';
    }
    this.pinRetriesLeft = Math.max(0, this.pinRetriesLeft - 1);
    return this.pinRetriesLeft === 0 ? 'blocked' : 'wrong';
  }

}

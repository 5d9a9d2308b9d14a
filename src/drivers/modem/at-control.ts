import { DuocellError, toDuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import { parseCops, parseRegistration } from '../../protocols/at/parsers.js';
import type { ModemFamily } from '../../protocols/at/vendors.js';
import { AtClient, type AtUrc } from './at.js';
import { identifyModem, readServingCell } from './at-family.js';
import { AtSimCard } from './at-sim-card.js';
import { answersAt, candidatePorts, openCandidate, type ControlHost, type ControlOptions, type ModemControl, type SimUnit } from './control.js';
import type { RegistrationInfo } from './types.js';

const log = logger('duocell:modem:at-only');

const PS_REG = new Set(['+CEREG', '+CGREG', '+C5GREG']);
const REG_URCS = new Set([...PS_REG, '+CREG']);

/**
 * An AT-only modem (`modem.control: "at"`): everything over one AT port; the data path is an
 * ECM/NCM USB netdev configured from a DHCP lease (AtDataSession in at-data.ts).
 *
 *   probing:    open each candidate, "AT" ×2, ATE0, AT+CMEE=1,
 *               identify (AT+CGMI/CGMM/CGMR/CGSN → family), AT+CPIN? (at-sim-card.ts)
 *   sim-ready:  AT+CFUN=1 if needed; AT+CEREG=2, AT+CGREG=2, AT+CREG=2 (URCs); AT+COPS=3,0
 *   searching:  AT+CEREG? / AT+CGREG? / AT+CREG? every poll (URCs act at once); AT+COPS?
 *   signal:     the family's serving-cell query (AT!GSTATUS?, AT+CPSI?, AT#RFSTS, AT+QENG, AT+CESQ)
 *   any loss of the AT port (closed, vanished, wedged past resync) is a lost port
 */
export class AtControl implements ModemControl {
  readonly kind = 'at';
  readonly sim: SimUnit;
  #at: AtClient | undefined;
  #family: ModemFamily = 'generic';
  /** Last registration stat per command (+CEREG, +CGREG, +C5GREG, +CREG). */
  readonly #regBy = new Map<string, boolean>();
  /** Registration URCs seen: a poll's answers are older than a URC that arrived during it. */
  #regUrcs = 0;

  constructor(
    readonly o: ControlOptions,
    readonly host: ControlHost,
  ) {
    this.sim = new AtSimCard(() => this.#a(), () => this.#family, o.minPinRetries, o.pin);
  }

  get attached(): boolean {
    return this.#at !== undefined;
  }

  qmi(): undefined {
    return undefined;
  }

  at(): AtClient | undefined {
    return this.#at;
  }

  family(): ModemFamily {
    return this.#family;
  }

  #a(): AtClient {
    if (!this.#at) throw new DuocellError('DC_MODEM_CLOSED', 'no AT port');
    return this.#at;
  }

  async probe(): Promise<void> {
    const ports = await candidatePorts(this.o);
    const tried: string[] = [];
    for (const path of ports) {
      const t = await openCandidate(this.o, path, tried);
      if (t === undefined) continue;
      const c = new AtClient(t);
      if (await answersAt(c, this.o.probeTimeoutMs)) {
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

  #attach(at: AtClient): void {
    this.#at = at;
    at.defaultTimeoutMs = this.o.requestTimeoutMs;
    const lost = (err?: DuocellError): void => {
      if (!this.host.running() || this.host.portLostPending() || this.#at !== at) return;
      this.host.portLost(err ?? new DuocellError('DC_MODEM_PORT', `${at.transport.path}: AT port closed`));
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
    this.host.radio.setInfo({
      control: 'at',
      atPort: at.transport.path,
      family: id.family,
      ...(id.manufacturer === undefined ? {} : { manufacturer: id.manufacturer }),
      ...(id.model === undefined ? {} : { model: id.model }),
      ...(id.revision === undefined ? {} : { revision: id.revision }),
      ...(id.imei === undefined ? {} : { imei: id.imei }),
    });
    log.info(this.host.radio.info, 'AT-only modem found');
  }

  async closePorts(): Promise<void> {
    const a = this.#at;
    this.#at = undefined;
    this.host.radio.portsClosed();
    this.#regBy.clear();
    await a?.close().catch(() => undefined);
  }

  async online(): Promise<void> {
    const at = this.#a();
    const cfun = await at.text('AT+CFUN?').catch(() => '');
    if (!/\+CFUN:\s*1\b/.test(cfun)) await at.command('AT+CFUN=1', { timeoutMs: 15_000 });
    for (const c of ['AT+CEREG=2', 'AT+CGREG=2', 'AT+CREG=2']) await at.command(c).catch(() => undefined);
    await at.command('AT+COPS=3,0').catch(() => undefined); // long alphanumeric operator names
  }

  /** Registered on any packet-switched domain, else on circuit-switched (+CREG) alone. */
  #regNow(): boolean {
    const ps = [...this.#regBy].filter(([k]) => PS_REG.has(k));
    if (ps.length > 0) return ps.some(([, v]) => v);
    return this.#regBy.get('+CREG') ?? false;
  }

  async pollRegistration(): Promise<void> {
    const at = this.#a();
    const urcs = this.#regUrcs;
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
    // A registration URC during the poll (the AT+COPS? round trip is the long one) is newer than
    // the poll's answers: a loss it reported must not be undone by the stale "registered" (seen
    // under load: the manager retried the data session against "+CME ERROR: 30" for good).
    if (urcs !== this.#regUrcs && last.registered && !this.#regNow()) return;
    const info: RegistrationInfo = {
      registered: last.registered,
      state: last.state.toLowerCase(),
      ...(operator ? { operator } : {}),
      ...(last.lacOrTac !== 0 ? { lacOrTac: last.lacOrTac } : {}),
      ...(last.ci !== 0 ? { cellId: last.ci } : {}),
      accessTech: act,
      source: 'at',
    };
    this.host.radio.setRegistration(info, 'AT poll');
  }

  #onUrc(u: AtUrc): void {
    if (!REG_URCS.has(u.name)) {
      this.host.dataUrc(u);
      return;
    }
    let r: ReturnType<typeof parseRegistration>;
    try {
      r = parseRegistration(u.line);
    } catch (e) {
      log.debug({ line: u.line, err: (e as Error).message }, 'unparsable registration URC');
      return;
    }
    const radio = this.host.radio;
    this.#regUrcs++;
    this.#regBy.set(u.name, r.registered);
    const now = this.#regNow();
    if (!now && radio.registered) radio.setRegistration({ registered: false, state: r.state.toLowerCase(), accessTech: r.accessTech.toLowerCase(), source: 'at' }, `${u.name} URC`);
    else if (now && !radio.registered) radio.events.poke(); // confirmed (with the operator) by the next poll
  }

  async refreshSignal(): Promise<void> {
    const at = this.#at;
    if (!at || at.closed) return;
    const radio = this.host.radio;
    const gen = radio.generation;
    const r = await readServingCell(at, this.#family);
    if (r === undefined || gen !== radio.generation) return;
    radio.servingCell = r.report;
    if (r.signal !== undefined) radio.setSignal(r.signal);
  }
}

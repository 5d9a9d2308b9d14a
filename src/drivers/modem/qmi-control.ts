import fsp from 'node:fs/promises';
import { DuocellError, toDuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import { parseRegistration } from '../../protocols/at/parsers.js';
import type { ModemFamily } from '../../protocols/at/vendors.js';
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
import { identifyModem, readServingCell } from './at-family.js';
import { answersAt, candidatePorts, openCandidate, type ControlHost, type ControlOptions, type ModemControl, type SimUnit } from './control.js';
import { QmiClient } from './qmi.js';
import type { ModemInfo } from './radio-state.js';
import { SimCard } from './sim-card.js';
import type { RegistrationInfo, SignalInfo } from './types.js';

const log = logger('duocell:modem');

export interface QmiControlOptions extends ControlOptions {
  readonly netInterface?: string;
  /** Link framing asked of the modem (WDA) and, for raw-ip without a data interface, of qmi_wwan. */
  readonly dataFormat: 'raw-ip' | '802-3' | 'keep';
  readonly sysfsRoot: string;
  /** True when a data interface (netif.ts) configures the netdev (it sets raw_ip itself). */
  readonly hasNetif: boolean;
}

/**
 * A QMI modem with an optional AT port. Port probing (each candidate path, in order):
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
 * Registration and signal come over QMI NAS (indications act at once, polls are the fall-back);
 * an AT +CEREG URC only reports a loss sooner. Losing the AT port while QMI is healthy only
 * degrades the modem (info.atLost; no band, no URCs); it is looked for again while connected.
 */
export class QmiControl implements ModemControl {
  readonly kind = 'qmi';
  readonly sim: SimUnit;
  #qmi: QmiClient | undefined;
  #at: AtClient | undefined;
  #family: ModemFamily = 'generic';

  constructor(
    readonly o: QmiControlOptions,
    readonly host: ControlHost,
  ) {
    this.sim = new SimCard(() => this.#q(), o.minPinRetries, o.pin);
  }

  get attached(): boolean {
    return this.#qmi !== undefined;
  }

  qmi(): QmiClient | undefined {
    return this.#qmi;
  }

  at(): AtClient | undefined {
    return this.#at;
  }

  family(): ModemFamily {
    return this.#family;
  }

  #q(): QmiClient {
    if (!this.#qmi) throw new DuocellError('DC_MODEM_CLOSED', 'no QMI port');
    return this.#qmi;
  }

  // ------------------------------------------------------------------------------------------
  // probing

  async probe(): Promise<void> {
    let qmi: QmiClient | undefined;
    let at: AtClient | undefined;
    const tried: string[] = [];
    const ports = await candidatePorts(this.o);
    for (const path of ports) {
      if (qmi && at) break;
      const t = await openCandidate(this.o, path, tried);
      if (t === undefined) continue;
      const qmiFirst = /cdc-wdm|qmi/i.test(path);
      const order: ('qmi' | 'at')[] = qmiFirst ? ['qmi', 'at'] : ['at', 'qmi'];
      let used = false;
      for (const kind of order) {
        if (kind === 'qmi' && !qmi) {
          const c = new QmiClient(t);
          try {
            await c.sync(this.o.probeTimeoutMs);
            qmi = c;
            used = true;
            break;
          } catch {
            c.detach();
          }
        } else if (kind === 'at' && !at) {
          const c = new AtClient(t);
          if (await answersAt(c, this.o.probeTimeoutMs)) {
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
      if (at) tried.push(`${at.transport.path}: answers AT, not QMI (set modem.control to "at" for an AT-only module)`);
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
    const full: ModemInfo = {
      ...info,
      ...(model === undefined ? {} : { model }),
      ...(revision === undefined ? {} : { revision }),
      ...(ids.imei === undefined ? {} : { imei: ids.imei }),
    };
    this.host.radio.info = full;
    // which family's serving-cell command gives the band
    if (at) this.#family = (await identifyModem(at).catch(() => ({ family: 'generic' as const }))).family;
    this.host.radio.setInfo(full);
    log.info(full, 'modem ports found');
  }

  #attach(qmi: QmiClient, at: AtClient | undefined): void {
    this.#qmi = qmi;
    this.#at = at;
    qmi.defaultTimeoutMs = this.o.requestTimeoutMs;
    if (at) at.defaultTimeoutMs = this.o.requestTimeoutMs;
    qmi.on('close', (err?: DuocellError) => {
      if (!this.host.running() || this.host.portLostPending()) return;
      this.host.portLost(err ?? new DuocellError('DC_MODEM_PORT', 'QMI port closed'));
    });
    qmi.on('indication', (m: QmiMessage) => this.#onIndication(m));
    if (at) this.#attachAt(at);
  }

  /**
   * The AT port is optional: losing it (vanished, closed, wedged past resynchronisation) while
   * QMI is healthy only degrades the modem (a warning in `info.atLost`, no band, no URCs); the
   * data session stays. The port is tried again every few polls while connected.
   */
  #attachAt(at: AtClient): void {
    const radio = this.host.radio;
    this.#at = at;
    at.defaultTimeoutMs = this.o.requestTimeoutMs;
    const drop = (err: DuocellError): void => {
      if (this.#at !== at) return;
      this.#at = undefined;
      void at.close().catch(() => undefined);
      if (!this.host.running() || this.host.portLostPending()) return;
      if (radio.signal?.band !== undefined) {
        const { band: _b, ...rest } = radio.signal;
        radio.setSignal(rest);
      }
      const { atPort: _p, ...info } = radio.info;
      radio.setInfo({ ...info, atLost: { code: err.code, message: err.message } });
      log.warn({ code: err.code, port: at.transport.path }, `AT port lost, QMI healthy: degraded (no band, no URCs), data session kept: ${err.message}`);
    };
    at.on('close', (err?: DuocellError) => drop(err ?? new DuocellError('DC_MODEM_PORT', `${at.transport.path}: AT port closed`)));
    at.on('desync', (err: DuocellError) => drop(err));
    at.on('urc', (u: AtUrc) => this.#onUrc(u));
    if (radio.info.atLost !== undefined) {
      const { atLost: _l, ...info } = radio.info;
      radio.setInfo({ ...info, atPort: at.transport.path });
      log.info({ port: at.transport.path }, 'AT port back');
    }
    void at.command('AT+CEREG=2').catch(() => undefined);
  }

  /** While degraded: look for the AT port again (it may have come back after a re-plug). */
  async connectedPoll(polls: number): Promise<void> {
    if (polls % 3 !== 0 || this.host.radio.info.atLost === undefined) return;
    if (this.#at !== undefined || this.#qmi === undefined) return;
    const gen = this.host.radio.generation;
    const ports = await candidatePorts(this.o);
    for (const path of ports) {
      if (this.#qmi === undefined || path === this.#qmi.transport.path) continue;
      const t = await openCandidate(this.o, path, []);
      if (t === undefined) continue;
      const c = new AtClient(t);
      if (await answersAt(c, this.o.probeTimeoutMs)) {
        if (this.#qmi === undefined || !this.host.running() || gen !== this.host.radio.generation) {
          await c.close().catch(() => undefined);
          return;
        }
        this.#attachAt(c);
        return;
      }
      await c.close().catch(() => undefined);
    }
  }

  async closePorts(): Promise<void> {
    const q = this.#qmi;
    const a = this.#at;
    this.#qmi = undefined;
    this.#at = undefined;
    this.host.radio.portsClosed();
    await Promise.all([q?.close().catch(() => undefined), a?.close().catch(() => undefined)]);
  }

  // ------------------------------------------------------------------------------------------
  // radio, registration, signal

  /** Radio online, NAS indications on, link framing agreed. */
  async online(): Promise<void> {
    const q = this.#q();
    const mode = await q.ask('dms.getOperatingMode', decodeDmsOperatingMode).catch(() => undefined);
    if (mode !== undefined && mode !== 0) await q.call('dms.setOperatingMode', { mode: 'online' });
    await q.call('nas.registerIndications', { serving_system_events: 1, signal_info: 1 }).catch(() => undefined);
    await this.#dataFormat();
  }

  /** Agree the link framing with the modem and, for raw IP, with the qmi_wwan driver. */
  async #dataFormat(): Promise<void> {
    const want = this.o.dataFormat;
    if (want === 'keep') return;
    let got: number | undefined;
    try {
      got = (await this.#q().ask('wda.setDataFormat', decodeWdaDataFormat, { link_layer_protocol: want }, { timeoutMs: 3000 })).linkLayer;
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'WDA Set Data Format refused: keeping the modem framing');
      return;
    }
    const raw = got === undefined ? want === 'raw-ip' : got === DATA_FORMAT['raw-ip'];
    this.host.radio.info = { ...this.host.radio.info, dataFormat: raw ? 'raw-ip' : '802-3' };
    const ifname = this.o.netInterface;
    if (!ifname || this.o.hasNetif) return; // the data interface sets raw_ip itself
    const file = `${this.o.sysfsRoot}/class/net/${ifname}/qmi/raw_ip`;
    try {
      const cur = (await fsp.readFile(file, 'utf8')).trim();
      const next = raw ? 'Y' : 'N';
      if (cur !== next) await fsp.writeFile(file, next);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') log.warn({ file, err: (e as Error).message }, 'could not set qmi_wwan raw_ip (is the interface down?)');
    }
  }

  async pollRegistration(): Promise<void> {
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
    this.host.radio.setRegistration(info, `QMI serving system (${how})`);
  }

  #onIndication(m: QmiMessage): void {
    try {
      if (m.key === 'nas.servingSystemIndication') this.#applyServingSystem(decodeNasServingSystem(m.frame.tlvs, true), 'indication');
      else if (m.key === 'nas.signalInfoIndication') this.#applySignal(decodeNasSignalInfo(m.frame.tlvs, true));
      else this.host.dataIndication(m);
    } catch (e) {
      const err = toDuocellError(e);
      log.warn({ code: err.code, key: m.key, err: err.message }, 'QMI indication dropped');
    }
  }

  #onUrc(u: AtUrc): void {
    const radio = this.host.radio;
    if (u.name === '+CEREG' || u.name === '+CREG' || u.name === '+CGREG' || u.name === '+C5GREG') {
      try {
        const r = parseRegistration(u.line);
        // AT only reports losses faster; gains are confirmed over QMI (which also gives the PLMN)
        if (!r.registered && radio.registered)
          radio.setRegistration({ registered: false, state: r.state.toLowerCase(), accessTech: r.accessTech.toLowerCase(), source: 'at' }, `${u.name} URC`);
        else if (r.registered && !radio.registered) radio.events.poke();
      } catch (e) {
        log.debug({ line: u.line, err: (e as Error).message }, 'unparsable registration URC');
      }
      return;
    }
    this.host.dataUrc(u);
  }

  #applySignal(v: NasSignalInfo): void {
    const radio = this.host.radio;
    let s: SignalInfo | undefined;
    if (v.lte) s = { rat: 'lte', rssi: v.lte.rssi, rsrq: v.lte.rsrq, rsrp: v.lte.rsrp, snr: v.lte.snrTenths / 10 };
    if (v.nr5g && !v.lte) s = { rat: '5gnr', rsrp: v.nr5g.rsrp, snr: v.nr5g.snrTenths / 10 };
    if (!s) return;
    if (radio.signal?.band !== undefined) s = { ...s, band: radio.signal.band };
    radio.setSignal(s);
  }

  async refreshSignal(): Promise<void> {
    const radio = this.host.radio;
    // a refresh still in flight when the modem vanishes must not put its values back
    const gen = radio.generation;
    try {
      const v = await this.#q().ask('nas.getSignalInfo', (t) => decodeNasSignalInfo(t), {}, { timeoutMs: 2000 });
      // the family's serving-cell query gives the band
      if (this.#at && !this.#at.closed) {
        const cell = await readServingCell(this.#at, this.#family);
        if (cell?.signal?.band !== undefined && gen === radio.generation) radio.signal = { ...(radio.signal ?? { rat: cell.signal.rat }), band: cell.signal.band };
      }
      if (gen !== radio.generation) return;
      this.#applySignal(v);
    } catch (e) {
      log.debug({ err: (e as Error).message }, 'signal refresh failed');
    }
  }
}

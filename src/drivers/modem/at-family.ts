import { logger } from '../../core/logger.js';
import { DuocellError } from '../../core/errors.js';
import { primarySignal, type ServingCellReport } from '../../protocols/at/cells.js';
import { parseCpinState, pinDecision, type PinDecision, type SimPinState } from '../../protocols/at/threegpp.js';
import { modemFamily, servingCellQuery, type ModemFamily } from '../../protocols/at/vendors.js';
import type { AtClient } from './at.js';
import type { SignalInfo } from './manager.js';

/**
 * Modem-family knowledge over an AT port, used by both managers (the QMI one for band and
 * serving cell; the AT-only one for everything): the pure parsers in protocols/at/ wired to
 * the port. Each function sends at most a few commands through the AtClient queue (so the
 * service stays the one writer) and never throws on what a modem answers, except where said.
 *
 *   identify:      AT+CGMI, AT+CGMM, AT+CGMR, AT+CGSN  (ATI as the fall-back for the maker)
 *                    └► modemFamily(manufacturer, model)  → quectel | quectel-ec2x | sierra | simcom | telit | generic
 *   serving cell:  SERVING_CELL_QUERIES[family]           → Sierra AT!GSTATUS?, SIMCom AT+CPSI?,
 *                                                            Telit AT#RFSTS, Quectel AT+QENG="servingcell",
 *                                                            generic AT+CESQ
 *   SIM:           AT+CPIN? → parseCpinState; attempts from AT+QPINC="SC" (Quectel) or
 *                  AT+CPINR="SIM PIN" (27.007 §8.65); pinDecision() decides.
 */

const log = logger('duocell:modem:family');

export interface ModemIdentity {
  readonly family: ModemFamily;
  readonly manufacturer?: string;
  readonly model?: string;
  readonly revision?: string;
  readonly imei?: string;
}

/** The first non-empty line of a reply without an echo of the command's own prefix. */
function firstLine(lines: readonly string[], prefix?: string): string | undefined {
  for (const l of lines) {
    let s = l.trim();
    if (prefix && s.toUpperCase().startsWith(prefix)) s = s.slice(prefix.length).replace(/^:\s*/, '').trim();
    if (s !== '') return s.replace(/^"|"$/g, '').slice(0, 64);
  }
  return undefined;
}

export async function identifyModem(at: AtClient, timeoutMs = 2000): Promise<ModemIdentity> {
  const ask = async (cmd: string, prefix?: string): Promise<string | undefined> => {
    try {
      return firstLine((await at.command(cmd, { timeoutMs })).lines, prefix);
    } catch {
      return undefined;
    }
  };
  let manufacturer = await ask('AT+CGMI', '+CGMI');
  if (manufacturer === undefined) manufacturer = await ask('ATI');
  const model = await ask('AT+CGMM', '+CGMM');
  const revision = await ask('AT+CGMR', '+CGMR');
  const imeiRaw = await ask('AT+CGSN', '+CGSN');
  const imei = imeiRaw !== undefined && /^\d{14,16}$/.test(imeiRaw) ? imeiRaw : undefined;
  const family = modemFamily(manufacturer ?? '', model ?? '');
  log.info({ family, manufacturer, model }, 'modem family identified');
  return {
    family,
    ...(manufacturer === undefined ? {} : { manufacturer }),
    ...(model === undefined ? {} : { model }),
    ...(revision === undefined ? {} : { revision }),
    ...(imei === undefined ? {} : { imei }),
  };
}

export interface ServingCellReading {
  readonly report: ServingCellReport;
  /** The manager's SignalInfo from the primary cell (band as a number when it has one). */
  readonly signal?: SignalInfo;
}

/** Ask the family's serving-cell command; undefined when it fails or its reply does not parse. */
export async function readServingCell(at: AtClient, family: ModemFamily): Promise<ServingCellReading | undefined> {
  const q = servingCellQuery(family);
  let text: string;
  try {
    text = await at.text(q.command, { timeoutMs: q.timeoutMs });
  } catch (e) {
    log.debug({ family, command: q.command, err: (e as Error).message }, 'serving-cell query failed');
    return undefined;
  }
  const r = q.parse(text);
  if (!r.ok) {
    log.debug({ family, command: q.command, reason: r.reason }, r.message);
    return undefined;
  }
  const p = primarySignal(r.value);
  if (p === undefined) return { report: r.value };
  const signal: SignalInfo = {
    rat: p.rat,
    ...(p.rssi === undefined ? {} : { rssi: p.rssi }),
    ...(p.rsrp === undefined ? {} : { rsrp: p.rsrp }),
    ...(p.rsrq === undefined ? {} : { rsrq: p.rsrq }),
    ...(p.snr === undefined ? {} : { snr: p.snr }),
    ...(p.bandNumber === undefined ? {} : { band: p.bandNumber }),
  };
  return { report: r.value, signal };
}

export interface SimReading {
  readonly state: SimPinState;
  readonly retriesLeft?: number;
  readonly decision: PinDecision;
}

/** PIN1 attempts left: Quectel AT+QPINC="SC", else 27.007 AT+CPINR="SIM PIN". */
export async function pinRetries(at: AtClient, family: ModemFamily): Promise<number | undefined> {
  const tries: [string, RegExp][] =
    family === 'quectel' || family === 'quectel-ec2x'
      ? [['AT+QPINC="SC"', /^\+QPINC:\s*"SC",\s*(\d+),/i], ['AT+CPINR="SIM PIN"', /^\+CPINR:\s*"?SIM PIN"?,\s*(\d+)/i]]
      : [['AT+CPINR="SIM PIN"', /^\+CPINR:\s*"?SIM PIN"?,\s*(\d+)/i]];
  for (const [cmd, re] of tries) {
    try {
      const r = await at.command(cmd, { timeoutMs: 2000 });
      for (const l of r.lines) {
        const m = re.exec(l.trim());
        if (m) return Number(m[1]);
      }
    } catch {
      /* next form */
    }
  }
  return undefined;
}

/**
 * The SIM as AT+CPIN? tells it, with the PIN decision (PIN safety: see threegpp.pinDecision).
 * A +CME ERROR answer is parsed too (e.g. CME 10: not inserted). Throws DC_MODEM_SIM when the
 * reply says nothing of the SIM.
 */
export async function readSim(at: AtClient, family: ModemFamily, policy: { pinConfigured: boolean; alreadySent: boolean; minRetries: number }): Promise<SimReading> {
  let text: string;
  try {
    text = await at.text('AT+CPIN?', { timeoutMs: 3000 });
  } catch (e) {
    const d = e as DuocellError;
    if (d.code === 'DC_AT_CME_ERROR') text = `+CME ERROR: ${String(d.detail.cme)}`;
    else throw e;
  }
  const r = parseCpinState(text);
  if (!r.ok) throw new DuocellError('DC_MODEM_SIM', `the SIM state is unreadable: ${r.message}`, { origin: 'device', reason: r.reason });
  const retriesLeft = r.value.kind === 'pin' ? await pinRetries(at, family) : undefined;
  const decision = pinDecision(r.value, { ...policy, ...(retriesLeft === undefined ? {} : { retriesLeft }) });
  return { state: r.value, ...(retriesLeft === undefined ? {} : { retriesLeft }), decision };
}

import { unwrap } from './result.js';
import { afterPrefix, dec, fail, hexLead, lines, opt, splitFields, unquote } from './parse-util.js';
import {
  REGISTRATION_STATES,
  accessTechName,
  isRegistered,
  parseCereg,
  parseCesqExtended,
  type PsmTimer,
  type RegistrationState,
} from './threegpp.js';

/**
 * Pure parsers, one per AT command reply (27.007 unless noted). Each takes the reply text (one
 * line or several, CR/LF allowed, the response prefix present or not where noted) and returns a
 * typed value, or throws DC_AT_PARSE saying what did not match. Names of enum values follow
 * ModemManager (MMModem3gppRegistrationState, MMModemAccessTechnology, MMModemLock) so fixtures
 * from its tests compare directly.
 */

// ---------------------------------------------------------------------------------------------
// Registration: +CREG / +CGREG / +CEREG / +C5GREG, solicited and unsolicited

// the registration words live in threegpp.ts (one word, one type); re-exported here
export { REGISTRATION_STATES, ACCESS_TECH, accessTechName, isRegistered, type RegistrationState } from './threegpp.js';

export type RegistrationCommand = 'CREG' | 'CGREG' | 'CEREG' | 'C5GREG';

export interface Registration {
  readonly command: RegistrationCommand;
  /** The <n> (URC mode) field when the reply carried it (solicited form). */
  readonly n?: number;
  readonly stat: number;
  readonly state: RegistrationState;
  /** LAC for CREG/CGREG, TAC for CEREG/C5GREG; 0 when absent. */
  readonly lacOrTac: number;
  readonly ci: number;
  readonly act?: number;
  readonly accessTech: string;
  readonly rac?: number;
  /**
   * Which documented form matched, numbered like ModemManager's regex table (0-based):
   * 0 stat · 1 n,stat · 2 stat,lac,ci · 3 n,stat,lac,ci · 4 same with leading zeros ·
   * 5 stat,lac,ci,AcT · 6 same with leading zeros · 7 n,stat,lac,ci,AcT · 8 n,stat,lac,ci,AcT,x
   * (Samsung) · 9 stat,lac,ci,AcT,rac (CGREG) · 10 stat,tac,rac,ci,AcT (CEREG) ·
   * 11 n,stat,tac,rac,ci,AcT (CEREG) · 12 stat,tac,ci,AcT,nssai_len,nssai (C5GREG) · 13 n,… ·
   * 14 the 27.007 CEREG forms with reject cause and PSM timers (n=3..5; see threegpp.parseCereg)
   */
  readonly form: number;
  /** True when the form could only be the unsolicited one (no <n>). */
  readonly unsolicited: boolean;
  readonly registered: boolean;
  /** Form 14 (27.007 +CEREG, n=3..5) only: the EMM reject cause and the PSM timers granted. */
  readonly causeType?: number;
  readonly rejectCause?: number;
  readonly activeTime?: PsmTimer;
  readonly periodicTau?: PsmTimer;
}

/** Form 14: the 27.007 +CEREG forms with <cause_type>,<reject_cause>[,<Active-Time>,<Periodic-TAU>]. */
function fromCereg(line: string): Registration {
  const r = unwrap(parseCereg(line));
  return {
    command: 'CEREG',
    ...(r.n === undefined ? {} : { n: r.n }),
    stat: r.stat,
    state: r.state,
    lacOrTac: r.tac ?? 0,
    ci: r.ci ?? 0,
    ...(r.act === undefined ? {} : { act: r.act }),
    accessTech: r.accessTech,
    form: 14,
    unsolicited: r.unsolicited,
    registered: r.registered,
    ...(r.causeType === undefined ? {} : { causeType: r.causeType }),
    ...(r.rejectCause === undefined ? {} : { rejectCause: r.rejectCause }),
    ...(r.activeTime === undefined ? {} : { activeTime: r.activeTime }),
    ...(r.periodicTau === undefined ? {} : { periodicTau: r.periodicTau }),
  };
}

const REG_RE = /^\+(CREG|CGREG|CEREG|C5GREG):\s*(.*)$/;

/** An unquoted 1–2 digit field (possibly with leading zeros) that can be an <n> or <stat>. */
function smallDec(s: string | undefined): boolean {
  return s !== undefined && /^0*\d{1,2}$/.test(s.trim()) && Number(s.trim()) <= 11;
}

function hasLeadingZeros(s: string | undefined): boolean {
  const t = (s ?? '').trim();
  return t.length > 1 && t.startsWith('0');
}

/** Parses the first registration line (+CREG/+CGREG/+CEREG/+C5GREG) in `text`. */
export function parseRegistration(text: string): Registration {
  let m: RegExpExecArray | null = null;
  for (const l of lines(text)) if ((m = REG_RE.exec(l))) break;
  if (!m) fail('+CREG', text);
  const command = m[1] as RegistrationCommand;
  const f = splitFields(m[2]!);
  const cereg = command === 'CEREG';
  const c5g = command === 'C5GREG';
  let form: number;
  let iN = -1;
  let iStat = 0;
  let iLac = -1;
  let iCi = -1;
  let iAct = -1;
  let iRac = -1;
  // the second field is a <stat> (so the first is <n>) when it is a small unquoted number
  const secondIsStat = smallDec(f[1]);
  // 27.007 +CEREG with <cause_type>,<reject_cause>[,<Active-Time>,<Periodic-TAU>] (n=3..5):
  // n,stat + 5 or 7 (LARA-R6: 8) fields, or the URC's stat + 5 or 7
  if (cereg && (f.length >= 7 || (f.length === 6 && !secondIsStat))) return fromCereg(m[0]!);
  switch (f.length) {
    case 1:
      form = 0;
      break;
    case 2:
      form = 1;
      iN = 0;
      iStat = 1;
      break;
    case 3:
      form = 2;
      iLac = 1;
      iCi = 2;
      break;
    case 4:
      if (secondIsStat) {
        form = hasLeadingZeros(f[0]) || hasLeadingZeros(f[1]) ? 4 : 3;
        iN = 0;
        iStat = 1;
        iLac = 2;
        iCi = 3;
      } else {
        form = hasLeadingZeros(f[0]) ? 6 : 5;
        iLac = 1;
        iCi = 2;
        iAct = 3;
      }
      break;
    case 5:
      if (secondIsStat) {
        form = 7;
        iN = 0;
        iStat = 1;
        iLac = 2;
        iCi = 3;
        iAct = 4;
      } else if (cereg) {
        form = 10;
        iLac = 1;
        iRac = 2;
        iCi = 3;
        iAct = 4;
      } else {
        form = 9;
        iLac = 1;
        iCi = 2;
        iAct = 3;
        iRac = 4;
      }
      break;
    case 6:
      if (c5g) {
        form = 12;
        iLac = 1;
        iCi = 2;
        iAct = 3;
      } else if (cereg) {
        form = 11;
        iN = 0;
        iStat = 1;
        iLac = 2;
        iRac = 3;
        iCi = 4;
        iAct = 5;
      } else {
        form = 8;
        iN = 0;
        iStat = 1;
        iLac = 2;
        iCi = 3;
        iAct = 4;
      }
      break;
    case 7:
      if (!c5g) fail(`+${command}`, text);
      form = 13;
      iN = 0;
      iStat = 1;
      iLac = 2;
      iCi = 3;
      iAct = 4;
      break;
    default:
      return fail(`+${command}`, text);
  }
  const stat = dec(f[iStat], `+${command} <stat>`, text);
  if (stat < 0 || stat >= REGISTRATION_STATES.length) fail(`+${command} <stat> out of range`, text);
  const actField = iAct >= 0 ? f[iAct]!.trim() : '';
  const act = /^\d{1,3}$/.test(unquote(actField)) ? Number(unquote(actField)) : undefined;
  const n = iN >= 0 ? dec(f[iN], `+${command} <n>`, text) : undefined;
  const rac = iRac >= 0 ? hexLead(f[iRac]) : undefined;
  return {
    command,
    ...(n === undefined ? {} : { n }),
    stat,
    state: REGISTRATION_STATES[stat]!,
    lacOrTac: iLac >= 0 ? hexLead(f[iLac]) : 0,
    ci: iCi >= 0 ? hexLead(f[iCi]) : 0,
    ...(act === undefined ? {} : { act }),
    accessTech: accessTechName(act),
    ...(rac === undefined ? {} : { rac }),
    form,
    unsolicited: iN < 0,
    registered: isRegistered(stat),
  };
}

// ---------------------------------------------------------------------------------------------
// +CPIN

export const CPIN_LOCKS: Readonly<Record<string, string>> = {
  READY: 'NONE',
  'SIM PIN': 'SIM_PIN',
  'SIM PIN2': 'SIM_PIN2',
  'SIM PUK': 'SIM_PUK',
  'SIM PUK2': 'SIM_PUK2',
  'PH-SIM PIN': 'PH_SIM_PIN',
  'PH-FSIM PIN': 'PH_FSIM_PIN',
  'PH-FSIM PUK': 'PH_FSIM_PUK',
  'PH-NET PIN': 'PH_NET_PIN',
  'PH-NET PUK': 'PH_NET_PUK',
  'PH-NETSUB PIN': 'PH_NETSUB_PIN',
  'PH-NETSUB PUK': 'PH_NETSUB_PUK',
  'PH-SP PIN': 'PH_SP_PIN',
  'PH-SP PUK': 'PH_SP_PUK',
  'PH-CORP PIN': 'PH_CORP_PIN',
  'PH-CORP PUK': 'PH_CORP_PUK',
  // not 27.007 <code>s, but what Quectel/SIMCom/Sierra answer while the SIM initialises or is out
  'NOT READY': 'NOT_READY',
  'NOT INSERTED': 'NOT_INSERTED',
};

export interface PinLock {
  /** ModemManager lock name: NONE, SIM_PIN, SIM_PUK, …, UNKNOWN. */
  readonly lock: string;
  readonly raw: string;
}

/**
 * `+CPIN: SIM PIN` (or, with expectPrefix=false, the code alone). A CME error reply (e.g. SIM
 * busy, `+CME ERROR: 100`) gives lock UNKNOWN — as ModemManager does.
 */
export function parseCpin(text: string, expectPrefix = true): PinLock {
  const l = lines(text)[0] ?? '';
  if (/^\+CME ERROR:/i.test(l)) return { lock: 'UNKNOWN', raw: l };
  let rest = l;
  if (expectPrefix) {
    if (!/^\+CPIN:/i.test(l)) fail('+CPIN', text);
    rest = l.slice(6);
  }
  const code = unquote(rest).trim().toUpperCase();
  const lock = CPIN_LOCKS[code];
  if (lock === undefined) fail('+CPIN', text);
  return { lock, raw: code };
}

// ---------------------------------------------------------------------------------------------
// +CSQ, +CESQ

export interface Csq {
  readonly rssi: number;
  readonly ber: number;
  /** dBm, or undefined when 99 (not known). */
  readonly rssiDbm?: number;
  /** 0–100 (ModemManager's signal quality), 0 when unknown. */
  readonly quality: number;
}

export function parseCsq(text: string): Csq {
  const f = splitFields(afterPrefix(text, '+CSQ:', '+CSQ'));
  if (f.length !== 2) fail('+CSQ', text);
  const rssi = dec(f[0], '+CSQ <rssi>', text);
  const ber = dec(f[1], '+CSQ <ber>', text);
  if (rssi < 0 || rssi > 99 || ber < 0 || ber > 99) fail('+CSQ out of range', text);
  const known = rssi <= 31;
  return {
    rssi,
    ber,
    ...(known ? { rssiDbm: -113 + 2 * rssi } : {}),
    quality: known ? Math.round((rssi * 100) / 31) : 0,
  };
}

export interface Cesq {
  readonly rxlev: number;
  readonly ber: number;
  readonly rscp_level: number;
  readonly ecn0_level: number;
  readonly rsrq_level: number;
  readonly rsrp_level: number;
  readonly gsm: { rssi_dbm: number } | null;
  readonly umts: { rscp_dbm: number; ecio_db: number } | null;
  readonly lte: { rsrq_db: number; rsrp_dbm: number } | null;
  /** From the Rel-15 9-field form; null when absent or not known (see threegpp.parseCesqExtended). */
  readonly nr: { rsrq_db?: number; rsrp_dbm?: number; sinr_db?: number } | null;
}

/** `+CESQ: <rxlev>,<ber>,<rscp>,<ecno>,<rsrq>,<rsrp>[,<ss_rsrq>,<ss_rsrp>,<ss_sinr>]` with 27.007 §8.69 level → dBm/dB. */
export function parseCesq(text: string): Cesq {
  const f = splitFields(afterPrefix(text, '+CESQ:', '+CESQ'));
  if (f.length !== 6 && f.length !== 9) fail('+CESQ', text);
  // the NR figures from the strict parser; the older fields keep their lenient reading
  // (a level out of range there is 'not known', as before)
  const xr = parseCesqExtended(text);
  const x = xr.ok ? xr.value : undefined;
  const nr = x?.nr ? { ...opt('rsrq_db', x.nr.rsrqDb), ...opt('rsrp_dbm', x.nr.rsrpDbm), ...opt('sinr_db', x.nr.sinrDb) } : null;
  const [rxlev, ber, rscp, ecn0, rsrq, rsrp] = f.slice(0, 6).map((v) => dec(v, '+CESQ', text)) as [number, number, number, number, number, number];
  const gsm = rxlev <= 63 ? { rssi_dbm: -111 + rxlev } : null;
  const umts = rscp <= 96 && ecn0 <= 49 ? { rscp_dbm: -121 + rscp, ecio_db: -24.5 + ecn0 / 2 } : null;
  const lte = rsrq <= 34 && rsrp <= 97 ? { rsrq_db: -20 + rsrq / 2, rsrp_dbm: -141 + rsrp } : null;
  return { rxlev, ber, rscp_level: rscp, ecn0_level: ecn0, rsrq_level: rsrq, rsrp_level: rsrp, gsm, umts, lte, nr };
}

// ---------------------------------------------------------------------------------------------
// +COPS?

export interface Cops {
  readonly mode: number;
  readonly format?: number;
  readonly operator?: string;
  readonly act?: number;
  readonly accessTech: string;
}

export function parseCops(text: string): Cops {
  const f = splitFields(afterPrefix(text, '+COPS:', '+COPS'));
  const mode = dec(f[0], '+COPS <mode>', text);
  if (f.length === 1) return { mode, accessTech: 'UNKNOWN' };
  if (f.length < 3 || f.length > 4) fail('+COPS', text);
  const format = dec(f[1], '+COPS <format>', text);
  const operator = unquote(f[2]!);
  const act = f.length === 4 ? dec(f[3], '+COPS <AcT>', text) : undefined;
  return { mode, format, operator, ...(act === undefined ? {} : { act }), accessTech: accessTechName(act) };
}


// the +CGDCONT/+CGPADDR and vendor (Quectel, Huawei) parsers live in their own files
export { splitFields, unquote } from './parse-util.js';
export * from './pdp-parsers.js';
export * from './vendor-parsers.js';

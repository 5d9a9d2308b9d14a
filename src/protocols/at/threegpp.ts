import { fields, hex, int, ok, opt, parseError, prefixed, replyLines, unq, type AtResult } from './result.js';


/**
 * 3GPP forms that the older parsers (parsers.ts) did not read, as non-throwing parsers
 * (see result.ts). Sources, read for this code:
 * - 3GPP TS 27.007 §10.1.22 +CEREG (n=3 adds <cause_type>,<reject_cause>; n=4 adds
 *   <Active-Time>,<Periodic-TAU>), §8.69 +CESQ (Rel-15 adds <ss_rsrq>,<ss_rsrp>,<ss_sinr>),
 *   §10.1.14 +CGPADDR, §8.3 +CPIN;
 * - 3GPP TS 24.008 §10.5.7.3 GPRS Timer / §10.5.7.4 GPRS Timer 2 (the Active-Time, T3324)
 *   and §10.5.7.4a GPRS Timer 3 (the extended Periodic-TAU, T3412);
 * - 3GPP TS 38.133 §10.1.6/10.1.11/10.1.16 (SS-RSRP/SS-RSRQ/SS-SINR report mapping, which
 *   27.007 quotes for the NR fields of +CESQ).
 */

// ---------------------------------------------------------------------------------------------
// Registration words shared with parsers.ts

export const REGISTRATION_STATES = [
  'IDLE', 'HOME', 'SEARCHING', 'DENIED', 'UNKNOWN', 'ROAMING', 'HOME_SMS_ONLY', 'ROAMING_SMS_ONLY',
  'EMERGENCY_ONLY', 'HOME_CSFB_NOT_PREFERRED', 'ROAMING_CSFB_NOT_PREFERRED', 'ATTACHED_RLOS',
] as const;
export type RegistrationState = (typeof REGISTRATION_STATES)[number];

/** 27.007 <AcT> → ModemManager access technology name. */
export const ACCESS_TECH: Readonly<Record<number, string>> = {
  0: 'GSM', 1: 'GSM_COMPACT', 2: 'UMTS', 3: 'EDGE', 4: 'HSDPA', 5: 'HSUPA', 6: 'HSPA', 7: 'LTE',
  8: 'GSM', 9: 'LTE_NB_IOT', 10: 'LTE', 11: '5GNR', 12: '5GNR', 13: 'LTE|5GNR',
};

export function accessTechName(act: number | undefined): string {
  return act === undefined ? 'UNKNOWN' : (ACCESS_TECH[act] ?? 'UNKNOWN');
}

export function isRegistered(stat: number): boolean {
  return stat === 1 || stat === 5 || stat === 6 || stat === 7 || stat === 9 || stat === 10;
}

// ---------------------------------------------------------------------------------------------
// PSM timers: GPRS Timer 2 (Active-Time) and GPRS Timer 3 (Periodic-TAU), as 8-bit strings

export interface PsmTimer {
  /** The octet as the modem gave it, e.g. "00100100". */
  readonly bits: string;
  /** Seconds one step of the value is worth; absent when deactivated. */
  readonly unitSeconds?: number;
  /** Bits 5..1. */
  readonly value: number;
  /** value × unit; absent when the timer is deactivated (unit 111). */
  readonly seconds?: number;
  readonly deactivated: boolean;
}

/** 24.008 Table 10.5.163 (GPRS Timer 2, same coding as 10.5.7.3): bits 8..6 → seconds. */
const TIMER2_UNITS: readonly (number | undefined)[] = [2, 60, 360, 60, 60, 60, 60, undefined];
/** 24.008 Table 10.5.163a (GPRS Timer 3). */
const TIMER3_UNITS: readonly (number | undefined)[] = [600, 3600, 36000, 2, 30, 60, 1152000, undefined];

function decodeTimer(bits: string, units: readonly (number | undefined)[], command: string): AtResult<PsmTimer> {
  const b = unq(bits);
  if (b.length !== 8) return parseError(command, 'bad-field', 'a GPRS timer is 8 bits', bits);
  let octet = 0;
  for (let i = 0; i < 8; i++) {
    const c = b.charCodeAt(i);
    if (c !== 48 && c !== 49) return parseError(command, 'bad-field', 'a GPRS timer is a string of 0 and 1', bits);
    octet = (octet << 1) | (c - 48);
  }
  const unit = units[octet >> 5];
  const value = octet & 31;
  if (unit === undefined) return ok({ bits: b, value, deactivated: true });
  return ok({ bits: b, unitSeconds: unit, value, seconds: unit * value, deactivated: false });
}

/** Active-Time (T3324) from +CEREG/+CPSMS: GPRS Timer 2, 24.008 §10.5.7.4 (units of 10.5.7.3). */
export function decodeGprsTimer2(bits: string): AtResult<PsmTimer> {
  return decodeTimer(bits, TIMER2_UNITS, 'GPRS Timer 2');
}

/** Periodic-TAU (T3412 extended) from +CEREG/+CPSMS: GPRS Timer 3, 24.008 §10.5.7.4a. */
export function decodeGprsTimer3(bits: string): AtResult<PsmTimer> {
  return decodeTimer(bits, TIMER3_UNITS, 'GPRS Timer 3');
}

// ---------------------------------------------------------------------------------------------
// +CEREG, every 27.007 form (n = 0..5), read response and URC

export interface EpsRegistration {
  /** <n> when the line carried it (the read response); absent in a URC. */
  readonly n?: number;
  readonly stat: number;
  readonly state: RegistrationState;
  readonly registered: boolean;
  readonly tac?: number;
  readonly ci?: number;
  readonly act?: number;
  readonly accessTech: string;
  /** Only in the pre-27.007 form ModemManager knows (stat,tac,rac,ci,AcT). */
  readonly rac?: number;
  /** 0: <reject_cause> is an EMM cause (24.301 Annex A); 1: manufacturer specific. */
  readonly causeType?: number;
  readonly rejectCause?: number;
  /** T3324, granted by the network (n=4/5). */
  readonly activeTime?: PsmTimer;
  /** T3412 extended, granted by the network (n=4/5). */
  readonly periodicTau?: PsmTimer;
  readonly unsolicited: boolean;
}

export interface CeregOptions {
  /** true: the line answers AT+CEREG? (starts with <n>); false: a URC; default: decided from the fields. */
  readonly solicited?: boolean;
}

function smallBareInt(s: string | undefined): boolean {
  if (s === undefined || s.length === 0 || s.length > 2 || s.includes('"')) return false;
  const v = int(s);
  return v !== undefined && v >= 0 && v <= 11;
}

/**
 * `+CEREG: <n>,<stat>[,[<tac>],[<ci>],[<AcT>][,[<cause_type>],[<reject_cause>][,[<Active-Time>],
 * [<Periodic-TAU>]]]]` (read) or the same without <n> (URC). Empty optional fields are absent
 * in the result. Also reads the pre-27.007 forms with <rac> (stat,tac,rac,ci,AcT) and the
 * u-blox LARA-R6 read form that carries one empty field more before the timers.
 */
export function parseCereg(text: string, o: CeregOptions = {}): AtResult<EpsRegistration> {
  const C = '+CEREG';
  const ls = replyLines(text, C);
  if (!ls.ok) return ls;
  const line = prefixed(ls.value, '+CEREG:')[0];
  if (line === undefined) return parseError(C, 'no-prefix', 'no +CEREG line', text);
  const f = fields(line);
  const solicited = o.solicited ?? (f.length >= 2 && smallBareInt(f[1]));
  const n = solicited ? int(f[0]) : undefined;
  if (solicited && (n === undefined || n < 0 || n > 9)) return parseError(C, 'bad-field', '<n>', line);
  const s = solicited ? 1 : 0;
  const stat = int(f[s]);
  if (stat === undefined) return parseError(C, 'bad-field', '<stat>', line);
  if (stat < 0 || stat >= REGISTRATION_STATES.length) return parseError(C, 'out-of-range', '<stat>', line);
  const rest = f.slice(s + 1);
  let iTac = 0;
  let iCi = 1;
  let iAct = 2;
  let iRac = -1;
  let iCause = -1;
  let iTimers = -1;
  switch (rest.length) {
    case 0:
      break;
    case 3:
      break;
    case 4: // stat,tac,rac,ci,AcT (ModemManager's forms 10 and 11)
      iRac = 1;
      iCi = 2;
      iAct = 3;
      break;
    case 5:
      iCause = 3;
      break;
    case 7:
      iCause = 3;
      iTimers = 5;
      break;
    case 8: // LARA-R6: +CEREG: 4,5,,,,,,,"00000000","01100000"
      if (rest[5] !== '') return parseError(C, 'field-count', `${f.length} fields`, line);
      iCause = 3;
      iTimers = 6;
      break;
    default:
      return parseError(C, 'field-count', `${f.length} fields`, line);
  }
  const get = (i: number): string => (i >= 0 ? (rest[i] ?? '') : '');
  const num = (i: number, what: string, max: number): AtResult<number | undefined> => {
    const raw = get(i);
    if (unq(raw) === '') return ok(undefined);
    const v = int(raw);
    if (v === undefined) return parseError(C, 'bad-field', what, line);
    if (v < 0 || v > max) return parseError(C, 'out-of-range', what, line);
    return ok(v);
  };
  const hx = (i: number, what: string, maxDigits: number): AtResult<number | undefined> => {
    const raw = unq(get(i));
    if (raw === '') return ok(undefined);
    const v = raw.length <= maxDigits ? hex(raw) : undefined;
    return v === undefined ? parseError(C, 'bad-field', what, line) : ok(v);
  };
  const tac = rest.length > 0 ? hx(iTac, '<tac>', 6) : ok(undefined);
  if (!tac.ok) return tac;
  const ci = rest.length > 0 ? hx(iCi, '<ci>', 9) : ok(undefined);
  if (!ci.ok) return ci;
  const act = rest.length > 0 ? num(iAct, '<AcT>', 99) : ok(undefined);
  if (!act.ok) return act;
  const rac = iRac >= 0 ? hx(iRac, '<rac>', 4) : ok(undefined);
  if (!rac.ok) return rac;
  const causeType = iCause >= 0 ? num(iCause, '<cause_type>', 1) : ok(undefined);
  if (!causeType.ok) return causeType;
  const rejectCause = iCause >= 0 ? num(iCause + 1, '<reject_cause>', 65535) : ok(undefined);
  if (!rejectCause.ok) return rejectCause;
  let activeTime: PsmTimer | undefined;
  let periodicTau: PsmTimer | undefined;
  if (iTimers >= 0) {
    if (unq(get(iTimers)) !== '') {
      const t = decodeGprsTimer2(get(iTimers));
      if (!t.ok) return parseError(C, 'bad-field', `<Active-Time> ${t.message}`, line);
      activeTime = t.value;
    }
    if (unq(get(iTimers + 1)) !== '') {
      const t = decodeGprsTimer3(get(iTimers + 1));
      if (!t.ok) return parseError(C, 'bad-field', `<Periodic-TAU> ${t.message}`, line);
      periodicTau = t.value;
    }
  }
  return ok({
    ...opt('n', n),
    stat,
    state: REGISTRATION_STATES[stat]!,
    registered: isRegistered(stat),
    ...opt('tac', tac.value),
    ...opt('ci', ci.value),
    ...opt('act', act.value),
    accessTech: accessTechName(act.value),
    ...opt('rac', rac.value),
    ...opt('causeType', causeType.value),
    ...opt('rejectCause', rejectCause.value),
    ...opt('activeTime', activeTime),
    ...opt('periodicTau', periodicTau),
    unsolicited: !solicited,
  });
}

// ---------------------------------------------------------------------------------------------
// +CESQ with the Rel-15 NR fields

export interface ExtendedSignal {
  /** The raw levels, as sent (99/255 = not known). The NR ones only in the 9-field form. */
  readonly levels: {
    readonly rxlev: number;
    readonly ber: number;
    readonly rscp: number;
    readonly ecno: number;
    readonly rsrq: number;
    readonly rsrp: number;
    readonly ss_rsrq?: number;
    readonly ss_rsrp?: number;
    readonly ss_sinr?: number;
  };
  /** Each present only when its RAT reported something known; each value the lower edge of its 27.007 step. */
  readonly gsm?: { readonly rssiDbm: number; readonly berLevel?: number };
  readonly umts?: { readonly rscpDbm?: number; readonly ecnoDb?: number };
  readonly lte?: { readonly rsrqDb?: number; readonly rsrpDbm?: number };
  readonly nr?: { readonly rsrqDb?: number; readonly rsrpDbm?: number; readonly sinrDb?: number };
}

/**
 * `+CESQ: <rxlev>,<ber>,<rscp>,<ecno>,<rsrq>,<rsrp>[,<ss_rsrq>,<ss_rsrp>,<ss_sinr>]`
 * (27.007 §8.69). Mapping (value → dBm/dB, the lower edge of the reported step):
 * rxlev 0..63 → −111+v (99 unknown); rscp 0..96 → −121+v; ecno 0..49 → −24.5+v/2;
 * rsrq 0..34 → −20+v/2; rsrp 0..97 → −141+v; ss_rsrq 0..127 → −43.5+v/2;
 * ss_rsrp 0..127 → −157+v; ss_sinr 0..127 → −23.5+v/2 (255 unknown for all but rxlev/ber).
 */
export function parseCesqExtended(text: string): AtResult<ExtendedSignal> {
  const C = '+CESQ';
  const ls = replyLines(text, C);
  if (!ls.ok) return ls;
  const line = prefixed(ls.value, '+CESQ:')[0];
  if (line === undefined) return parseError(C, 'no-prefix', 'no +CESQ line', text);
  const f = fields(line);
  if (f.length !== 6 && f.length !== 9) return parseError(C, 'field-count', `${f.length} fields (6 or 9)`, line);
  const v: number[] = [];
  for (const x of f) {
    const n = int(x);
    if (n === undefined) return parseError(C, 'bad-field', 'a level is an integer', line);
    v.push(n);
  }
  // [max known value, not-known value] per field
  const ranges: readonly [number, number][] = [[63, 99], [7, 99], [96, 255], [49, 255], [34, 255], [97, 255], [127, 255], [127, 255], [127, 255]];
  const known: boolean[] = [];
  for (let i = 0; i < v.length; i++) {
    const [max, unknown] = ranges[i]!;
    const x = v[i]!;
    if (x === unknown) known.push(false);
    else if (x >= 0 && x <= max) known.push(true);
    else return parseError(C, 'out-of-range', `field ${i + 1} = ${x}`, line);
  }
  const [rxlev, ber, rscp, ecno, rsrq, rsrp, ssRsrq, ssRsrp, ssSinr] = v as [number, number, number, number, number, number, number?, number?, number?];
  const k = (i: number): boolean => known[i] === true;
  const levels = {
    rxlev, ber, rscp, ecno, rsrq, rsrp,
    ...opt('ss_rsrq', ssRsrq), ...opt('ss_rsrp', ssRsrp), ...opt('ss_sinr', ssSinr),
  };
  return ok({
    levels,
    ...(k(0) ? { gsm: { rssiDbm: -111 + rxlev, ...opt('berLevel', k(1) ? ber : undefined) } } : {}),
    ...(k(2) || k(3) ? { umts: { ...opt('rscpDbm', k(2) ? -121 + rscp : undefined), ...opt('ecnoDb', k(3) ? -24.5 + ecno / 2 : undefined) } } : {}),
    ...(k(4) || k(5) ? { lte: { ...opt('rsrqDb', k(4) ? -20 + rsrq / 2 : undefined), ...opt('rsrpDbm', k(5) ? -141 + rsrp : undefined) } } : {}),
    ...(k(6) || k(7) || k(8)
      ? {
          nr: {
            ...opt('rsrqDb', k(6) ? -43.5 + ssRsrq! / 2 : undefined),
            ...opt('rsrpDbm', k(7) ? -157 + ssRsrp! : undefined),
            ...opt('sinrDb', k(8) ? -23.5 + ssSinr! / 2 : undefined),
          },
        }
      : {}),
  });
}

// +CGPADDR / address forms and +CPIN / PIN safety live in their own files
export * from './pdp-address.js';
export * from './sim-pin.js';

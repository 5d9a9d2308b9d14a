import { afterPrefix, dec, fail, opt, splitFields, unquote } from './parse-util.js';

/** Throwing parsers of vendor replies (Quectel AT+QENG, Huawei ^SYSINFOEX/^HCSQ); see parsers.ts. */

// ---------------------------------------------------------------------------------------------
// Quectel AT+QENG="servingcell"

export interface ServingCell {
  /** SEARCH, LIMSRV, NOCONN, CONNECT (Quectel's words). */
  readonly state: string;
  readonly rat?: 'LTE' | 'WCDMA' | 'GSM' | 'NR5G-SA' | string;
  readonly duplex?: string;
  readonly mcc?: number;
  readonly mnc?: number;
  readonly cellId?: number;
  readonly pcid?: number;
  readonly earfcn?: number;
  /** E-UTRA band number (`freq_band_ind`). */
  readonly band?: number;
  readonly tac?: number;
  readonly lac?: number;
  readonly rsrp?: number;
  readonly rsrq?: number;
  readonly rssi?: number;
  /** dB (EC2x reports 0–250 in 1/5 dB from −20 dB). */
  readonly sinr?: number;
  readonly rscp?: number;
  readonly ecio?: number;
}

function optNum(s: string | undefined): number | undefined {
  const t = unquote(s ?? '').trim();
  if (t === '' || t === '-') return undefined;
  return /^-?\d+$/.test(t) ? Number(t) : undefined;
}

function optHex(s: string | undefined): number | undefined {
  const t = unquote(s ?? '').trim();
  return /^[0-9a-fA-F]{1,8}$/.test(t) ? parseInt(t, 16) : undefined;
}

/**
 * `+QENG: "servingcell",<state>,"LTE",<is_tdd>,<MCC>,<MNC>,<cellID>,<PCID>,<earfcn>,
 * <freq_band_ind>,<UL_bw>,<DL_bw>,<TAC>,<RSRP>,<RSRQ>,<RSSI>,<SINR>,<CQI>,<tx_power>,<srxlev>`
 * and the WCDMA/GSM forms (Quectel EC2x AT manual §"AT+QENG").
 */
export function parseQengServingCell(text: string): ServingCell {
  const f = splitFields(afterPrefix(text, '+QENG:', '+QENG'));
  if (unquote(f[0] ?? '') !== 'servingcell' || f.length < 2) fail('+QENG servingcell', text);
  const state = unquote(f[1]!);
  if (f.length === 2) return { state };
  const rat = unquote(f[2]!);
  if (rat === 'LTE') {
    if (f.length < 17) fail('+QENG LTE', text);
    const sinrRaw = optNum(f[16]);
    return {
      state,
      rat,
      duplex: unquote(f[3]!),
      ...opt('mcc', optNum(f[4])),
      ...opt('mnc', optNum(f[5])),
      ...opt('cellId', optHex(f[6])),
      ...opt('pcid', optNum(f[7])),
      ...opt('earfcn', optNum(f[8])),
      ...opt('band', optNum(f[9])),
      ...opt('tac', optHex(f[12])),
      ...opt('rsrp', optNum(f[13])),
      ...opt('rsrq', optNum(f[14])),
      ...opt('rssi', optNum(f[15])),
      ...opt('sinr', sinrRaw === undefined ? undefined : sinrRaw / 5 - 20),
    };
  }
  if (rat === 'WCDMA') {
    if (f.length < 12) fail('+QENG WCDMA', text);
    return {
      state,
      rat,
      ...opt('mcc', optNum(f[3])),
      ...opt('mnc', optNum(f[4])),
      ...opt('lac', optHex(f[5])),
      ...opt('cellId', optHex(f[6])),
      ...opt('rscp', optNum(f[10])),
      ...opt('ecio', optNum(f[11])),
    };
  }
  if (rat === 'GSM') {
    if (f.length < 11) fail('+QENG GSM', text);
    return {
      state,
      rat,
      ...opt('mcc', optNum(f[3])),
      ...opt('mnc', optNum(f[4])),
      ...opt('lac', optHex(f[5])),
      ...opt('cellId', optHex(f[6])),
      ...opt('band', optNum(f[9])),
      ...opt('rssi', optNum(f[10])),
    };
  }
  return { state, rat };
}

// ---------------------------------------------------------------------------------------------
// Huawei ^SYSINFOEX, ^HCSQ

export interface SysInfoEx {
  readonly srv_status: number;
  readonly srv_domain: number;
  readonly roam_status: number;
  readonly sim_state: number;
  readonly lock_state?: number;
  readonly sys_mode: number;
  readonly sys_mode_name: string;
  readonly sys_submode: number;
  readonly sys_submode_name: string;
}

/** `^SYSINFOEX: <srv_status>,<srv_domain>,<roam>,<sim_state>,<lock>,<sysmode>,<name>,<submode>,<name>`. */
export function parseSysinfoex(text: string): SysInfoEx {
  const f = splitFields(afterPrefix(text, '^SYSINFOEX:', '^SYSINFOEX'));
  if (f.length !== 9) fail('^SYSINFOEX', text);
  const lock = optNum(f[4]);
  return {
    srv_status: dec(f[0], '^SYSINFOEX', text),
    srv_domain: dec(f[1], '^SYSINFOEX', text),
    roam_status: dec(f[2], '^SYSINFOEX', text),
    sim_state: dec(f[3], '^SYSINFOEX', text),
    ...(lock === undefined ? {} : { lock_state: lock }),
    sys_mode: dec(f[5], '^SYSINFOEX', text),
    sys_mode_name: unquote(f[6]!),
    sys_submode: dec(f[7], '^SYSINFOEX', text),
    sys_submode_name: unquote(f[8]!),
  };
}

export interface Hcsq {
  /** False when the modem reported NOSERVICE or a mode we do not know. */
  readonly ok: boolean;
  readonly sysmode: string;
  readonly access_tech: string;
  /** Up to five raw Huawei level values, zero-filled. */
  readonly value1_5: [number, number, number, number, number];
}

const HCSQ_TECH: Readonly<Record<string, string>> = { GSM: 'GSM', WCDMA: 'UMTS', LTE: 'LTE', NR: '5GNR', CDMA: '1XRTT', EVDO: 'EVDO_0', 'TD-SCDMA': 'UMTS' };

export function parseHcsq(text: string): Hcsq {
  const f = splitFields(afterPrefix(text, '^HCSQ:', '^HCSQ'));
  const sysmode = unquote(f[0]!);
  const v: [number, number, number, number, number] = [0, 0, 0, 0, 0];
  if (f.length > 6) fail('^HCSQ', text);
  for (let i = 1; i < f.length; i++) v[i - 1] = dec(f[i], '^HCSQ value', text);
  const tech = HCSQ_TECH[sysmode];
  return { ok: tech !== undefined, sysmode, access_tech: tech ?? 'UNKNOWN', value1_5: v };
}

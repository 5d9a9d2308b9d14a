import { opt, unq, type AtResult } from './result.js';

/**
 * Serving cell and signal from the vendor commands, one pure parser per command (cells-<vendor>.ts), all returning
 * one normalised report (or a DC_AT_PARSE error, never a throw, never NaN). Sources, read for
 * this code (formats only; the code is ours):
 * - Sierra Wireless `AT!GSTATUS?`: AirPrime EM/MC74xx AT Command Reference (4117727) §!GSTATUS,
 *   and the replies quoted in ModemManager's Sierra MBIM plugin (EM919x, LTE/ENDC/NR5G) and on
 *   the linux-usb / OpenWrt lists (MC8xxx, WCDMA);
 * - SIMCom `AT+CPSI?`: SIM7500/SIM7600 Series AT Command Manual V1.08 §AT+CPSI (GSM, WCDMA, LTE,
 *   NO SERVICE) and SIM8200 Series AT Command Manual §AT+CPSI (NR5G_SA, NR5G_NSA);
 * - Telit `AT#RFSTS`: LE910Cx AT Commands Reference Guide (80502ST10950A) and LM960 AT Command
 *   Reference Guide (80568ST10869A) §#RFSTS, HE910 guide (80378ST10091A) for the 3G form;
 * - Quectel `AT+QENG="servingcell"`: RG520N&RM520N Series (and RG50xQ/RM5xxQ) AT Commands Manual
 *   §AT+QENG (NR5G-SA, EN-DC LTE + NR5G-NSA, LTE, SEARCH/LIMSRV/NOCONN/CONNECT).
 */

export type ServingMode = 'no-service' | 'gsm' | 'umts' | 'lte' | 'nr5g-sa' | 'nr5g-nsa';

/** searching/limited/idle/connected as Quectel words them; camped: in service, RRC state not reported. */
export type ServiceState = 'no-service' | 'searching' | 'limited' | 'idle' | 'connected' | 'camped';

export interface CellInfo {
  readonly rat: 'gsm' | 'umts' | 'lte' | 'nr';
  /** 'B3' (E-UTRA), 'n78' (NR), or the vendor's words for 2G/3G ('WCDMA 2100', 'EGSM 900'). */
  readonly band?: string;
  readonly bandNumber?: number;
  /** ARFCN / UARFCN / EARFCN / NR-ARFCN of the downlink. */
  readonly channel?: number;
  readonly bandwidthMHz?: number;
  /** Physical cell id (LTE/NR) or primary scrambling code (UMTS). */
  readonly pci?: number;
  readonly cellId?: number;
  readonly tac?: number;
  readonly lac?: number;
  readonly mcc?: string;
  readonly mnc?: string;
  readonly rsrpDbm?: number;
  readonly rsrqDb?: number;
  readonly sinrDb?: number;
  readonly rssiDbm?: number;
  readonly rscpDbm?: number;
  readonly ecioDb?: number;
  /** SIMCom LTE <RSSNR> as sent (the manual gives no unit we could confirm). */
  readonly rssnr?: number;
  /** Telit LTE <SINR> as sent (0..250; its scale is not confirmed from the manual, so no dB here). */
  readonly sinrRaw?: number;
}

export type ServingSource = '!GSTATUS' | '+CPSI' | '#RFSTS' | '+QENG' | '+CESQ';

export interface ServingCellReport {
  readonly source: ServingSource;
  readonly mode: ServingMode;
  readonly state: ServiceState;
  /** Primary first; for EN-DC (nr5g-nsa) the LTE anchor, then the NR cell when it is up. */
  readonly cells: readonly CellInfo[];
}

/** LTE bandwidth code (0–5, as SIMCom and Quectel report <dlbw>/<ulbw>) → MHz. */
export const CPSI_BW = [1.4, 3, 5, 10, 15, 20];

export const E = <T>(r: AtResult<T>): r is Extract<AtResult<T>, { ok: false }> => !r.ok;

export function lteBand(n: number | undefined): { band?: string; bandNumber?: number } {
  return n === undefined || n <= 0 ? {} : { band: `B${n}`, bandNumber: n };
}

export function nrBand(n: number | undefined): { band?: string; bandNumber?: number } {
  return n === undefined || n <= 0 ? {} : { band: `n${n}`, bandNumber: n };
}

/** A finite number, or undefined when outside [lo, hi] (vendor "invalid" markers like -32768, 255). */
export function within(v: number | undefined, lo: number, hi: number): number | undefined {
  return v !== undefined && Number.isFinite(v) && v >= lo && v <= hi ? v : undefined;
}

/** 'MCC-MNC' or 'MCC MNC' → parts (digits only). */
export function plmn(s: string | undefined): { mcc?: string; mnc?: string } {
  const t = unq(s);
  const m = /^(\d{3})[- ]?(\d{2,3})$/.exec(t);
  return m ? { mcc: m[1]!, mnc: m[2]! } : {};
}

// ---------------------------------------------------------------------------------------------

export interface PrimarySignal {
  readonly rat: 'gsm' | 'umts' | 'lte' | '5gnr';
  readonly rsrp?: number;
  readonly rsrq?: number;
  readonly snr?: number;
  readonly rssi?: number;
  readonly band?: string;
  readonly bandNumber?: number;
}

/**
 * The figures the modem service shows (its SignalInfo shape): the primary cell's signal; in
 * EN-DC the LTE anchor's, with the NR band appended (e.g. band 'B3+n78'). Undefined with no cell.
 */
export function primarySignal(r: ServingCellReport): PrimarySignal | undefined {
  const c = r.cells[0];
  if (c === undefined) return undefined;
  const nr = r.mode === 'nr5g-nsa' ? r.cells.find((x) => x.rat === 'nr') : undefined;
  const band = c.band !== undefined && nr?.band !== undefined ? `${c.band}+${nr.band}` : c.band;
  return {
    rat: c.rat === 'nr' ? '5gnr' : c.rat,
    ...opt('rsrp', c.rsrpDbm ?? c.rscpDbm),
    ...opt('rsrq', c.rsrqDb ?? c.ecioDb),
    ...opt('snr', c.sinrDb),
    ...opt('rssi', c.rssiDbm),
    ...opt('band', band),
    ...opt('bandNumber', c.bandNumber),
  };
}

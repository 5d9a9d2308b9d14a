import { fields, hex, int, num, ok, opt, parseError, prefixed, replyLines, unq, type AtResult } from './result.js';

/**
 * Serving cell and signal from the vendor commands, one pure parser per command, all returning
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

const E = <T>(r: AtResult<T>): r is Extract<AtResult<T>, { ok: false }> => !r.ok;

function lteBand(n: number | undefined): { band?: string; bandNumber?: number } {
  return n === undefined || n <= 0 ? {} : { band: `B${n}`, bandNumber: n };
}

function nrBand(n: number | undefined): { band?: string; bandNumber?: number } {
  return n === undefined || n <= 0 ? {} : { band: `n${n}`, bandNumber: n };
}

/** A finite number, or undefined when outside [lo, hi] (vendor "invalid" markers like -32768, 255). */
function within(v: number | undefined, lo: number, hi: number): number | undefined {
  return v !== undefined && Number.isFinite(v) && v >= lo && v <= hi ? v : undefined;
}

/** 'MCC-MNC' or 'MCC MNC' → parts (digits only). */
function plmn(s: string | undefined): { mcc?: string; mnc?: string } {
  const t = unq(s);
  const m = /^(\d{3})[- ]?(\d{2,3})$/.exec(t);
  return m ? { mcc: m[1]!, mnc: m[2]! } : {};
}

// ---------------------------------------------------------------------------------------------
// Sierra Wireless AT!GSTATUS?

/**
 * Every label !GSTATUS prints (LTE, ENDC, NR5G, WCDMA firmware), so that a value ends where the
 * next label starts. Matched case-sensitively, at the start of a line or after white space,
 * and followed by ':'; the longest label wins.
 */
const GSTATUS_LABELS = [
  'Current Time', 'Temperature', 'Bootup Time', 'Reset Counter', 'Mode', 'System mode', 'PS state',
  'Modem Mitigate Level', 'ModemProc Mitigate Level',
  'LTE band', 'LTE bw', 'LTE Rx chan', 'LTE Tx chan', 'LTE CA state', 'LTE Scell band', 'LTE Scell bw', 'LTE Scell chan',
  'EMM state', 'RRC state', 'RRC State', 'IMS reg state', 'IMS mode', 'IMS Srv State',
  'PCC RxM RSSI', 'PCC RxD RSSI', 'PCC RxM RSRP', 'PCC RxD RSRP', 'SCC RxM RSSI', 'SCC RxD RSSI', 'RSRP (dBm)',
  'Tx Power', 'TAC', 'RSRQ (dB)', 'Cell ID', 'SINR (dB)',
  'NR5G band', 'NR5G bw', 'NR5G dl bw', 'NR5G ul bw', 'NR5G Rx chan', 'NR5G Tx chan', 'NR5G Carrier ID',
  'NR5G RSRP (dBm)', 'NR5G RSRQ (dB)', 'NR5G SINR (dB)', 'NR5G TAC', 'NR5G Cell ID', 'NR5G MCC-MNC',
  'WCDMA band', 'WCDMA channel', 'GSM band', 'GSM channel', 'GMM (PS) state', 'MM (CS) state', 'WCDMA L1 state', 'WCDMA L1 State',
  'LAC', 'RX level C0', 'RX level C1', 'RX level Carrier 0 (dBm)', 'RX level Carrier 1 (dBm)', 'RX level (dBm)',
  'RxM RSSI C0', 'RxD RSSI C0', 'RxM RSSI C1', 'RxD RSSI C1', 'Coverage level',
].sort((a, b) => b.length - a.length);

/**
 * label → value (first occurrence wins), from every line. Only the ':' of a line are tried,
 * each against the labels that could end there (longest first), so the cost is
 * colons × labels, not characters × labels.
 */
export function gstatusFields(lines: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of lines) {
    let cur: string | undefined;
    let from = 0;
    const close = (end: number): void => {
      if (cur !== undefined && !out.has(cur)) out.set(cur, line.slice(from, end).trim());
    };
    for (let c = line.indexOf(':'); c !== -1; c = line.indexOf(':', c + 1)) {
      for (const l of GSTATUS_LABELS) {
        const start = c - l.length;
        if (start < from || (start > 0 && line[start - 1] !== ' ' && line[start - 1] !== '\t')) continue;
        if (line.startsWith(l, start)) {
          close(start);
          cur = l;
          from = c + 1;
          break;
        }
      }
    }
    close(line.length);
  }
  return out;
}

/** The first token of a value: '0076340C (7746572)' → '0076340C', '5 MHz' → '5'. */
function first(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const t = v.trim().split(/\s+/)[0];
  return t === undefined || t === '' || /^-+$/.test(t) ? undefined : t;
}

function gstatusState(g: Map<string, string>, mode: ServingMode): ServiceState {
  if (mode === 'no-service') return 'no-service';
  const mm = `${g.get('EMM state') ?? ''} ${g.get('GMM (PS) state') ?? ''}`.toUpperCase();
  if (mm.includes('LIMITED')) return 'limited';
  const rrc = (g.get('RRC state') ?? g.get('RRC State') ?? '').toUpperCase();
  if (rrc.includes('CONNECTED') && !rrc.includes('DISCONNECTED')) return 'connected';
  if (rrc.includes('CELL_DCH') || rrc.includes('CELL_FACH')) return 'connected';
  if (rrc !== '') return 'idle';
  return 'camped';
}

/**
 * `AT!GSTATUS?`: label/value pairs over several lines, two per line separated by tabs or
 * spaces (LTE: "LTE band: B2", "PCC RxM RSRP: -72" or, older, "PCC RxM RSSI: -93  RSRP (dBm): -116",
 * "TAC: A4FB (42235)", "RSRQ (dB): -9.8", "Cell ID: 0076340C (7746572)", "SINR (dB): -1.4";
 * ENDC adds "NR5G band/RSRP/RSRQ/SINR"; NR5G SA has "NR5G TAC", "NR5G Cell ID"; WCDMA has
 * "WCDMA band", "WCDMA channel", "LAC", "RX level C0"/"RxM RSSI C0"). '---' and '--' mean absent.
 */
export function parseGstatus(text: string): AtResult<ServingCellReport> {
  const C = '!GSTATUS';
  const ls = replyLines(text, C);
  if (E(ls)) return ls;
  const g = gstatusFields(ls.value);
  const sys = g.get('System mode');
  if (sys === undefined) return parseError(C, 'no-prefix', 'no "System mode:"', text);
  const s = (first(sys) ?? '').toUpperCase();
  let mode: ServingMode;
  if (s === 'LTE') mode = 'lte';
  else if (s === 'ENDC') mode = 'nr5g-nsa';
  else if (s === 'NR5G') mode = 'nr5g-sa';
  else if (s === 'WCDMA') mode = 'umts';
  else if (s === 'GSM') mode = 'gsm';
  else if (s === '' || s === 'NO' || s === 'NONE' || s.startsWith('NO_') || s === 'NOSRV') mode = 'no-service';
  else return parseError(C, 'unknown-form', `System mode ${JSON.stringify(sys.slice(0, 20))}`, text);
  const cells: CellInfo[] = [];
  const lteCell = (): CellInfo => {
    const b = first(g.get('LTE band'));
    const bn = b !== undefined && /^B\d{1,3}$/i.test(b) ? Number(b.slice(1)) : undefined;
    return {
      rat: 'lte',
      ...lteBand(bn),
      ...opt('channel', within(int(first(g.get('LTE Rx chan'))), 0, 300000)),
      ...opt('bandwidthMHz', within(num(first(g.get('LTE bw'))), 0, 100)),
      ...opt('tac', hex(first(g.get('TAC')))),
      ...opt('cellId', hex(first(g.get('Cell ID')))),
      ...opt('rsrpDbm', within(num(first(g.get('PCC RxM RSRP') ?? g.get('RSRP (dBm)'))), -200, 0)),
      ...opt('rssiDbm', within(num(first(g.get('PCC RxM RSSI'))), -200, 0)),
      ...opt('rsrqDb', within(num(first(g.get('RSRQ (dB)'))), -50, 10)),
      ...opt('sinrDb', within(num(first(g.get('SINR (dB)'))), -50, 60)),
    };
  };
  const nrCell = (): CellInfo | undefined => {
    const b = first(g.get('NR5G band'));
    const bn = b !== undefined && /^n\d{1,3}$/i.test(b) ? Number(b.slice(1)) : undefined;
    const rsrp = within(num(first(g.get('NR5G RSRP (dBm)'))), -200, 0);
    if (bn === undefined && rsrp === undefined) return undefined;
    return {
      rat: 'nr',
      ...nrBand(bn),
      ...opt('channel', within(int(first(g.get('NR5G Rx chan'))), 0, 3300000)),
      ...opt('bandwidthMHz', within(num(first(g.get('NR5G dl bw') ?? g.get('NR5G bw'))), 0, 400)),
      ...opt('tac', hex(first(g.get('NR5G TAC')))),
      ...opt('cellId', hex(first(g.get('NR5G Cell ID')))),
      ...plmn(first(g.get('NR5G MCC-MNC'))),
      ...opt('rsrpDbm', rsrp),
      ...opt('rsrqDb', within(num(first(g.get('NR5G RSRQ (dB)'))), -50, 30)),
      ...opt('sinrDb', within(num(first(g.get('NR5G SINR (dB)'))), -50, 60)),
    };
  };
  if (mode === 'lte') cells.push(lteCell());
  else if (mode === 'nr5g-nsa') {
    cells.push(lteCell());
    const nr = nrCell();
    if (nr) cells.push(nr);
  } else if (mode === 'nr5g-sa') {
    const nr = nrCell();
    if (nr) cells.push(nr);
  } else if (mode === 'umts') {
    const band = g.get('WCDMA band')?.trim();
    cells.push({
      rat: 'umts',
      ...(band && !/^-+$/.test(band) ? { band } : {}),
      ...opt('channel', within(int(first(g.get('WCDMA channel'))), 0, 20000)),
      ...opt('lac', hex(first(g.get('LAC')))),
      ...opt('cellId', hex(first(g.get('Cell ID')))),
      ...opt('rssiDbm', within(num(first(g.get('RxM RSSI C0') ?? g.get('RX level C0') ?? g.get('RX level Carrier 0 (dBm)') ?? g.get('RX level (dBm)'))), -200, 0)),
    });
  } else if (mode === 'gsm') {
    const band = g.get('GSM band')?.trim();
    cells.push({ rat: 'gsm', ...(band && !/^-+$/.test(band) ? { band } : {}), ...opt('channel', within(int(first(g.get('GSM channel'))), 0, 1023)) });
  }
  return ok({ source: '!GSTATUS', mode, state: gstatusState(g, mode), cells });
}

// ---------------------------------------------------------------------------------------------
// SIMCom AT+CPSI?

/** SIMCom LTE <dlbw>/<ulbw> code → MHz. */
const CPSI_BW = [1.4, 3, 5, 10, 15, 20];

/** 'EUTRAN-BAND3' → 3, 'NR5G_BAND78' → 78, 'NR5G-Band78' → 78. */
function cpsiBand(s: string | undefined): number | undefined {
  const m = /BAND[_ -]?(\d{1,3})$/i.exec(unq(s));
  return m ? Number(m[1]) : undefined;
}

/** SIMCom reports tenths: -850 → -85.0. */
function tenths(s: string | undefined, lo: number, hi: number): number | undefined {
  const v = int(s);
  return v === undefined ? undefined : within(v / 10, lo, hi);
}

function cpsiLine(f: string[], line: string): AtResult<{ mode: ServingMode; state: ServiceState; cell?: CellInfo }> {
  const C = '+CPSI';
  const sys = unq(f[0]).toUpperCase();
  if (sys === 'NO SERVICE') return ok({ mode: 'no-service', state: 'no-service' });
  if (sys === 'NR5G_NSA' || sys === 'NR5G') {
    // NR5G_NSA,<PCellID>,<Frequency Band>,<ARFCN>,<RSRP>,<RSRQ>,<SNR>
    if (f.length !== 7 || sys === 'NR5G') return parseError(C, 'field-count', `NR5G_NSA with ${f.length} fields`, line);
    return ok({
      mode: 'nr5g-nsa',
      state: 'camped',
      cell: {
        rat: 'nr',
        ...nrBand(cpsiBand(f[2])),
        ...opt('pci', within(int(f[1]), 0, 1007)),
        ...opt('channel', within(int(f[3]), 0, 3300000)),
        ...opt('rsrpDbm', tenths(f[4], -200, 0)),
        ...opt('rsrqDb', tenths(f[5], -50, 30)),
        ...opt('sinrDb', tenths(f[6], -50, 60)),
      },
    });
  }
  const opMode = unq(f[1]).toUpperCase();
  const state: ServiceState = opMode === 'ONLINE' ? 'camped' : 'limited';
  if (sys === 'LTE') {
    // LTE,<Op>,<MCC>-<MNC>,<TAC>,<SCellID>,<PCellID>,<Band>,<earfcn>,<dlbw>,<ulbw>,<RSRQ>,<RSRP>,<RSSI>,<RSSNR>
    if (f.length !== 14) return parseError(C, 'field-count', `LTE with ${f.length} fields`, line);
    const bw = int(f[8]);
    return ok({
      mode: 'lte',
      state,
      cell: {
        rat: 'lte',
        ...plmn(f[2]),
        ...opt('tac', hex(f[3])),
        ...opt('cellId', within(int(f[4]), 0, 0xfffffff)),
        ...opt('pci', within(int(f[5]), 0, 503)),
        ...lteBand(cpsiBand(f[6])),
        ...opt('channel', within(int(f[7]), 0, 300000)),
        ...opt('bandwidthMHz', bw !== undefined && bw >= 0 && bw < CPSI_BW.length ? CPSI_BW[bw] : undefined),
        ...opt('rsrqDb', tenths(f[10], -50, 10)),
        ...opt('rsrpDbm', tenths(f[11], -200, 0)),
        ...opt('rssiDbm', tenths(f[12], -200, 0)),
        ...opt('rssnr', int(f[13])),
      },
    });
  }
  if (sys === 'NR5G_SA') {
    // NR5G_SA,<Op>,<MCC>-<MNC>,<TAC>,<SCellID>,<PCellID>,<Band>,<ARFCN>,<RSRP>,<RSRQ>,<SNR>
    if (f.length !== 11) return parseError(C, 'field-count', `NR5G_SA with ${f.length} fields`, line);
    return ok({
      mode: 'nr5g-sa',
      state,
      cell: {
        rat: 'nr',
        ...plmn(f[2]),
        ...opt('tac', hex(f[3])),
        ...opt('cellId', within(int(f[4]), 0, 2 ** 36 - 1)),
        ...opt('pci', within(int(f[5]), 0, 1007)),
        ...nrBand(cpsiBand(f[6])),
        ...opt('channel', within(int(f[7]), 0, 3300000)),
        ...opt('rsrpDbm', tenths(f[8], -200, 0)),
        ...opt('rsrqDb', tenths(f[9], -50, 30)),
        ...opt('sinrDb', tenths(f[10], -50, 60)),
      },
    });
  }
  if (sys === 'WCDMA') {
    // WCDMA,<Op>,<MCC>-<MNC>,<LAC>,<Cell ID>,<Frequency Band>,<PSC>,<Freq>,<SSC>,<EC/IO>,<RSCP>,<Qual>,<RxLev>,<TXPWR>
    if (f.length !== 14) return parseError(C, 'field-count', `WCDMA with ${f.length} fields`, line);
    const ecio = num(f[9]);
    const rscp = int(f[10]);
    const band = unq(f[5]);
    return ok({
      mode: 'umts',
      state,
      cell: {
        rat: 'umts',
        ...plmn(f[2]),
        ...opt('lac', hex(f[3])),
        ...opt('cellId', within(int(f[4]), 0, 0xfffffff)),
        ...(band !== '' ? { band } : {}),
        ...opt('pci', within(int(f[6]), 0, 511)),
        ...opt('channel', within(int(f[7]), 0, 20000)),
        // the manual prints magnitudes (Ec/Io 1.5 for −1.5 dB, RSCP 62 for −62 dBm)
        ...opt('ecioDb', ecio === undefined ? undefined : within(-Math.abs(ecio), -40, 0)),
        ...opt('rscpDbm', rscp === undefined ? undefined : within(-Math.abs(rscp), -140, 0)),
      },
    });
  }
  if (sys === 'GSM') {
    // GSM,<Op>,<MCC>-<MNC>,<LAC>,<Cell ID>,<ARFCN and band>,<RxLev>,<Track LO Adjust>,<C1-C2>
    if (f.length !== 9 && f.length !== 8) return parseError(C, 'field-count', `GSM with ${f.length} fields`, line);
    const m = /^(\d{1,4})\s*(.*)$/.exec(unq(f[5]));
    return ok({
      mode: 'gsm',
      state,
      cell: {
        rat: 'gsm',
        ...plmn(f[2]),
        ...opt('lac', hex(f[3])),
        ...opt('cellId', within(int(f[4]), 0, 0xffff)),
        ...opt('channel', m ? within(Number(m[1]), 0, 1023) : undefined),
        ...(m && m[2] !== '' ? { band: m[2]! } : {}),
        ...opt('rssiDbm', within(int(f[6]), -150, 0)),
      },
    });
  }
  return parseError(C, 'unknown-form', `system mode ${JSON.stringify(sys.slice(0, 20))}`, line);
}

/**
 * `AT+CPSI?`: one line (GSM, WCDMA, LTE, NR5G_SA, NO SERVICE) or, in EN-DC, an LTE line and an
 * NR5G_NSA line. Signal values of LTE/NR are in tenths (-850 = −85.0 dBm).
 */
export function parseCpsi(text: string): AtResult<ServingCellReport> {
  const C = '+CPSI';
  const ls = replyLines(text, C);
  if (E(ls)) return ls;
  const rows = prefixed(ls.value, '+CPSI:');
  if (rows.length === 0) return parseError(C, 'no-prefix', 'no +CPSI line', text);
  if (rows.length > 3) return parseError(C, 'field-count', `${rows.length} +CPSI lines`, text);
  let mode: ServingMode | undefined;
  let state: ServiceState = 'camped';
  const cells: CellInfo[] = [];
  for (const row of rows) {
    const r = cpsiLine(fields(row), row);
    if (E(r)) return r;
    if (r.value.cell) cells.push(r.value.cell);
    if (mode === undefined || r.value.mode === 'nr5g-nsa') mode = r.value.mode;
    if (r.value.mode !== 'nr5g-nsa') state = r.value.state;
  }
  if (mode === 'nr5g-nsa' && cells[0]?.rat !== 'lte') return parseError(C, 'unknown-form', 'NR5G_NSA without its LTE anchor', text);
  return ok({ source: '+CPSI', mode: mode!, state, cells });
}

// ---------------------------------------------------------------------------------------------
// Telit AT#RFSTS

/**
 * `AT#RFSTS`, one line whose layout depends on the RAT (told apart by the field count):
 * - LTE (16 or 17 fields): <PLMN>,<EARFCN>,<RSRP>,<RSSI>,<RSRQ>,<TAC>,[<RAC>,]<TXPWR>,<DRX>,<MM>,
 *   <RRC>,<CID>,<IMSI>,<NetNameAsc>,<SD>,<ABND>[,<SINR>] — LE910 V2/LM960 print <RAC>, LE910Cx
 *   prints <SINR> instead; the quoted <IMSI> shows which;
 * - WCDMA (19 + 3k fields): <PLMN>,<UARFCN>,<PSC>,<Ec/Io>,<RSCP>,<RSSI>,<LAC>,<RAC>,<TXPWR>,<DRX>,
 *   <MM>,<RRC>,<NOM>,<BLER>,<CID>,<IMSI>,<NetNameAsc>,<SD>,<nAST>[,<nUARFCN>,<nPSC>,<nEc/Io>]…;
 * - GSM (14 fields): <PLMN>,<ARFCN>,<RSSI>,<LAC>,<RAC>,<TXPWR>,<MM>,<RR>,<NOM>,<CID>,<IMSI>,
 *   <NetNameAsc>,<SD>,<ABND>.
 * <SINR> (0..250) is kept as sent in `sinrRaw`: we could not confirm its scale from the manual.
 */
export function parseRfsts(text: string): AtResult<ServingCellReport> {
  const C = '#RFSTS';
  const ls = replyLines(text, C);
  if (E(ls)) return ls;
  const row = prefixed(ls.value, '#RFSTS:')[0];
  if (row === undefined) return parseError(C, 'no-prefix', 'no #RFSTS line', text);
  const f = fields(row);
  const p = plmn(f[0]);
  const state: ServiceState = p.mcc === undefined || p.mcc === '000' ? 'no-service' : 'camped';
  const quoted = (i: number): boolean => (f[i] ?? '').startsWith('"');
  if (f.length === 16 || f.length === 17) {
    // the quoted <IMSI> follows the unquoted <CID>: field 12 (0-based 11) without <RAC>, 13 with it
    let hasRac: boolean;
    if (quoted(11) && !quoted(10)) hasRac = false;
    else if (quoted(12) && !quoted(11)) hasRac = true;
    else return parseError(C, 'unknown-form', 'LTE form without a quoted <IMSI> after <CID>', row);
    if (!hasRac && f.length === 17) return parseError(C, 'field-count', '17 fields without <RAC>', row);
    const k = hasRac ? 1 : 0;
    const sinrRaw = within(int(f[15 + k]), 0, 250);
    if (state === 'no-service') return ok({ source: '#RFSTS', mode: 'no-service', state, cells: [] });
    return ok({
      source: '#RFSTS',
      mode: 'lte',
      state,
      cells: [
        {
          rat: 'lte',
          ...p,
          ...opt('channel', within(int(f[1]), 0, 300000)),
          ...opt('rsrpDbm', within(int(f[2]), -200, 0)),
          ...opt('rssiDbm', within(int(f[3]), -200, 0)),
          ...opt('rsrqDb', within(int(f[4]), -50, 10)),
          ...opt('tac', hex(f[5])),
          ...opt('cellId', hex(f[10 + k])),
          ...lteBand(within(int(f[14 + k]), 1, 255 - 1)),
          ...opt('sinrRaw', sinrRaw),
        },
      ],
    });
  }
  if (f.length >= 19 && (f.length - 19) % 3 === 0 && f.length <= 19 + 3 * 8) {
    if (state === 'no-service') return ok({ source: '#RFSTS', mode: 'no-service', state, cells: [] });
    return ok({
      source: '#RFSTS',
      mode: 'umts',
      state,
      cells: [
        {
          rat: 'umts',
          ...p,
          ...opt('channel', within(int(f[1]), 0, 20000)),
          ...opt('pci', within(int(f[2]), 0, 511)),
          ...opt('ecioDb', within(num(f[3]), -40, 0)),
          ...opt('rscpDbm', within(int(f[4]), -200, 0)),
          ...opt('rssiDbm', within(int(f[5]), -200, 0)),
          ...opt('lac', hex(f[6])),
          ...opt('cellId', hex(f[14])),
        },
      ],
    });
  }
  if (f.length === 14) {
    if (state === 'no-service') return ok({ source: '#RFSTS', mode: 'no-service', state, cells: [] });
    return ok({
      source: '#RFSTS',
      mode: 'gsm',
      state,
      cells: [
        {
          rat: 'gsm',
          ...p,
          ...opt('channel', within(int(f[1]), 0, 1023)),
          ...opt('rssiDbm', within(int(f[2]), -200, 0)),
          ...opt('lac', hex(f[3])),
          ...opt('cellId', hex(f[9])),
        },
      ],
    });
  }
  return parseError(C, 'field-count', `${f.length} fields`, row);
}

// ---------------------------------------------------------------------------------------------
// Quectel AT+QENG="servingcell" (RM520N / RM5xxQ)

const QENG_STATES: Readonly<Record<string, ServiceState>> = { SEARCH: 'searching', LIMSRV: 'limited', NOCONN: 'idle', CONNECT: 'connected' };

export interface QengOptions {
  /**
   * LTE <SINR> unit. 'db' (default): RM5xx/RG5xx print dB. 'fifth-db': EC2x/EG2x print 0..250 in
   * fifths of a dB from −20 dB (parsers.ts parseQengServingCell keeps that reading).
   */
  readonly lteSinr?: 'db' | 'fifth-db';
}

function qengLte(f: string[], at: number, o: QengOptions): CellInfo {
  // <is_tdd>,<MCC>,<MNC>,<cellID>,<PCID>,<earfcn>,<freq_band_ind>,<UL_bw>,<DL_bw>,<TAC>,<RSRP>,<RSRQ>,<RSSI>,<SINR>,…
  const g = (i: number): string | undefined => f[at + i];
  const bw = int(g(8));
  const sinr = int(g(13));
  return {
    rat: 'lte',
    ...opt('mcc', int(g(1)) === undefined ? undefined : unq(g(1))),
    ...opt('mnc', int(g(2)) === undefined ? undefined : unq(g(2))),
    ...opt('cellId', hex(g(3))),
    ...opt('pci', within(int(g(4)), 0, 503)),
    ...opt('channel', within(int(g(5)), 0, 300000)),
    ...lteBand(within(int(g(6)), 1, 255)),
    ...opt('bandwidthMHz', bw !== undefined && bw >= 0 && bw < CPSI_BW.length ? CPSI_BW[bw] : undefined),
    ...opt('tac', hex(g(9))),
    ...opt('rsrpDbm', within(int(g(10)), -200, 0)),
    ...opt('rsrqDb', within(int(g(11)), -50, 10)),
    ...opt('rssiDbm', within(int(g(12)), -200, 0)),
    ...opt('sinrDb', o.lteSinr === 'fifth-db' ? (within(sinr, 0, 250) === undefined ? undefined : sinr! / 5 - 20) : within(sinr, -50, 60)),
  };
}

/** NR DL bandwidth code (38.101 channel bandwidths as Quectel numbers them) → MHz. */
const NR_BW = [5, 10, 15, 20, 25, 30, 40, 50, 60, 70, 80, 90, 100, 200, 400];

/**
 * `AT+QENG="servingcell"` on RM520N-class modules:
 * - `+QENG: "servingcell",<state>` alone (SEARCH, or the first line of EN-DC);
 * - SA: `+QENG: "servingcell",<state>,"NR5G-SA",<duplex>,<MCC>,<MNC>,<cellID>,<PCID>,<TAC>,<ARFCN>,
 *   <band>,<NR_DL_bandwidth>,<RSRP>,<RSRQ>,<SINR>,<scs>,<srxlev>`;
 * - EN-DC: then `+QENG: "LTE",<is_tdd>,<MCC>,…` and `+QENG: "NR5G-NSA",<MCC>,<MNC>,<PCID>,<RSRP>,
 *   <SINR>,<RSRQ>,<ARFCN>,<band>,<NR_DL_bandwidth>,<scs>` (note the SINR-before-RSRQ order);
 * - LTE: `+QENG: "servingcell",<state>,"LTE",<is_tdd>,<MCC>,…,<SINR>,<CQI>,<tx_power>,<srxlev>`;
 * - WCDMA / GSM: the older single-line forms.
 */
export function parseQeng(text: string, o: QengOptions = {}): AtResult<ServingCellReport> {
  const C = '+QENG';
  const ls = replyLines(text, C);
  if (E(ls)) return ls;
  const rows = prefixed(ls.value, '+QENG:').map(fields);
  const head = rows.find((f) => unq(f[0]).toLowerCase() === 'servingcell');
  if (head === undefined) return parseError(C, 'no-prefix', 'no +QENG: "servingcell" line', text);
  const st = unq(head[1]).toUpperCase();
  const state = QENG_STATES[st];
  if (state === undefined) return parseError(C, 'unknown-form', `state ${JSON.stringify(st.slice(0, 20))}`, text);
  const rat = unq(head[2]).toUpperCase();
  const cells: CellInfo[] = [];
  let mode: ServingMode;
  if (head.length <= 2) {
    const lte = rows.find((f) => unq(f[0]).toUpperCase() === 'LTE');
    const nsa = rows.find((f) => unq(f[0]).toUpperCase() === 'NR5G-NSA');
    if (lte === undefined && nsa === undefined) return ok({ source: '+QENG', mode: 'no-service', state: st === 'SEARCH' ? 'searching' : state, cells: [] });
    if (lte !== undefined) {
      if (lte.length < 15) return parseError(C, 'field-count', `LTE line with ${lte.length} fields`, text);
      cells.push(qengLte(lte, 1, o));
    }
    if (nsa !== undefined) {
      if (nsa.length < 10) return parseError(C, 'field-count', `NR5G-NSA line with ${nsa.length} fields`, text);
      const bw = int(nsa[9]);
      cells.push({
        rat: 'nr',
        ...opt('mcc', int(nsa[1]) === undefined ? undefined : unq(nsa[1])),
        ...opt('mnc', int(nsa[2]) === undefined ? undefined : unq(nsa[2])),
        ...opt('pci', within(int(nsa[3]), 0, 1007)),
        ...opt('rsrpDbm', within(int(nsa[4]), -200, 0)),
        ...opt('sinrDb', within(int(nsa[5]), -50, 60)),
        ...opt('rsrqDb', within(int(nsa[6]), -50, 30)),
        ...opt('channel', within(int(nsa[7]), 0, 3300000)),
        ...nrBand(within(int(nsa[8]), 1, 1024)),
        ...opt('bandwidthMHz', bw !== undefined && bw >= 0 && bw < NR_BW.length ? NR_BW[bw] : undefined),
      });
    }
    mode = nsa !== undefined ? 'nr5g-nsa' : 'lte';
    if (mode === 'nr5g-nsa' && lte === undefined) return parseError(C, 'unknown-form', 'NR5G-NSA without its LTE anchor', text);
  } else if (rat === 'NR5G-SA') {
    if (head.length < 15) return parseError(C, 'field-count', `NR5G-SA with ${head.length} fields`, text);
    const bw = int(head[11]);
    mode = 'nr5g-sa';
    cells.push({
      rat: 'nr',
      ...opt('mcc', int(head[4]) === undefined ? undefined : unq(head[4])),
      ...opt('mnc', int(head[5]) === undefined ? undefined : unq(head[5])),
      ...opt('cellId', hex(head[6])),
      ...opt('pci', within(int(head[7]), 0, 1007)),
      ...opt('tac', hex(head[8])),
      ...opt('channel', within(int(head[9]), 0, 3300000)),
      ...nrBand(within(int(head[10]), 1, 1024)),
      ...opt('bandwidthMHz', bw !== undefined && bw >= 0 && bw < NR_BW.length ? NR_BW[bw] : undefined),
      ...opt('rsrpDbm', within(int(head[12]), -200, 0)),
      ...opt('rsrqDb', within(int(head[13]), -50, 30)),
      ...opt('sinrDb', within(int(head[14]), -50, 60)),
    });
  } else if (rat === 'LTE') {
    if (head.length < 17) return parseError(C, 'field-count', `LTE with ${head.length} fields`, text);
    mode = 'lte';
    cells.push(qengLte(head, 3, o));
  } else if (rat === 'WCDMA') {
    // <MCC>,<MNC>,<LAC>,<cellID>,<uarfcn>,<PSC>,<RAC>,<RSCP>,<ecio>,…
    if (head.length < 12) return parseError(C, 'field-count', `WCDMA with ${head.length} fields`, text);
    mode = 'umts';
    cells.push({
      rat: 'umts',
      ...opt('mcc', int(head[3]) === undefined ? undefined : unq(head[3])),
      ...opt('mnc', int(head[4]) === undefined ? undefined : unq(head[4])),
      ...opt('lac', hex(head[5])),
      ...opt('cellId', hex(head[6])),
      ...opt('channel', within(int(head[7]), 0, 20000)),
      ...opt('pci', within(int(head[8]), 0, 511)),
      ...opt('rscpDbm', within(int(head[10]), -200, 0)),
      ...opt('ecioDb', within(int(head[11]), -40, 0)),
    });
  } else if (rat === 'GSM') {
    // <MCC>,<MNC>,<LAC>,<cellid>,<bsic>,<arfcn>,<band>,<rxlev>,…
    if (head.length < 11) return parseError(C, 'field-count', `GSM with ${head.length} fields`, text);
    mode = 'gsm';
    cells.push({
      rat: 'gsm',
      ...opt('mcc', int(head[3]) === undefined ? undefined : unq(head[3])),
      ...opt('mnc', int(head[4]) === undefined ? undefined : unq(head[4])),
      ...opt('lac', hex(head[5])),
      ...opt('cellId', hex(head[6])),
      ...opt('channel', within(int(head[8]), 0, 1023)),
      ...opt('rssiDbm', within(int(head[10]), -200, 0)),
    });
  } else return parseError(C, 'unknown-form', `RAT ${JSON.stringify(rat.slice(0, 20))}`, text);
  return ok({ source: '+QENG', mode, state, cells });
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

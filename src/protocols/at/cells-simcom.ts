import { fields, hex, int, num, ok, opt, parseError, prefixed, replyLines, unq, type AtResult } from './result.js';
import { E, lteBand, nrBand, within, plmn, type ServingMode, type ServiceState, type CellInfo, type ServingCellReport , CPSI_BW } from './cells-report.js';

// ---------------------------------------------------------------------------------------------
// SIMCom AT+CPSI?


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

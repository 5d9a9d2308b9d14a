import { fields, hex, int, ok, opt, parseError, prefixed, replyLines, unq, type AtResult } from './result.js';
import { E, lteBand, nrBand, within, type ServingMode, type ServiceState, type CellInfo, type ServingCellReport , CPSI_BW } from './cells-report.js';

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

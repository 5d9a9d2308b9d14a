import { fields, hex, int, num, ok, opt, parseError, prefixed, replyLines, type AtResult } from './result.js';
import { E, lteBand, within, plmn, type ServiceState, type ServingCellReport } from './cells-report.js';

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

import { hex, int, num, ok, opt, parseError, replyLines, type AtResult } from './result.js';
import { E, lteBand, nrBand, within, plmn, type ServingMode, type ServiceState, type CellInfo, type ServingCellReport } from './cells-report.js';

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

import { parseCpsi, parseGstatus, parseQeng, parseRfsts, type ServingCellReport } from './cells.js';
import type { AtResult } from './result.js';
import { parseCesqExtended } from './threegpp.js';

/**
 * Which command reads the serving cell on which modem family: a pure table the modem service
 * consults (it owns the port; this file only names the command and the parser). Identify the
 * family once from `AT+CGMI` (or QMI DMS manufacturer) and `AT+CGMM`, then ask
 * `servingCellQuery(family)` each signal refresh; a family with no vendor command falls back to
 * 27.007 `+CESQ` (signal only: no band, no cell id).
 */

export type ModemFamily = 'quectel' | 'quectel-ec2x' | 'sierra' | 'simcom' | 'telit' | 'generic';

export interface ServingCellQuery {
  /** The exact command line to send (without CR). */
  readonly command: string;
  /** How long to give it: !GSTATUS is slow on some firmware. */
  readonly timeoutMs: number;
  readonly parse: (text: string) => AtResult<ServingCellReport>;
}

/** +CESQ as a serving-cell report: the RAT follows from which fields are known; no band. */
export function parseCesqAsReport(text: string): AtResult<ServingCellReport> {
  const r = parseCesqExtended(text);
  if (!r.ok) return r;
  const s = r.value;
  if (s.nr && !s.lte) return { ok: true, value: { source: '+CESQ', mode: 'nr5g-sa', state: 'camped', cells: [{ rat: 'nr', ...s.nr }] } };
  if (s.lte) {
    const cells = [{ rat: 'lte' as const, ...s.lte }, ...(s.nr ? [{ rat: 'nr' as const, ...s.nr }] : [])];
    return { ok: true, value: { source: '+CESQ', mode: s.nr ? 'nr5g-nsa' : 'lte', state: 'camped', cells } };
  }
  if (s.umts) return { ok: true, value: { source: '+CESQ', mode: 'umts', state: 'camped', cells: [{ rat: 'umts', ...s.umts }] } };
  if (s.gsm) return { ok: true, value: { source: '+CESQ', mode: 'gsm', state: 'camped', cells: [{ rat: 'gsm', rssiDbm: s.gsm.rssiDbm }] } };
  return { ok: true, value: { source: '+CESQ', mode: 'no-service', state: 'no-service', cells: [] } };
}

export const SERVING_CELL_QUERIES: Readonly<Record<ModemFamily, ServingCellQuery>> = {
  quectel: { command: 'AT+QENG="servingcell"', timeoutMs: 3000, parse: (t) => parseQeng(t, { lteSinr: 'db' }) },
  'quectel-ec2x': { command: 'AT+QENG="servingcell"', timeoutMs: 3000, parse: (t) => parseQeng(t, { lteSinr: 'fifth-db' }) },
  sierra: { command: 'AT!GSTATUS?', timeoutMs: 5000, parse: parseGstatus },
  simcom: { command: 'AT+CPSI?', timeoutMs: 3000, parse: parseCpsi },
  telit: { command: 'AT#RFSTS', timeoutMs: 3000, parse: parseRfsts },
  generic: { command: 'AT+CESQ', timeoutMs: 3000, parse: parseCesqAsReport },
};

/**
 * The family from the manufacturer (and model) strings. Quectel's LTE-only EC2x/EG2x/EP06/BG9x
 * report LTE SINR in fifths of a dB; the 5G RM5xx/RG5xx in dB.
 */
export function modemFamily(manufacturer: string, model = ''): ModemFamily {
  const m = manufacturer.trim().toLowerCase();
  const mo = model.trim().toUpperCase();
  if (m.includes('quectel')) return /^(EC2|EG2|EG9|EM0|EP0|BG9|EC200)/.test(mo) ? 'quectel-ec2x' : 'quectel';
  if (m.includes('sierra')) return 'sierra';
  if (m.includes('simcom') || m.includes('sim tech')) return 'simcom';
  if (m.includes('telit')) return 'telit';
  return 'generic';
}

export function servingCellQuery(family: ModemFamily): ServingCellQuery {
  return SERVING_CELL_QUERIES[family];
}

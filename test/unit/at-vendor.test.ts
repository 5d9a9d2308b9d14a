import t from 'tap';
import { FORMS, type FormFixture } from '../fixtures/at-vendor-forms.js';
import {
  AT_PARSE_REASONS,
  SERVING_CELL_QUERIES,
  decodeGprsTimer2,
  decodeGprsTimer3,
  modemFamily,
  parseCereg,
  parseCesq,
  parseCesqExtended,
  parseCgpaddr,
  parseCgpaddrAll,
  parseCpin,
  parseCpinState,
  parseCpsi,
  parseGstatus,
  parseQeng,
  parseRegistration,
  parseRfsts,
  pinDecision,
  primarySignal,
  servingCellQuery,
  unwrap,
  type AtResult,
} from '../../src/protocols/at/index.js';
import { isDuocellError } from '../../src/core/errors.js';

const PARSE: Record<FormFixture['parser'], (s: string) => AtResult<unknown>> = {
  gstatus: parseGstatus,
  cpsi: parseCpsi,
  rfsts: parseRfsts,
  qeng: (s) => parseQeng(s),
  cereg: (s) => parseCereg(s),
  cesq: parseCesqExtended,
  cgpaddr: parseCgpaddrAll,
  cpin: parseCpinState,
};

/** Every number anywhere in v is finite. */
function finite(v: unknown): boolean {
  if (typeof v === 'number') return Number.isFinite(v);
  if (v !== null && typeof v === 'object') return Object.values(v).every(finite);
  return true;
}

t.test('every documented form parses to its expected value (or its expected error)', async (t) => {
  const kinds = new Set(FORMS.map((f) => f.parser));
  t.equal(kinds.size, 8, 'fixtures cover all eight parsers');
  for (const f of FORMS) {
    t.ok(f.source.length > 10, `${f.name}: names its source`);
    const r = PARSE[f.parser](f.text);
    if (f.error !== undefined) {
      t.equal(r.ok, false, `${f.name}: rejected`);
      if (!r.ok) {
        t.equal(r.code, 'DC_AT_PARSE', `${f.name}: code`);
        t.equal(r.reason, f.error, `${f.name}: reason`);
      }
      continue;
    }
    if (!r.ok) {
      t.fail(`${f.name}: ${r.message}`);
      continue;
    }
    t.match(r.value, f.expect!, f.name);
    t.ok(finite(r.value), `${f.name}: no NaN or Infinity`);
  }
});

t.test('each vendor has a fixture for every form the brief names', async (t) => {
  const names = FORMS.map((f) => f.name).join('\n');
  for (const want of [/GSTATUS|Sierra.*LTE/, /Sierra.*ENDC/, /Sierra.*NR5G SA/, /Sierra.*WCDMA/, /SIM7600.*LTE/, /SIM7600.*GSM/, /SIM7600.*WCDMA/, /NR5G_SA/, /EN-DC \(LTE line \+ NR5G_NSA/, /NO SERVICE/, /Telit.*LTE/, /Telit.*WCDMA/, /RM520N.*NR5G-SA/, /RM520N.*EN-DC/, /RM520N.*LTE only/, /SEARCH/, /LIMSRV/, /n=3/, /n=4/, /9 fields/, /space/, /16-octet/, /NOT READY/, /NOT INSERTED/])
    t.match(names, want, String(want));
});

t.test('GPRS Timer 2 and 3 decode every unit (24.008 10.5.7.4, 10.5.7.4a)', async (t) => {
  const t2 = (b: string): number | undefined => unwrap(decodeGprsTimer2(b)).seconds;
  const t3 = (b: string): number | undefined => unwrap(decodeGprsTimer3(b)).seconds;
  t.equal(t2('00000101'), 10, 'T2 unit 000: 2 s');
  t.equal(t2('00100101'), 300, 'T2 unit 001: 1 min');
  t.equal(t2('01000101'), 1800, 'T2 unit 010: decihours');
  t.equal(t2('01100011'), 180, 'T2 other units: 1 min');
  t.equal(unwrap(decodeGprsTimer2('11100000')).deactivated, true, 'T2 111: deactivated');
  t.equal(t2('11111111'), undefined, 'deactivated has no seconds');
  t.equal(t3('00000011'), 1800, 'T3 000: 10 min');
  t.equal(t3('00100011'), 3 * 3600, 'T3 001: 1 h');
  t.equal(t3('01000011'), 3 * 36000, 'T3 010: 10 h');
  t.equal(t3('01100011'), 6, 'T3 011: 2 s');
  t.equal(t3('10000011'), 90, 'T3 100: 30 s');
  t.equal(t3('10100011'), 180, 'T3 101: 1 min');
  t.equal(t3('11000011'), 3 * 1152000, 'T3 110: 320 h');
  t.equal(unwrap(decodeGprsTimer3('11111111')).deactivated, true, 'T3 111: deactivated');
  t.equal(unwrap(decodeGprsTimer3('"00101010"')).seconds, 36000, 'quotes allowed');
  for (const bad of ['', '0010101', '001010101', '0010a010', '00 10101'])
    t.match(decodeGprsTimer3(bad), { ok: false, code: 'DC_AT_PARSE', reason: 'bad-field' }, `rejects ${JSON.stringify(bad)}`);
});

t.test('+CEREG: the read response with n and the URC without, forms of every length', async (t) => {
  t.match(unwrap(parseCereg('+CEREG: 0,1')), { n: 0, stat: 1, registered: true, unsolicited: false });
  t.match(unwrap(parseCereg('+CEREG: 2')), { stat: 2, state: 'SEARCHING', unsolicited: true });
  t.match(unwrap(parseCereg('+CEREG: 2,1,"1A2B","01A2D001",7')), { n: 2, tac: 0x1a2b, ci: 0x01a2d001, act: 7, accessTech: 'LTE' });
  t.match(unwrap(parseCereg('+CEREG: 1,"1A2B","01A2D001",7')), { stat: 1, tac: 0x1a2b, unsolicited: true });
  // the caller may say which it is: a URC whose TAC looks like a small number
  t.match(unwrap(parseCereg('+CEREG: 1,0001,00000002,7', { solicited: false })), { stat: 1, tac: 1, ci: 2, unsolicited: true });
  t.match(unwrap(parseCereg('+CEREG: 4,0', { solicited: true })), { n: 4, stat: 0, state: 'IDLE' });
  t.match(parseCereg('+CEREG: 1,2,3,4,5,6,7,8,9,10,11'), { ok: false, reason: 'field-count' });
  t.match(parseCereg('+CEREG: 4,12', { solicited: true }), { ok: false, reason: 'out-of-range' });
  t.match(parseCereg('+CEREG: 4,1,"XYZ","1",7'), { ok: false, reason: 'bad-field' });
  t.match(parseCereg('+CEREG: 3,3,"1A2B","01A2D001",7,2,15'), { ok: false, reason: 'out-of-range' }, 'cause_type is 0 or 1');
  t.match(parseCereg('OK'), { ok: false, reason: 'no-prefix' });
  // nRF9160 URC with n=5 while not registered: empty timers stay absent
  const idle = unwrap(parseCereg('+CEREG: 0,"FFFF","FFFFFFFF",9,0,0,,'));
  t.match(idle, { stat: 0, registered: false, tac: 0xffff, causeType: 0, rejectCause: 0, unsolicited: true });
  t.equal(idle.activeTime, undefined);
  t.notOk('periodicTau' in idle, 'no key for an empty field');
});

t.test('the throwing parseRegistration reads the new CEREG forms as form 14 (URCs reach the modem manager)', async (t) => {
  const r = parseRegistration('+CEREG: 4,1,"0A0B","01020304",9,,,"00100001","00111000"');
  t.match(r, { command: 'CEREG', n: 4, stat: 1, registered: true, lacOrTac: 0x0a0b, ci: 0x01020304, form: 14 });
  t.equal(r.periodicTau?.seconds, 86400);
  const u = parseRegistration('+CEREG: 3,"1A2B","01A2D001",7,0,15');
  t.match(u, { stat: 3, registered: false, rejectCause: 15, unsolicited: true, form: 14 });
  // the older ModemManager forms still read as before
  t.equal(parseRegistration('+CEREG: 2,1,"1F00","79D903","0E",7').form, 11);
  t.throws(() => parseRegistration('+CEREG: 4,1,"0A0B","01020304",9,,,"0010001","00111000"'), { code: 'DC_AT_PARSE' });
});

t.test('legacy throwing parsers take the new forms', async (t) => {
  const c = parseCesq('+CESQ: 99,99,255,255,24,62,45,70,80');
  t.same(c.lte, { rsrq_db: -8, rsrp_dbm: -79 });
  t.same(c.nr, { rsrq_db: -21, rsrp_dbm: -87, sinr_db: 16.5 });
  t.equal(parseCesq('+CESQ: 99,99,255,255,20,80').nr, null);
  // the legacy reading stays lenient: Telit LE910 V2 prints RSCP in tenths (940), taken as 'not known'
  t.equal(parseCesq('+CESQ: 99,99,940,30,255,255').umts, null);
  t.same(parseCgpaddr('+CGPADDR: 1,"10.45.0.5 32.1.13.184.0.0.0.0.0.0.0.0.0.0.0.1"'), [{ cid: 1, addresses: ['10.45.0.5', '2001:db8::1'] }]);
  t.equal(parseCpin('+CPIN: NOT READY').lock, 'NOT_READY');
  t.equal(parseCpin('+CPIN: NOT INSERTED').lock, 'NOT_INSERTED');
  try {
    parseCgpaddr('+CGPADDR: 1,"1.2.3"');
    t.fail('a 3-part address is refused');
  } catch (e) {
    t.ok(isDuocellError(e) && e.code === 'DC_AT_PARSE', 'refused with DC_AT_PARSE');
  }
});

t.test('PIN safety: a PIN is sent only in SIM PIN, once, with enough attempts known', async (t) => {
  const st = (text: string) => unwrap(parseCpinState(text));
  const good = { pinConfigured: true, retriesLeft: 3 };
  t.same(pinDecision(st('+CPIN: SIM PIN'), good), { action: 'send-pin' });
  t.match(pinDecision(st('+CPIN: SIM PIN'), { ...good, retriesLeft: 1 }), { action: 'stop', code: 'DC_MODEM_PIN_UNSAFE' });
  t.match(pinDecision(st('+CPIN: SIM PIN'), { pinConfigured: true }), { action: 'stop', code: 'DC_MODEM_PIN_UNSAFE' }, 'unknown attempts');
  t.match(pinDecision(st('+CPIN: SIM PIN'), { ...good, alreadySent: true }), { action: 'stop', code: 'DC_MODEM_PIN_UNSAFE' }, 'never twice');
  t.match(pinDecision(st('+CPIN: SIM PIN'), { pinConfigured: false, retriesLeft: 3 }), { action: 'stop', code: 'DC_MODEM_PIN_REQUIRED' });
  // every other state: never send-pin, whatever the policy
  const others = ['+CPIN: READY', '+CPIN: NOT READY', '+CPIN: NOT INSERTED', '+CPIN: SIM PUK', '+CPIN: SIM PIN2', '+CPIN: SIM PUK2', '+CPIN: PH-SIM PIN', '+CPIN: PH-NET PIN', '+CME ERROR: 10', '+CME ERROR: 13', '+CME ERROR: SIM busy', '+CME ERROR: 15'];
  for (const o of others) t.not(pinDecision(st(o), good).action, 'send-pin', o);
  t.match(pinDecision(st('+CPIN: NOT READY'), good), { action: 'wait' });
  t.match(pinDecision(st('+CPIN: NOT INSERTED'), good), { action: 'stop', code: 'DC_MODEM_SIM' });
  t.match(pinDecision(st('+CPIN: SIM PUK'), good), { action: 'stop', code: 'DC_MODEM_SIM' });
  // an unexpected reply is an error, so the caller has no state to act on
  t.match(parseCpinState('+CPIN: PIN PLEASE'), { ok: false, reason: 'unknown-form' });
  t.match(parseCpinState('+CME ERROR: 3'), { ok: false, reason: 'unknown-form' });
  t.match(parseCpinState('garbage'), { ok: false, reason: 'no-prefix' });
});

t.test('vendor table: family from CGMI/CGMM, one command and parser per family', async (t) => {
  t.equal(modemFamily('Quectel', 'RM520N-GL'), 'quectel');
  t.equal(modemFamily('Quectel', 'EC25'), 'quectel-ec2x');
  t.equal(modemFamily('Sierra Wireless, Incorporated', 'EM7455'), 'sierra');
  t.equal(modemFamily('SIMCOM INCORPORATED', 'SIM7600E-H'), 'simcom');
  t.equal(modemFamily('Telit', 'LM960A18'), 'telit');
  t.equal(modemFamily('u-blox'), 'generic');
  t.equal(servingCellQuery('sierra').command, 'AT!GSTATUS?');
  t.equal(servingCellQuery('simcom').command, 'AT+CPSI?');
  t.equal(servingCellQuery('telit').command, 'AT#RFSTS');
  t.equal(servingCellQuery('quectel').command, 'AT+QENG="servingcell"');
  t.equal(servingCellQuery('generic').command, 'AT+CESQ');
  // Quectel EC2x keeps the fifths-of-a-dB SINR reading, RM5xx reads dB
  const lte = '+QENG: "servingcell","NOCONN","LTE","FDD",262,01,1A2D001,123,1300,3,5,5,A1B2,-95,-11,-65,120,9,-,30';
  t.equal(unwrap(SERVING_CELL_QUERIES['quectel-ec2x'].parse(lte)).cells[0]!.sinrDb, 4);
  t.equal(unwrap(SERVING_CELL_QUERIES.quectel.parse(lte)).cells[0]!.sinrDb, undefined, '120 dB is out of range: left out');
  // the generic family: +CESQ → a report without band
  t.match(unwrap(SERVING_CELL_QUERIES.generic.parse('+CESQ: 99,99,255,255,24,62,45,70,80')), { source: '+CESQ', mode: 'nr5g-nsa', cells: [{ rat: 'lte', rsrpDbm: -79 }, { rat: 'nr', sinrDb: 16.5 }] });
  t.match(unwrap(SERVING_CELL_QUERIES.generic.parse('+CESQ: 99,99,255,255,255,255')), { mode: 'no-service', cells: [] });
  // every family's parser answers garbage with an error, not a throw
  for (const [fam, q] of Object.entries(SERVING_CELL_QUERIES)) t.match(q.parse('ERROR'), { ok: false, code: 'DC_AT_PARSE' }, fam);
});

t.test('primarySignal: what the modem service shows (EN-DC: anchor figures, both bands)', async (t) => {
  const endc = FORMS.find((f) => f.name.startsWith('Quectel RM520N-GL RM520NGLAAR03A03M4G EN-DC'))!;
  t.same(primarySignal(unwrap(parseQeng(endc.text))), { rat: 'lte', rsrp: -75, rsrq: -7, snr: 25, rssi: -48, band: 'B3+n1', bandNumber: 3 });
  const sa = FORMS.find((f) => f.name.startsWith('SIMCom SIM8200EA-M2 NR5G_SA'))!;
  t.match(primarySignal(unwrap(parseCpsi(sa.text))), { rat: '5gnr', rsrp: -81.2, band: 'n78' });
  t.equal(primarySignal(unwrap(parseQeng('+QENG: "servingcell","SEARCH"'))), undefined);
});

t.test('bad input: too long, empty, wrong types of field — a coded error, never a throw', async (t) => {
  const long = 'A'.repeat(10_000);
  const parsers = Object.entries(PARSE);
  for (const [name, p] of parsers) {
    for (const input of ['', long, `+CEREG: ${long}`, `!GSTATUS:\r\nSystem mode: ${long}`, '\u0000\u00ff,,,,"', '+QENG: "servingcell"', '+CPSI: ,,,,,,,,,,,,,', '#RFSTS: ,,,,,,,,,,,,,,,']) {
      let r: AtResult<unknown>;
      try {
        r = p(input);
      } catch (e) {
        t.fail(`${name} threw on ${JSON.stringify(input.slice(0, 40))}: ${String(e)}`);
        continue;
      }
      if (!r.ok) t.ok((AT_PARSE_REASONS as readonly string[]).includes(r.reason), `${name}: reason ${r.reason} is listed`);
      else t.ok(finite(r.value), `${name}: finite`);
    }
    const r = p(long);
    t.match(r, { ok: false, code: 'DC_AT_PARSE' }, `${name}: a 10,000-character line is refused`);
  }
  t.match(parseGstatus(`System mode: LTE\r\n${'x'.repeat(2000)}`), { ok: false, reason: 'too-long' });
  t.match(parseCpsi('x'.repeat(20_000)), { ok: false, reason: 'too-long' });
});

import t from 'tap';
import { readFileSync } from 'node:fs';
import {
  parseRegistration,
  parseCpin,
  parseCesq,
  parseCops,
  parseCgdcont,
  parseSysinfoex,
  parseHcsq,
  parseCsq,
  parseCgpaddr,
  parseQengServingCell,
} from '../../src/protocols/at/parsers.js';
import { isDuocellError } from '../../src/core/errors.js';

interface Fixture {
  command: string;
  response_text: string;
  expected_parse: any;
  source: string;
}
const fixtures = (JSON.parse(readFileSync(new URL('../fixtures/vectors/at-fixtures.json', import.meta.url), 'utf8')) as {
  fixtures: Fixture[];
}).fixtures;

const hex = (n: number): string => `0x${n.toString(16)}`;

t.test('every ModemManager fixture parses to the expected result', async (t) => {
  t.equal(fixtures.length, 50, 'all 50 fixtures present');
  let checked = 0;
  for (const f of fixtures) {
    const name = `${f.command} ${JSON.stringify(f.response_text)}`;
    const e = f.expected_parse;
    const cmd = f.command;
    if (/^\+C(5G|E|G)?REG/.test(cmd)) {
      const r = parseRegistration(f.response_text);
      t.same(
        { state: r.state, stat: r.stat, lac: r.lacOrTac, lacHex: hex(r.lacOrTac), ci: r.ci, ciHex: hex(r.ci), tech: r.accessTech, form: r.form },
        { state: e.state, stat: e.state_3gpp_stat, lac: e.lac_or_tac, lacHex: e.lac_or_tac_hex, ci: e.ci, ciHex: e.ci_hex, tech: e.access_tech, form: e.mm_regex_index },
        name,
      );
      t.equal(r.unsolicited, cmd.includes('unsolicited') ? r.n === undefined : r.n === undefined, `${name}: <n> presence consistent`);
    } else if (cmd === '+CPIN?') {
      t.equal(parseCpin(f.response_text, e.expect_prefix).lock, e.lock, name);
    } else if (cmd === '+CESQ') {
      const r = parseCesq(f.response_text);
      for (const k of ['rxlev', 'ber', 'rscp_level', 'ecn0_level', 'rsrq_level', 'rsrp_level'] as const) t.equal(r[k], e[k], `${name} ${k}`);
      for (const rat of ['gsm', 'umts', 'lte'] as const) {
        if (e[rat] === null) t.equal(r[rat], null, `${name} ${rat} absent`);
        else for (const [k, v] of Object.entries(e[rat] as Record<string, number>)) t.ok(Math.abs((r[rat] as any)[k] - v) <= 0.1, `${name} ${rat}.${k}=${v}`);
      }
    } else if (cmd === '+COPS?') {
      const r = parseCops(f.response_text);
      t.same({ mode: r.mode, format: r.format, operator: r.operator, access_tech: r.accessTech }, e, name);
    } else if (cmd === '+CGDCONT?') {
      t.same(parseCgdcont(f.response_text), e, name);
    } else if (cmd === '^SYSINFOEX') {
      const r = parseSysinfoex(f.response_text);
      t.same({ srv_status: r.srv_status, srv_domain: r.srv_domain, roam_status: r.roam_status, sim_state: r.sim_state, sys_mode: r.sys_mode, sys_submode: r.sys_submode }, e, name);
      t.equal(r.sys_mode_name, 'WCDMA');
      t.equal(r.sys_submode_name, 'HSPA+');
    } else if (cmd === '^HCSQ') {
      const r = parseHcsq(f.response_text);
      t.same({ ok: r.ok, access_tech: r.access_tech, value1_5: r.value1_5 }, e, name);
    } else {
      t.fail(`fixture for ${cmd} not handled`);
      continue;
    }
    checked++;
  }
  t.equal(checked, fixtures.length, 'every fixture checked');
});

t.test('+CSQ', async (t) => {
  t.same(parseCsq('+CSQ: 20,99'), { rssi: 20, ber: 99, rssiDbm: -73, quality: 65 });
  t.same(parseCsq('\r\n+CSQ: 99,99\r\n'), { rssi: 99, ber: 99, quality: 0 });
  t.throws(() => parseCsq('+CSQ: 20'), { code: 'DC_AT_PARSE' });
  t.throws(() => parseCsq('+CSQ: 120,0'), { code: 'DC_AT_PARSE' });
});

t.test('+CGPADDR: IPv4, IPv6 textual and dotted-16 forms', async (t) => {
  t.same(parseCgpaddr('+CGPADDR: 1,"10.64.12.7"'), [{ cid: 1, addresses: ['10.64.12.7'] }]);
  t.same(parseCgpaddr('+CGPADDR: 1,"10.1.2.3","32.1.13.184.0.0.0.0.0.0.0.0.0.0.0.1"\r\n+CGPADDR: 2,"0.0.0.0"'), [
    { cid: 1, addresses: ['10.1.2.3', '2001:db8::1'] },
    { cid: 2, addresses: [] },
  ]);
  t.same(parseCgpaddr('+CGPADDR: 3,"2001:DB8::5"'), [{ cid: 3, addresses: ['2001:db8::5'] }]);
  t.throws(() => parseCgpaddr('+CGPADDR: 1,"banana"'), { code: 'DC_AT_PARSE' });
  t.throws(() => parseCgpaddr('OK'), { code: 'DC_AT_PARSE' });
});

t.test('Quectel EC25 +QENG="servingcell"', async (t) => {
  // EC25-E, LTE band 3 idle (layout from the Quectel EC2x AT manual)
  const lte = parseQengServingCell('+QENG: "servingcell","NOCONN","LTE","FDD",262,01,1A2D001,123,1300,3,5,5,A1B2,-95,-11,-65,120,9,-,30');
  t.equal(lte.rat, 'LTE');
  t.equal(lte.state, 'NOCONN');
  t.equal(lte.band, 3);
  t.equal(lte.rsrp, -95);
  t.equal(lte.rsrq, -11);
  t.equal(lte.rssi, -65);
  t.equal(lte.sinr, 4, 'SINR 120/5 − 20 = 4 dB');
  t.equal(lte.tac, 0xa1b2);
  t.equal(lte.cellId, 0x1a2d001);
  t.equal(lte.mcc, 262);
  t.same(parseQengServingCell('+QENG: "servingcell","SEARCH"'), { state: 'SEARCH' });
  const w = parseQengServingCell('+QENG: "servingcell","NOCONN","WCDMA",460,01,A4E0,5B3E07,10713,289,1,-85,-6,-,-,-,-,-');
  t.equal(w.rscp, -85);
  t.equal(w.lac, 0xa4e0);
  t.throws(() => parseQengServingCell('+QENG: "neighbourcell intra","LTE"'), { code: 'DC_AT_PARSE' });
  t.throws(() => parseQengServingCell('+QENG: "servingcell","NOCONN","LTE","FDD"'), { code: 'DC_AT_PARSE' });
});

t.test('registration: other documented forms and bad input', async (t) => {
  const r = parseRegistration('+CEREG: 1,"00C3","0000D8FA",7');
  t.equal(r.lacOrTac, 0xc3);
  t.equal(r.accessTech, 'LTE');
  t.equal(r.registered, true);
  const s = parseRegistration('+CEREG: 2,"00C3","01","0000D8FA",7');
  t.equal(s.form, 10);
  t.equal(s.rac, 1);
  t.equal(s.state, 'SEARCHING');
  t.equal(parseRegistration('+CREG: 0').registered, false);
  for (const bad of ['+CREG: ', '+CREG: 12', '+CREG: x,1', '+COPS: 0', '+CREG: 1,1,1,1,1,1,1', 'garbage']) {
    let err: unknown;
    try {
      parseRegistration(bad);
    } catch (e) {
      err = e;
    }
    t.ok(isDuocellError(err, 'DC_AT_PARSE') && err.origin === 'local', bad);
  }
});

t.test('other parsers reject malformed replies with DC_AT_PARSE', async (t) => {
  const cases: [string, () => unknown][] = [
    ['cpin', () => parseCpin('+CPIN: BANANA')],
    ['cpin prefix', () => parseCpin('SIM PIN')],
    ['cesq', () => parseCesq('+CESQ: 1,2,3')],
    ['cops', () => parseCops('+COPS: 1,0')],
    ['sysinfoex', () => parseSysinfoex('^SYSINFOEX:2,4')],
    ['hcsq', () => parseHcsq('^HCSQ: "LTE",a')],
    ['cgdcont', () => parseCgdcont('+CGDCONT: x,"IP"')],
  ];
  for (const [n, f] of cases) t.throws(f, { code: 'DC_AT_PARSE' }, n);
  t.same(parseCops('+COPS: 0'), { mode: 0, accessTech: 'UNKNOWN' });
});

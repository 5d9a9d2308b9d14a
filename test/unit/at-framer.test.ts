import t from 'tap';
import { AtFramer, parseFinal, responsePrefix, type AtEvent } from '../../src/protocols/at/framer.js';
import { parseRegistration } from '../../src/protocols/at/parsers.js';

/** Quectel EC25 replies as captured on the AT port (echo on, CR LF framing). */
const EC25_CPIN = 'AT+CPIN?\r\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n';
const EC25_CGDCONT = 'AT+CGDCONT?\r\r\n+CGDCONT: 1,"IPV4V6","internet","0.0.0.0",0,0,0,0\r\n\r\nOK\r\n';

function feedAll(f: AtFramer, s: string, split: number[]): AtEvent[] {
  const out: AtEvent[] = [];
  let last = 0;
  for (const p of [...split, s.length]) {
    out.push(...f.feed(Buffer.from(s.slice(last, p), 'latin1')));
    last = p;
  }
  return out;
}

t.test('final result codes', async (t) => {
  t.same(parseFinal('OK'), { final: 'OK', text: '' });
  t.same(parseFinal('+CME ERROR: 10'), { final: 'CME ERROR', text: '10', code: 10 });
  t.same(parseFinal('+CME ERROR: SIM not inserted'), { final: 'CME ERROR', text: 'SIM not inserted' });
  t.same(parseFinal('+CMS ERROR: 500'), { final: 'CMS ERROR', text: '500', code: 500 });
  t.same(parseFinal('NO CARRIER'), { final: 'NO CARRIER', text: '' });
  t.same(parseFinal('CONNECT 150000000'), { final: 'CONNECT', text: '150000000' });
  t.equal(parseFinal('+CPIN: READY'), undefined);
  t.equal(parseFinal('OKAY'), undefined);
  t.equal(responsePrefix('AT+CREG?'), '+CREG:');
  t.equal(responsePrefix('AT+QENG="servingcell"'), '+QENG:');
  t.equal(responsePrefix('AT^SYSINFOEX'), '^SYSINFOEX:');
  t.equal(responsePrefix('ATE0'), undefined);
});

t.test('a reply split at every byte position gives the same single response', async (t) => {
  for (const [cmd, text, lines] of [
    ['AT+CPIN?', EC25_CPIN, ['+CPIN: SIM PIN']],
    ['AT+CGDCONT?', EC25_CGDCONT, ['+CGDCONT: 1,"IPV4V6","internet","0.0.0.0",0,0,0,0']],
  ] as const) {
    for (let i = 0; i <= text.length; i++) {
      for (const j of [i, Math.min(text.length, i + 3)]) {
        const f = new AtFramer();
        f.begin(cmd);
        const ev = feedAll(f, text, i === j ? [i] : [i, j]);
        const responses = ev.filter((e) => e.type === 'response');
        if (responses.length !== 1 || responses[0]!.type !== 'response') {
          t.fail(`split ${i}/${j}: ${JSON.stringify(ev)}`);
          continue;
        }
        const r = responses[0].response;
        if (JSON.stringify(r.lines) !== JSON.stringify(lines) || r.final !== 'OK') t.fail(`split ${i}/${j}: ${JSON.stringify(r)}`);
        if (ev.some((e) => e.type === 'urc' || e.type === 'stray')) t.fail(`split ${i}/${j}: unexpected URC`);
      }
    }
    t.pass(`${cmd}: all ${text.length + 1} split points`);
  }
});

t.test('URCs interleaved inside a pending reply are separated', async (t) => {
  const f = new AtFramer();
  f.begin('AT+CSQ');
  const ev = f.feed(
    'AT+CSQ\r\r\n+CEREG: 1,"00C3","0000D8FA",7\r\n+CSQ: 20,99\r\nRING\r\n+QIND: "csq",20,99\r\n\r\nOK\r\n+CREG: 0\r\n',
  );
  t.same(
    ev.map((e) => e.type),
    ['echo', 'urc', 'urc', 'urc', 'response', 'urc'],
  );
  const r = ev.find((e) => e.type === 'response');
  t.same(r?.type === 'response' && r.response.lines, ['+CSQ: 20,99']);
  const urcs = ev.filter((e) => e.type === 'urc').map((e) => (e.type === 'urc' ? e.name : ''));
  t.same(urcs, ['+CEREG', 'RING', '+QIND', '+CREG']);
  const reg = ev[1]!;
  t.equal(reg.type === 'urc' && parseRegistration(reg.line).lacOrTac, 0xc3);
});

t.test('solicited +CREG stays in the reply; errors are finals', async (t) => {
  const f = new AtFramer();
  f.begin('AT+CREG?');
  const ev = f.feed('\r\n+CREG: 2,1,"CE00","01CEAD8F"\r\n\r\nOK\r\n');
  t.equal(ev.length, 1);
  t.same(ev[0]!.type === 'response' && ev[0]!.response.lines, ['+CREG: 2,1,"CE00","01CEAD8F"']);
  f.begin('AT+CPIN=1111');
  const e2 = f.feed('\r\n+CME ERROR: 16\r\n');
  t.equal(e2[0]!.type === 'response' && e2[0]!.response.final, 'CME ERROR');
  t.equal(e2[0]!.type === 'response' && e2[0]!.response.errorCode, 16);
  t.equal(f.pending, undefined, 'nothing pending after a final');
});

t.test('garbage and overlong lines cost bounded memory', async (t) => {
  const f = new AtFramer({ maxLine: 64, maxLines: 4 });
  let overflows = 0;
  for (let i = 0; i < 2000; i++) {
    const ev = f.feed(Buffer.alloc(97, 0x41 + (i % 26)));
    overflows += ev.filter((e) => e.type === 'overflow').length;
    t.ok(f.buffered <= 64) || t.bailout('buffer grew');
  }
  t.equal(f.overflows, 1, 'one endless line = one overflow');
  const ev = f.feed('\r\nOK\r\n');
  t.equal(ev[0]!.type, 'overflow');
  t.equal(ev[1]!.type, 'stray', 'OK with nothing pending is a stray line');
  f.begin('AT+CGDCONT?');
  const many = Array.from({ length: 10 }, (_, i) => `+CGDCONT: ${i + 1},"IP","a"\r\n`).join('');
  const e2 = f.feed(`${many}OK\r\n`);
  const r = e2.find((e) => e.type === 'response');
  t.equal(r?.type === 'response' && r.response.lines.length, 4);
  t.equal(r?.type === 'response' && r.response.truncated, true);
  t.equal(overflows, 0);
  // binary garbage mixed with a good reply
  f.begin('AT');
  const e3 = f.feed(Buffer.from([0xff, 0x00, 0x7e, 0x0d, 0x0a, 0x4f, 0x4b, 0x0d, 0x0a]));
  t.same(
    e3.map((e) => e.type),
    ['garbage', 'response'],
    'the noise is counted, not a reply line',
  );
  t.same(e3[1]!.type === 'response' && e3[1]!.response.lines, []);
  t.equal(f.garbage, 3);
});

t.test('SMS prompt', async (t) => {
  const f = new AtFramer();
  f.begin('AT+CMGS=20');
  t.same(f.feed('\r\n> '), [{ type: 'prompt' }]);
});

import t from 'tap';
import { EventEmitter } from 'node:events';
import { AtClient } from '../../src/drivers/modem/at.js';
import type { ModemTransport } from '../../src/drivers/modem/transport.js';
import { DuocellError } from '../../src/core/errors.js';
import { parseCops, parseCsq } from '../../src/protocols/at/parsers.js';

/**
 * AT robustness of the command queue (regressions from issue 14): a late reply after a timeout,
 * a URC between echo and OK, line noise, a 10,000-character line. The "modem" is a scripted
 * in-memory port that answers each written command with `answer(cmd)`, optionally late.
 */
class ScriptPort extends EventEmitter implements ModemTransport {
  readonly path = 'script';
  isOpen = true;
  written: string[] = [];
  constructor(readonly answer: (cmd: string, port: ScriptPort) => void) {
    super();
  }
  async write(d: Uint8Array | string): Promise<void> {
    const cmd = (typeof d === 'string' ? d : Buffer.from(d).toString('latin1')).trim();
    this.written.push(cmd);
    setImmediate(() => this.answer(cmd, this));
  }
  send(s: string | Buffer): void {
    this.emit('data', typeof s === 'string' ? Buffer.from(s, 'latin1') : s);
  }
  async close(): Promise<void> {
    this.isOpen = false;
    this.emit('close');
  }
}

const REPLIES: Record<string, string> = {
  AT: '\r\nOK\r\n',
  'AT+CSQ': '\r\n+CSQ: 23,99\r\n\r\nOK\r\n',
  'AT+COPS?': '\r\n+COPS: 0,0,"Telekom.de",7\r\n\r\nOK\r\n',
  'AT+CEREG?': '\r\n+CEREG: 2,1,"1A2B","01A2B3C",7\r\n\r\nOK\r\n',
};

t.test('a late reply to a timed-out command never answers a later command', async (t) => {
  let slowOnce = true;
  const port = new ScriptPort((cmd, p) => {
    if (cmd === 'AT+CSQ' && slowOnce) {
      slowOnce = false;
      setTimeout(() => p.send(REPLIES[cmd]!), 150); // after the 50 ms timeout
      return;
    }
    if (REPLIES[cmd] !== undefined) p.send(REPLIES[cmd]!);
  });
  const at = new AtClient(port);
  at.drainMs = 1000;
  at.quietMs = 30;
  await t.rejects(at.command('AT+CSQ', { timeoutMs: 50 }), { code: 'DC_AT_TIMEOUT' });
  // queued at once, while the late +CSQ is still on its way
  const ops = parseCops((await at.command('AT+COPS?', { timeoutMs: 2000 })).lines.join('\r\n'));
  t.equal(ops.operator, 'Telekom.de', 'AT+COPS? gets its own reply, not the late +CSQ');
  t.same(parseCsq((await at.command('AT+CSQ')).lines.join('\r\n')).rssi !== undefined, true);
  t.equal(at.lateReplies, 1, 'the late reply was drained');
  // and for good: seven more commands, each with its own answer
  for (let i = 0; i < 7; i++) {
    const cmd = i % 2 === 0 ? 'AT+COPS?' : 'AT+CSQ';
    const r = await at.command(cmd);
    t.ok(r.lines[0]!.startsWith(cmd === 'AT+CSQ' ? '+CSQ:' : '+COPS:'), `${cmd} → ${r.lines[0]}`);
  }
});

t.test('a timed-out command whose reply never comes: a marker brings the port back in step', async (t) => {
  let slowPending = false;
  const port = new ScriptPort((cmd, p) => {
    if (cmd === 'AT+QSLOW') {
      // no answer until the marker goes out (whatever the timers' lateness on a loaded
      // machine): then the late OK comes first and races the marker's own OK
      slowPending = true;
      return;
    }
    if (slowPending && cmd === 'AT') {
      slowPending = false;
      p.send('\r\nOK\r\n');
      setTimeout(() => p.send('\r\nOK\r\n'), 5);
      return;
    }
    if (REPLIES[cmd] !== undefined) p.send(REPLIES[cmd]!);
  });
  const at = new AtClient(port);
  at.drainMs = 60; // nothing comes while draining: the marker path is taken
  at.quietMs = 200;
  await t.rejects(at.command('AT+QSLOW', { timeoutMs: 30 }), { code: 'DC_AT_TIMEOUT' });
  const r = await at.command('AT+COPS?', { timeoutMs: 3000 });
  t.equal(r.lines[0], '+COPS: 0,0,"Telekom.de",7', 'the next command gets its own reply');
  t.ok(port.written.includes('AT'), 'a marker was sent');
});

t.test('a +CEREG URC between the echo and the OK of AT+CEREG=2 is a URC, not the reply', async (t) => {
  const port = new ScriptPort((cmd, p) => {
    if (cmd === 'AT+CEREG=2') p.send('AT+CEREG=2\r\r\n+CEREG: 1\r\n\r\nOK\r\n');
    else if (cmd === 'AT+CEREG?') p.send('AT+CEREG?\r\r\n+CEREG: 5,"00C3","0A2B3C4D",7\r\n+CEREG: 2,1,"1A2B","01A2B3C",7\r\n\r\nOK\r\n');
  });
  const at = new AtClient(port);
  const urcs: string[] = [];
  at.on('urc', (u: { line: string }) => urcs.push(u.line));
  const r = await at.command('AT+CEREG=2');
  t.same(r.lines, [], 'no reply lines for a set command');
  const q = await at.command('AT+CEREG?');
  t.same(q.lines, ['+CEREG: 2,1,"1A2B","01A2B3C",7'], 'the read answer (n,stat,…) is kept');
  t.same(urcs, ['+CEREG: 1', '+CEREG: 5,"00C3","0A2B3C4D",7'], 'both URCs recognised (stat first, quoted TAC)');
});

t.test('garbage bytes are counted, never reply lines', async (t) => {
  const port = new ScriptPort((cmd, p) => {
    if (cmd === 'AT+CSQ') {
      p.send(Buffer.from([0x00, 0xff, 0x13, 0x0d, 0x0a]));
      p.send('\r\n+CSQ: 23,99\r\n#$@%^junk\r\n\x01\x02\r\nOK\r\n');
    }
  });
  const at = new AtClient(port);
  const r = await at.command('AT+CSQ');
  t.same(r.lines, ['+CSQ: 23,99'], 'only the +CSQ line');
  t.ok(at.garbageBytes >= 5, `garbage counted (${at.garbageBytes} bytes)`);
});

t.test('a 10,000-character line neither blocks the queue nor ends up in a reply', async (t) => {
  const port = new ScriptPort((cmd, p) => {
    if (cmd === 'AT+COPS?') p.send(`\r\n${'Q'.repeat(10_000)}\r\n${REPLIES[cmd]!}`);
    else if (REPLIES[cmd] !== undefined) p.send(REPLIES[cmd]!);
  });
  const at = new AtClient(port);
  const t0 = Date.now();
  const r = await at.command('AT+COPS?');
  t.same(r.lines, ['+COPS: 0,0,"Telekom.de",7']);
  t.equal(at.overflows, 1, 'the long line was dropped as an overflow');
  t.equal((await at.command('AT')).final, 'OK', 'the next command runs');
  t.ok(Date.now() - t0 < 2000, 'at once');
});

import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import modem from '../../src/cli/commands/modem.js';
import { EXIT, type CliContext } from '../../src/cli/command.js';
import { startControlSocket } from '../../src/web/control.js';
import { checkPassthrough, passthroughTimeout } from '../../src/drivers/modem/at-passthrough.js';
import { modemAtCall } from '../../src/wiring/modem.js';
import { parseLeaseLine, maskToPrefix } from '../../src/drivers/modem/dhcp-lease.js';
import { atDataCommands, dataActive } from '../../src/drivers/modem/at-data.js';
import { DuocellError } from '../../src/core/errors.js';
import type { CellularModem } from '../../src/drivers/modem/cellular.js';
import type { AtResponse } from '../../src/protocols/at/framer.js';
import type { WebDeps } from '../../src/web/deps.js';

/** `duocell modem at`: the checker, the control-socket route and the CLI, against a fake modem that records what reached its AT queue. */

const refused = (cmd: unknown): string => {
  try {
    checkPassthrough(cmd);
    return 'allowed';
  } catch (e) {
    return (e as DuocellError).code;
  }
};

t.test('pass-through checker: allows diagnostics, refuses what would break the session', async (t) => {
  for (const c of ['AT+CSQ', 'ATI', 'AT+CGMI', 'AT+QENG="servingcell"', 'AT!GSTATUS?', 'AT+CFUN?', 'AT+CGDCONT?', 'AT+CEREG?', 'at+cops?', 'AT+CPIN?', 'AT+QCFG="usbnet"?'])
    t.equal(refused(c), 'allowed', `${c} allowed`);
  for (const c of ['ATE1', 'ATV0', 'ATZ', 'AT&F', 'AT+CFUN=0', 'AT+CFUN=1,1', 'AT+QPOWD', 'AT+CPIN="1234"', 'AT+CLCK="SC",0,"1234"', 'AT+CGACT=0,1', 'AT+QNETDEVCTL=0,1,0', 'ATD*99#', 'ATH', 'AT+COPS=2', 'AT+CEREG=0', 'AT+CMEE=0', 'AT+QCFG="usbnet",3', 'AT&W', 'AT+CSQ;+CFUN=0', 'AT+CSQ\r\nAT+CFUN=0', 'AT+CSQ\x1a', 'CSQ', '', `AT+${'X'.repeat(300)}`, 42, undefined])
    t.equal(refused(c), 'DC_MODEM_AT_REFUSED', `${JSON.stringify(typeof c === 'string' ? c.slice(0, 30) : c)} refused`);
  t.equal(passthroughTimeout(undefined), 5000, 'default timeout');
  t.equal(passthroughTimeout(2000), 2000);
  t.throws(() => passthroughTimeout(100), { code: 'DC_MODEM_AT_REFUSED' }, 'too short a timeout refused');
  t.throws(() => passthroughTimeout(60_000), { code: 'DC_MODEM_AT_REFUSED' }, 'too long a timeout refused');
});

t.test('lease lines and data-session forms (fixtures)', async (t) => {
  t.same(parseLeaseLine('duocell-dhcp|bound|192.168.225.33|255.255.255.0|192.168.225.1|192.168.225.1 8.8.8.8|1500|43200|usb0'), {
    event: 'bound',
    lease: { address: '192.168.225.33', prefixLength: 24, gateway: '192.168.225.1', dns: ['192.168.225.1', '8.8.8.8'], mtu: 1500, leaseSeconds: 43200 },
  }, 'a Quectel ECM lease (192.168.225.0/24 is its default LAN)');
  t.same(parseLeaseLine('duocell-dhcp|deconfig||||||usb0'), { event: 'deconfig' });
  t.equal(parseLeaseLine('udhcpc: sending select for 10.21.0.2'), undefined, "udhcpc's own messages are ignored");
  t.throws(() => parseLeaseLine('duocell-dhcp|bound|10.0.0.300|255.255.255.0|||1500|60|usb0'), { code: 'DC_MODEM_DHCP' });
  t.throws(() => parseLeaseLine('duocell-dhcp|bound|10.0.0.3|255.0.255.0|||1500|60|usb0'), { code: 'DC_MODEM_DHCP' }, 'non-contiguous mask');
  t.equal(maskToPrefix('255.255.255.252'), 30);
  t.equal(maskToPrefix('255.255.0.255'), undefined);
  t.same(atDataCommands('quectel-ec2x', 1, 'internet'), { define: 'AT+CGDCONT=1,"IP","internet"', activate: 'AT+QNETDEVCTL=1,1,1', query: 'AT+QNETDEVCTL?', deactivate: 'AT+QNETDEVCTL=0,1,0' });
  t.equal(atDataCommands('telit', 2, 'a"b').activate, 'AT+CGACT=1,2', '27.007 activation for other families');
  t.equal(atDataCommands('telit', 2, 'a"b').define, 'AT+CGDCONT=2,"IP","ab"', 'quotes cannot escape the APN field');
  t.equal(dataActive('quectel', 1, ['+QNETDEVCTL: 1,1,1,1']), true);
  t.equal(dataActive('quectel', 1, ['+QNETDEVCTL: 1,1,1,0']), false);
  t.equal(dataActive('generic', 1, ['+CGACT: 1,1', '+CGACT: 2,0']), true);
  t.equal(dataActive('generic', 2, ['+CGACT: 1,1', '+CGACT: 2,0']), false);
});

function ctx(dir: string, json = false): CliContext & { lines: string[]; errs: string[] } {
  const lines: string[] = [];
  const errs: string[] = [];
  return { io: { out: (l) => lines.push(l), err: (l) => errs.push(l) }, json, env: { DUOCELL_STATE_DIR: dir }, lines, errs };
}

t.test('duocell modem at: through the control socket into the manager\'s AT queue', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tmodem-at-cli-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const sent: { cmd: string; timeoutMs: number }[] = [];
  const fake = {
    atCommand: async (cmd: string, timeoutMs: number): Promise<AtResponse> => {
      sent.push({ cmd, timeoutMs });
      if (cmd === 'AT+CGSN=9') throw new DuocellError('DC_AT_CME_ERROR', 'AT+CGSN=9: +CME ERROR: 50', { origin: 'device', cme: 50 });
      if (cmd === 'AT+SLOW') throw new DuocellError('DC_AT_TIMEOUT', 'final result of AT+SLOW: timed out');
      return { command: cmd, lines: ['+CSQ: 23,99'], final: 'OK', finalText: 'OK' } as unknown as AtResponse;
    },
  } as unknown as CellularModem;
  const deps = { health: () => ({}), sessions: () => [], paths: () => [], modem: () => ({ present: true, state: 'connected', sim: 'ready' }) } as unknown as Pick<WebDeps, 'health' | 'sessions' | 'paths' | 'modem' | 'pathManager'>;
  const server = await startControlSocket(deps, path.join(dir, 'control.sock'), modemAtCall(fake));
  t.teardown(() => server.close());

  let c = ctx(dir);
  t.equal(await modem.run(['at', 'AT+CSQ'], c), EXIT.OK, 'exit 0 on OK');
  t.same(c.lines, ['+CSQ: 23,99', 'OK'], 'reply lines and final printed');
  t.same(sent, [{ cmd: 'AT+CSQ', timeoutMs: 5000 }], 'reached the manager queue once, default timeout');

  c = ctx(dir, true);
  t.equal(await modem.run(['at', 'AT+CSQ', '--timeout', '2000'], c), EXIT.OK);
  t.same(JSON.parse(c.lines[0]!), { lines: ['+CSQ: 23,99'], final: 'OK' }, '--json');
  t.equal(sent.at(-1)?.timeoutMs, 2000, '--timeout passed on');

  const before = sent.length;
  c = ctx(dir, true);
  t.equal(await modem.run(['at', 'AT+CFUN=0'], c), EXIT.USAGE, 'a refused command exits 2');
  t.equal((JSON.parse(c.errs[0]!) as { error: { code: string } }).error.code, 'DC_MODEM_AT_REFUSED', 'with the stable code');
  t.equal(sent.length, before, 'a refused command never reaches the port');

  c = ctx(dir);
  t.equal(await modem.run(['at', 'AT+CGSN=9'], c), EXIT.FAILED, 'an error final result exits 1');
  t.match(c.lines.join('\n'), /CME ERROR: 50/, 'and is printed as the reply');

  c = ctx(dir, true);
  t.equal(await modem.run(['at', 'AT+SLOW'], c), EXIT.FAILED, 'a timeout exits 1');
  t.equal((JSON.parse(c.errs[0]!) as { error: { code: string } }).error.code, 'DC_AT_TIMEOUT');

  c = ctx(dir);
  t.equal(await modem.run(['at', 'AT+CSQ', '--timeout', '99'], c), EXIT.USAGE, 'bad --timeout');
  t.equal(await modem.run(['at'], ctx(dir)), EXIT.USAGE, 'no command');
  t.equal(await modem.run(['at', 'AT+CSQ'], ctx(path.join(dir, 'nowhere'))), EXIT.UNAVAILABLE, 'no service: exit 69');
});

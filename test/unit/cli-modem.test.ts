import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import modem, { renderModem, type ModemDiagnostics } from '../../src/cli/commands/modem.js';
import { EXIT, type CliContext } from '../../src/cli/command.js';
import { startControlSocket } from '../../src/web/control.js';
import { unwrap, parseQeng } from '../../src/protocols/at/index.js';
import type { WebDeps } from '../../src/web/deps.js';

/** `duocell modem` against a real control socket (a unix socket in a temp dir) serving a modem view. */

function ctx(dir: string, json = false): CliContext & { lines: string[]; errs: string[] } {
  const lines: string[] = [];
  const errs: string[] = [];
  return { io: { out: (l) => lines.push(l), err: (l) => errs.push(l) }, json, env: { DUOCELL_STATE_DIR: dir }, lines, errs };
}

const serving = unwrap(
  parseQeng('+QENG: "servingcell","CONNECT"\r\n+QENG: "LTE","FDD",262,01,1929500,321,1300,3,5,5,34BA,-75,-7,-48,25,15,100,-\r\n+QENG: "NR5G-NSA",262,01,774,-82,30,-11,627264,78,12,1'),
);

const VIEW: ModemDiagnostics = {
  present: true,
  state: 'connected',
  manufacturer: 'Quectel',
  model: 'RM520N-GL',
  imei: '860000000000001',
  sim: 'ready',
  operator: 'Telekom.de',
  rat: 'lte',
  band: 'B3+n78',
  rsrp: -75,
  rsrq: -7,
  sinr: 25,
  apn: 'internet',
  addresses: ['10.45.0.5', '2001:db8::1'],
  registration: { state: 'home', accessTech: 'lte', tac: 0x34ba, ci: 0x1929500, activeTimeS: 60, periodicTauS: 86400 },
  servingCell: serving,
  session: { interface: 'wwan0', ipv4: { address: '10.45.0.5', prefixLength: 30, gateway: '10.45.0.6', dns: ['10.1.1.1'], mtu: 1500 }, ipv6: { address: '2001:db8::1', prefixLength: 64 } },
};

async function withSocket(view: ModemDiagnostics | undefined, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'radios-b-cli-modem-'));
  const deps = {
    health: () => ({ status: 'ok', preset: 'cell', version: 'test', uptimeS: 1 }),
    sessions: () => [],
    paths: () => [],
    ...(view === undefined ? {} : { modem: () => view }),
  } as unknown as Pick<WebDeps, 'health' | 'sessions' | 'paths' | 'modem' | 'pathManager'>;
  const srv = await startControlSocket(deps, path.join(dir, 'control.sock'));
  try {
    await fn(dir);
  } finally {
    await srv.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

t.test('duocell modem prints state, SIM, registration, signal, serving cell and the data session', async (t) => {
  await withSocket(VIEW, async (dir) => {
    const c = ctx(dir);
    t.equal(await modem.run([], c), EXIT.OK);
    const text = c.lines.join('\n');
    t.match(text, /General +\| state: connected/);
    t.match(text, /model: RM520N-GL/);
    t.match(text, /SIM +\| state: ready/);
    t.match(text, /registration: home/);
    t.match(text, /tac: 0x34BA/);
    t.match(text, /psm: active 60 s, periodic tau 86400 s/);
    t.match(text, /rsrp: -75 dBm/);
    t.match(text, /band: B3\+n78/);
    t.match(text, /mode: nr5g-nsa, connected \(from \+QENG\)/);
    t.match(text, /LTE, B3, ch 1300, 20 MHz, pci 321/);
    t.match(text, /NR, n78, ch 627264, 100 MHz, pci 774.*sinr 30 dB/);
    t.match(text, /ipv4 address: 10\.45\.0\.5\/30/);
    t.match(text, /ipv4 gateway: 10\.45\.0\.6/);
    t.match(text, /ipv6 address: 2001:db8::1\/64/);
    t.same(c.errs, []);
  });
});

t.test('duocell modem --json prints the service view unchanged', async (t) => {
  await withSocket(VIEW, async (dir) => {
    const c = ctx(dir, true);
    t.equal(await modem.run([], c), EXIT.OK);
    t.equal(c.lines.length, 1);
    t.same(JSON.parse(c.lines[0]!), JSON.parse(JSON.stringify(VIEW)));
  });
});

t.test('a box whose modem is absent, a box without modem, and no running service', async (t) => {
  await withSocket({ present: false, state: 'absent', sim: 'unknown' }, async (dir) => {
    const c = ctx(dir);
    t.equal(await modem.run([], c), EXIT.UNAVAILABLE, 'absent modem: exit 69');
    t.match(c.lines.join('\n'), /state: absent[\s\S]*rsrp: --/);
  });
  await withSocket(undefined, async (dir) => {
    const c = ctx(dir, true);
    t.equal(await modem.run([], c), EXIT.UNAVAILABLE);
    t.same(c.lines, ['null']);
  });
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'radios-b-cli-modem-none-'));
  try {
    const c = ctx(empty, true);
    t.equal(await modem.run([], c), EXIT.UNAVAILABLE, 'no service: exit 69');
    t.match(JSON.parse(c.errs[0]!), { error: { code: 'DC_SIM_STATE' } });
    const u = ctx(empty);
    t.equal(await modem.run(['--bogus'], u), EXIT.USAGE);
  } finally {
    fs.rmSync(empty, { recursive: true, force: true });
  }
});

t.test('renderModem without the optional blocks shows -- rather than inventing values', async (t) => {
  const lines = renderModem({ present: true, state: 'registered', sim: 'ready' }).join('\n');
  t.match(lines, /Serving cell \| --/);
  t.match(lines, /reject cause: --/);
  t.match(lines, /addresses: --/);
  t.notMatch(lines, /undefined|NaN/);
  t.same(renderModem(null), ['modem: none (this box has no modem configured)']);
});

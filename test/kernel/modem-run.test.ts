import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { buildSim } from '../../src/sim/board.js';
import { netnsUnavailable } from '../../src/sim/hosts.js';
import { ModemSimulator } from '../../src/sim/modem/sim.js';
import { simBoardModemConfig } from '../../src/sim/modem/board.js';

/**
 * `duocell run --board sim` (the built binary) in the simulated board's cell namespace, with the
 * modem simulator on ptys: the cellular path comes up through duocell's own interface
 * configuration (nothing else touches wwan0), and SIGTERM ends duocell within 2 s with the
 * modem's devices present, leaving wwan0 unconfigured. Needs root, namespaces, socat and dist/.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(root, 'bin/duocell.js');
const why =
  (await netnsUnavailable()) ||
  (spawnSync('socat', ['-V']).status === 0 ? false : 'socat not installed') ||
  (fs.existsSync(path.join(root, 'dist/src/main.js')) ? false : 'dist/ not built (npm run build)');

t.test('duocell run on the sim board (root, netns, socat): cellular path up from its own interface configuration; SIGTERM within 2 s', { skip: why }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tmodem-run-'));
  const sim = await buildSim(`radiosa${process.pid % 1000}`, undefined, { modem: true, pathManager: 'userspace' });
  t.teardown(async () => {
    await sim.topo.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  // the sim board, web on the namespace's own loopback only (no management link in the root namespace)
  const board = JSON.parse(fs.readFileSync(path.join(root, 'board/sim.json'), 'utf8')) as Record<string, unknown> & { web: { listen: unknown[] } };
  delete board.$schema;
  board.web.listen = [{ host: '127.0.0.1', port: 8080 }];
  fs.writeFileSync(path.join(dir, 'board.json'), JSON.stringify(board));
  const links = { at: path.join(dir, 'ttyUSB2'), qmi: path.join(dir, 'cdc-wdm0') };
  const modem = new ModemSimulator(simBoardModemConfig(links));
  await modem.start();
  t.teardown(() => modem.stop());
  const state = path.join(dir, 'state');
  const child = spawn('ip', ['netns', 'exec', sim.cell.ns, process.execPath, BIN, 'run', '--board', path.join(dir, 'board.json'), '--state-dir', state], {
    env: { ...process.env, DUOCELL_MODEM_LINKS: `at=${links.at},qmi=${links.qmi}`, DUOCELL_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const paths = async (): Promise<Array<{ access: string; state: string; addresses: string[]; signal?: Record<string, number> }>> => {
    const out = await sim.cell.exec(process.execPath, [BIN, 'paths', '--json', '--state-dir', state]).catch(() => '[]');
    return JSON.parse(out || '[]') as Array<{ access: string; state: string; addresses: string[] }>;
  };
  let cellular: Awaited<ReturnType<typeof paths>>[number] | undefined;
  for (let i = 0; i < 80 && cellular?.state !== 'up'; i++) {
    await new Promise((r) => setTimeout(r, 500));
    if (child.exitCode !== null) break;
    cellular = (await paths()).find((p) => p.access === 'cellular');
  }
  t.equal(cellular?.state, 'up', `the cellular path is up (${JSON.stringify(cellular)}; log ${log.slice(-800)})`);
  t.same([...(cellular?.addresses ?? [])].sort(), ['10.21.0.2', 'fd00:21::2']);
  t.equal(cellular?.signal?.rsrpDbm, -95, 'RSRP under its own name');
  const addr = await sim.cell.ip('addr', 'show', 'dev', 'wwan0');
  t.match(addr, /inet 10\.21\.0\.2\/24/, 'wwan0 addressed by duocell');
  t.match(await sim.cell.ip('route', 'show', 'table', '21'), /default via 10\.21\.0\.1 dev wwan0/, 'the uplink table');
  t.match(await sim.cell.ip('route', 'show'), /default via 10\.21\.0\.1 dev wwan0 proto 220 metric 50/, 'the cellular default');

  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  const t0 = Date.now();
  child.kill('SIGTERM');
  const code = await exited;
  const ms = Date.now() - t0;
  t.equal(code, 0, 'clean exit');
  t.ok(ms < 2000, `SIGTERM → exit ${ms} ms (< 2 s) with the modem devices present`);
  t.notMatch(await sim.cell.ip('addr', 'show', 'dev', 'wwan0'), /10\.21\.0\.2/, 'wwan0 unconfigured on stop');
  t.equal(modem.sessions.length, 0, 'the data session was stopped in the modem');
});

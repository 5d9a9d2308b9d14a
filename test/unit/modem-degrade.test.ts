import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ModemSimulator, type ModemSimConfig } from '../../src/sim/modem/sim.js';
import { ModemManager, type ModemManagerOptions, type ModemState, type StateChange } from '../../src/drivers/modem/manager.js';
import { modemView } from '../../src/wiring/modem.js';

/**
 * Regressions from issue 14 against the simulator over real ptys (needs socat), with the default
 * port opener (the cdc-wdm path through CharDeviceTransport, as on hardware):
 *  - losing the optional AT port while QMI is healthy degrades, never tears the session down;
 *  - a vanished modem's operator, RSRP and band leave the API;
 *  - QMI comes back after a close that duocell started itself (a wedged modem).
 */
const why = spawnSync('socat', ['-V']).status === 0 ? false : 'socat not installed';

function waitState(m: ModemManager, state: ModemState, timeoutMs: number): Promise<StateChange> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      m.off('state', on);
      reject(new Error(`not ${state} within ${timeoutMs} ms (now ${m.state}: ${m.snapshot().reason})`));
    }, timeoutMs);
    const on = (c: StateChange): void => {
      if (c.state !== state) return;
      clearTimeout(timer);
      m.off('state', on);
      resolve(c);
    };
    if (m.state === state) {
      clearTimeout(timer);
      resolve({ state, previous: state, event: 'start', reason: 'already' });
      return;
    }
    m.on('state', on);
  });
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function rig(t: { teardown(fn: () => unknown): void }, simCfg: Partial<ModemSimConfig> = {}, mgr: Partial<ModemManagerOptions> = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tmodem-'));
  const sim = new ModemSimulator({ atLink: path.join(dir, 'ttyUSB2'), qmiLink: path.join(dir, 'cdc-wdm0'), registerDelayMs: 100, ...simCfg });
  await sim.start();
  const m = new ModemManager({
    ports: [sim.cfg.qmiLink, sim.cfg.atLink],
    apn: 'internet',
    ipFamily: 'ipv4',
    pollMs: 300,
    probeTimeoutMs: 600,
    backoffBaseMs: 200,
    backoffCapMs: 800,
    requestTimeoutMs: 1000,
    rand: () => 0.5,
    ...mgr,
  });
  const states: StateChange[] = [];
  m.on('state', (c) => states.push(c));
  t.teardown(async () => {
    await m.stop();
    await sim.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { sim, m, states };
}

t.test('the AT port vanishes while QMI is healthy: degraded, the data session stays; it comes back (needs socat)', { skip: why }, async (t) => {
  const { sim, m, states } = await rig(t);
  m.start();
  await waitState(m, 'connected', 15000);
  await until(() => m.snapshot().signal?.band !== undefined, 5000, 'band from AT+QENG');
  const before = states.length;
  await sim.at.vanish();
  await until(() => m.snapshot().info.atLost !== undefined, 3000, 'AT loss noticed');
  await new Promise((r) => setTimeout(r, 700)); // a few polls
  t.equal(m.state, 'connected', 'still connected');
  t.same(states.slice(before), [], 'no state change at all: the data session was not torn down');
  t.equal(m.snapshot().signal?.band, undefined, 'band (from AT) gone');
  t.match(m.snapshot().info.atLost?.code ?? '', /DC_MODEM_(PORT|CLOSED)/, 'the warning says why');
  t.equal(sim.sessions.length, 1, 'the modem kept its session');
  t.match(modemView(m).warning ?? '', /AT port lost/, 'the API shows the warning');
  await sim.at.appear();
  await until(() => m.snapshot().info.atLost === undefined && m.snapshot().info.atPort !== undefined, 8000, 'AT port back');
  t.equal(m.state, 'connected');
});

t.test('a vanished modem: operator, RSRP and band are cleared from the API (needs socat)', { skip: why }, async (t) => {
  const { sim, m } = await rig(t);
  m.start();
  await waitState(m, 'connected', 15000);
  await until(() => modemView(m).band !== undefined && modemView(m).rsrp !== undefined, 5000, 'signal and band');
  t.equal(modemView(m).operator, 'duocell sim');
  const lost = waitState(m, 'absent', 3000);
  await sim.act({ action: 'vanish' });
  await lost;
  const v = modemView(m);
  t.equal(v.operator, undefined, 'no operator');
  t.equal(v.rsrp, undefined, 'no RSRP');
  t.equal(v.band, undefined, 'no band');
  t.equal(v.addresses, undefined, 'no session addresses');
  t.equal(v.present, false);
});

t.test('QMI over the char-device transport comes back after a close duocell started (wedged modem) (needs socat)', { skip: why }, async (t) => {
  const { sim, m } = await rig(t, {}, { requestTimeoutMs: 600 });
  m.start();
  await waitState(m, 'connected', 15000);
  await sim.act({ action: 'hang' });
  await waitState(m, 'absent', 5000);
  await new Promise((r) => setTimeout(r, 1500)); // several failed probes: each opened and closed the port
  await sim.act({ action: 'unhang' });
  await waitState(m, 'connected', 15000);
  t.pass('reconnected: no stale read took the CTL sync reply');
});

t.test('SIGTERM: a process running the manager with the devices present exits by itself within 2 s (needs socat)', { skip: why }, async (t) => {
  const { spawn } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tmodem-'));
  const sim = new ModemSimulator({ atLink: path.join(dir, 'ttyUSB2'), qmiLink: path.join(dir, 'cdc-wdm0'), registerDelayMs: 100 });
  await sim.start();
  t.teardown(async () => {
    await sim.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const loader = new URL('../../node_modules/@tapjs/typescript/dist/esm/import.mjs', import.meta.url).href;
  const child = spawn(process.execPath, [`--import=${loader}`, fileURLToPath(new URL('./modem-sigterm-child.ts', import.meta.url)), sim.cfg.qmiLink, sim.cfg.atLink], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, DUOCELL_LOG_LEVEL: 'silent' },
  });
  // Never leave the child behind: a failed wait would otherwise hang the file until tap's timeout.
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    // Generous: the child compiles its TypeScript at start, slow on a loaded 2-core machine.
    const timer = setTimeout(() => reject(new Error(`child not connected: ${out}`)), 60000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('connected')) (clearTimeout(timer), resolve());
    });
  });
  await new Promise((r) => setTimeout(r, 500)); // connected, polling: reads pending on both ports
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  const t0 = Date.now();
  child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), 10000);
  const code = await exited;
  clearTimeout(killer);
  const ms = Date.now() - t0;
  t.equal(code, 0, 'exited by itself (no process.exit, nothing left pending)');
  t.ok(out.includes('stopped'), 'the manager stopped');
  t.ok(ms < 2000, `within 2 s (${ms} ms)`);
  t.equal(sim.sessions.length, 0, 'the data session was stopped in the modem');
});

t.test('probe failure names each candidate once and says an AT-only port answered (needs socat)', { skip: why }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tmodem-'));
  const sim = new ModemSimulator({ atLink: path.join(dir, 'ttyUSB2'), qmiLink: path.join(dir, 'cdc-wdm0'), registerDelayMs: 100 });
  await sim.start();
  await sim.qmi.vanish(); // an AT-only modem: no QMI port
  const missing = path.join(dir, 'cdc-wdm0');
  const m = new ModemManager({ ports: [missing, sim.cfg.atLink], apn: 'internet', probeTimeoutMs: 400, backoffBaseMs: 5000, backoffCapMs: 5000 });
  t.teardown(async () => {
    await m.stop();
    await sim.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const c = await new Promise<StateChange>((resolve) => {
    const on = (x: StateChange): void => {
      if (x.event === 'probe-failed') (m.off('state', on), resolve(x));
    };
    m.on('state', on);
    m.start();
  });
  t.equal(c.error?.code, 'DC_MODEM_PROBE');
  t.notMatch(c.reason, /no candidate ports/, 'not "no candidate ports" when there were two');
  t.equal(c.reason.split(missing).length - 1, 1, `the missing path appears once: ${c.reason}`);
  t.match(c.reason, /ttyUSB2: answers AT, not QMI/);
});

import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { netnsUnavailable, Topology } from '../../src/sim/hosts.js';
import { ModemSimulator, type ModemSimConfig } from '../../src/sim/modem/sim.js';
import { simBoardModemConfig } from '../../src/sim/modem/board.js';
import { START_MS } from '../helpers/roles.js';

/**
 * Registration loss learnt from QMI alone: the modem has no AT port (the AT candidate path does
 * not exist) and the manager polls only every 10 s, so the NAS Serving System indication
 * ("not registered") is the only fast way to learn it. duocell's own modem and paths code runs
 * in a cell namespace (modem-cell-child.ts). Measured, not asserted tightly: indication → path
 * down, over several rounds (printed as "# measured …"); the assertion is only that the path
 * goes down well before the next poll could have noticed.
 * Needs root (a namespace) and socat (the ptys).
 */
const why = (await netnsUnavailable()) || (spawnSync('socat', ['-V']).status === 0 ? false : 'socat not installed');
const here = path.dirname(fileURLToPath(import.meta.url));
const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript') || (a.startsWith('--import=') && a.includes('tsx')));
const now = (): number => performance.timeOrigin + performance.now();
const POLL_MS = 10_000;
const ROUNDS = 5;

interface Ev {
  ev: string;
  t: number;
  state?: string;
  type?: string;
  reason?: string;
}

t.test('QMI serving-system indication "not registered" → path down, without AT and before any poll (root, netns, socat)', { skip: why }, async (t) => {
  const topo = new Topology(`rfs${process.pid % 1000}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rfs-modem-'));
  t.teardown(async () => {
    await topo.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const cell = await topo.host('cell');
  await cell.ip('link', 'add', 'wwan0', 'type', 'veth', 'peer', 'name', 'wwan0p');
  await cell.ip('link', 'set', 'wwan0p', 'up');
  const links = { at: path.join(dir, 'ttyUSB2'), qmi: path.join(dir, 'cdc-wdm0') };
  const sim = new ModemSimulator({ ...simBoardModemConfig(links, { registerDelayMs: 100, nasIndications: true }) } as ModemSimConfig);
  await sim.start();
  t.teardown(() => sim.stop());
  const noAt = path.join(dir, 'no-such-tty');
  const proc = cell.spawn(process.execPath, [...loader, path.join(here, 'modem-cell-child.ts'), links.qmi, noAt, String(POLL_MS)], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, DUOCELL_LOG_LEVEL: process.env.DUOCELL_LOG_LEVEL ?? 'silent' },
  });
  t.teardown(() => {
    if (proc.exitCode === null) proc.kill('SIGKILL');
  });
  const events: Ev[] = [];
  const waiters = new Set<{ pred: (e: Ev) => boolean; resolve: (e: Ev) => void }>();
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  readline.createInterface({ input: proc.stdout! }).on('line', (l) => {
    let e: Ev;
    try {
      e = JSON.parse(l) as Ev;
    } catch {
      return;
    }
    events.push(e);
    for (const w of waiters) if (w.pred(e)) (waiters.delete(w), w.resolve(e));
  });
  const wait = (pred: (e: Ev) => boolean, ms: number, what: string, from: number): Promise<Ev> => {
    const seen = events.slice(from).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (e: Ev) => (clearTimeout(timer), resolve(e)) };
      const timer = setTimeout(() => {
        waiters.delete(w);
        reject(new Error(`${what}: not within ${ms} ms; last events ${JSON.stringify(events.slice(-4))}; stderr ${stderr.slice(-600)}`));
      }, ms);
      waiters.add(w);
    });
  };
  const pathUp = (e: Ev): boolean => e.ev === 'path' && e.type === 'path-up';
  const pathDown = (e: Ev): boolean => e.ev === 'path' && e.type === 'path-down';

  // the child loads its TypeScript first: at load ~45 it printed nothing in 30 s (as modem-wwan)
  await wait((e) => e.ev === 'ready', START_MS, 'child ready', 0);
  await wait(pathUp, 30_000, 'cellular path up', 0);
  const ms: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    let from = events.length;
    const t0 = now();
    await sim.act({ action: 'deregister' }); // the simulator writes the NAS Serving System indication at once
    const down = await wait(pathDown, 30_000, `round ${i}: path down after the indication`, from);
    ms.push(down.t - t0);
    const st = await wait((e) => e.ev === 'state' && e.state === 'searching', 30_000, `round ${i}: searching`, from);
    t.match(st.reason ?? '', /from QMI serving system \(indication\)/, `round ${i}: the loss came from the QMI indication`);
    from = events.length;
    await sim.act({ action: 'register' });
    await wait(pathUp, 30_000, `round ${i}: path back up`, from);
  }
  const sorted = [...ms].sort((a, b) => a - b);
  t.comment(`measured: QMI serving-system indication "not registered" → path down, ${ROUNDS} rounds: median ${sorted[Math.floor(ROUNDS / 2)]!.toFixed(1)} ms, min ${sorted[0]!.toFixed(1)} ms, max ${sorted[ROUNDS - 1]!.toFixed(1)} ms (${ms.map((x) => x.toFixed(1)).join(', ')})`);
  t.ok(sorted[ROUNDS - 1]! < POLL_MS / 2, 'every time well before a poll could have seen it (indication-driven)');
  proc.stdin!.write('stop\n');
  await wait((e) => e.ev === 'stopped', 30_000, 'child stopped', 0);
});

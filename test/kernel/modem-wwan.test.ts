import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { netnsUnavailable, Topology, type Host } from '../../src/sim/hosts.js';
import { ModemSimulator, type ModemSimConfig } from '../../src/sim/modem/sim.js';
import { simBoardModemConfig } from '../../src/sim/modem/board.js';

/**
 * The simulated board's cellular path comes up through duocell's own interface configuration:
 * the simulator only answers QMI (and provides an unconfigured wwan0, a veth standing in for the
 * qmi_wwan netdev); a child in the cell namespace runs the modem manager with the DataInterface
 * and the paths service (modem-cell-child.ts). Needs root (a namespace) and socat (the ptys).
 *
 * Also times: registration lost (the +CEREG URC / NAS indication) → path down, and port gone →
 * reconnected after the port returns (printed as "# measured …").
 */
const why = (await netnsUnavailable()) || (spawnSync('socat', ['-V']).status === 0 ? false : 'socat not installed');
const here = path.dirname(fileURLToPath(import.meta.url));
const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript') || (a.startsWith('--import=') && a.includes('tsx')));
const now = (): number => performance.timeOrigin + performance.now();

interface Ev {
  ev: string;
  t: number;
  state?: string;
  type?: string;
  addresses?: string[];
  routing?: string;
  reason?: string;
  info?: Record<string, unknown>;
}

class Child {
  readonly events: Ev[] = [];
  readonly #waiters = new Set<{ pred: (e: Ev) => boolean; resolve: (e: Ev) => void }>();
  stderr = '';
  constructor(readonly proc: import('node:child_process').ChildProcess) {
    readline.createInterface({ input: proc.stdout! }).on('line', (l) => {
      let e: Ev;
      try {
        e = JSON.parse(l) as Ev;
      } catch {
        return;
      }
      this.events.push(e);
      for (const w of this.#waiters) if (w.pred(e)) (this.#waiters.delete(w), w.resolve(e));
    });
    proc.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
  }
  /** The first event after index `from` that matches. */
  wait(pred: (e: Ev) => boolean, timeoutMs: number, what: string, from = this.events.length): Promise<Ev> {
    const seen = this.events.slice(from).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (e: Ev) => (clearTimeout(timer), resolve(e)) };
      const timer = setTimeout(() => {
        this.#waiters.delete(w);
        reject(new Error(`${what}: not within ${timeoutMs} ms; last events ${JSON.stringify(this.events.slice(-4))}; stderr ${this.stderr.slice(-600)}`));
      }, timeoutMs);
      this.#waiters.add(w);
    });
  }
}

async function wwan(h: Host): Promise<{ up: boolean; addrs: string[]; mtu: number }> {
  const j = JSON.parse(await h.ip('-j', 'addr', 'show', 'dev', 'wwan0')) as { flags: string[]; mtu: number; addr_info: { local: string; prefixlen: number; scope: string }[] }[];
  const l = j[0]!;
  return { up: l.flags.includes('UP'), mtu: l.mtu, addrs: l.addr_info.filter((a) => a.scope === 'global').map((a) => `${a.local}/${a.prefixlen}`).sort() };
}

const pathUp = (e: Ev): boolean => e.ev === 'path' && e.type === 'path-up';
const pathDown = (e: Ev): boolean => e.ev === 'path' && e.type === 'path-down';
const state = (s: string) => (e: Ev): boolean => e.ev === 'state' && e.state === s;

t.test('modem kernel test (root, netns, socat): duocell configures wwan0 from WDS Get Current Settings; the path comes up, goes down and back', { skip: why }, async (t) => {
  const topo = new Topology(`tmradiosa${process.pid % 1000}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tmodem-'));
  t.teardown(async () => {
    await topo.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const cell = await topo.host('cell');
  // this kernel has no dummy driver: a veth pair stands in for the qmi_wwan netdev (no qmi/raw_ip file)
  await cell.ip('link', 'add', 'wwan0', 'type', 'veth', 'peer', 'name', 'wwan0p');
  await cell.ip('link', 'set', 'wwan0p', 'up');
  const links = { at: path.join(dir, 'ttyUSB2'), qmi: path.join(dir, 'cdc-wdm0') };
  // NAS indications off: registration loss is learnt from the +CEREG URC on the AT port (what is timed);
  // a non-default MTU, so that applying it shows
  const base = simBoardModemConfig(links, { registerDelayMs: 100, nasIndications: false });
  const sim = new ModemSimulator({ ...base, ipv4: { ...base.ipv4!, mtu: 1428 }, ipv6: { ...base.ipv6!, mtu: 1428 } } as ModemSimConfig);
  await sim.start();
  t.teardown(() => sim.stop());
  let simSessions = 0;
  sim.on('wds-started', () => simSessions++);
  t.same(await wwan(cell), { up: false, addrs: [], mtu: 1500 }, 'wwan0 starts down, unaddressed');

  const proc = cell.spawn(process.execPath, [...loader, path.join(here, 'modem-cell-child.ts'), links.qmi, links.at], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, DUOCELL_LOG_LEVEL: process.env.DUOCELL_LOG_LEVEL ?? 'silent' },
  });
  const child = new Child(proc);
  t.teardown(() => {
    if (proc.exitCode === null) proc.kill('SIGKILL');
  });

  // the child compiles its TypeScript first: slow on a loaded 2-core machine
  await child.wait((e) => e.ev === 'ready', 120000, 'child ready');
  await child.wait(pathUp, 30_000, 'cellular path up');
  // up, and (an IPv6 address may be announced a moment after the link) with both families
  const up = await child.wait((e) => e.ev === 'path' && e.state === 'up' && (e.addresses ?? []).length === 2, 30_000, 'cellular path with both families', 0);
  t.ok(simSessions > 0, 'the simulator only started a session; it did not touch wwan0');
  const w = await wwan(cell);
  t.same(w.addrs, ['10.21.0.2/24', 'fd00:21::2/64'], 'wwan0 carries the WDS addresses, put there by duocell');
  t.equal(w.up, true, 'link up');
  t.equal(w.mtu, 1428, 'the session MTU');
  t.same([...(up.addresses ?? [])].sort(), ['10.21.0.2', 'fd00:21::2'], 'the path has both families');
  t.equal(up.routing, 'installed', 'the uplink routing table is installed');
  const table = await cell.ip('route', 'show', 'table', '21');
  t.match(table, /default via 10\.21\.0\.1 dev wwan0/, 'table 21: IPv4 default via the session gateway');
  t.match(await cell.ip('-6', 'route', 'show', 'table', '21'), /default via fd00:21::1 dev wwan0/, 'table 21: IPv6 default via the session gateway');
  t.match(await cell.ip('route', 'show'), /default via 10\.21\.0\.1 dev wwan0 proto 220 metric 50/, 'main table: the cellular default (metric 50)');
  t.match(await cell.ip('rule', 'show'), /from 10\.21\.0\.2 lookup 21/, 'source rule for the session address');

  // registration lost: the URC / NAS indication → path down, interface deconfigured
  let from = child.events.length;
  const t0 = now();
  await sim.act({ action: 'deregister' });
  const down = await child.wait(pathDown, 30_000, 'path down after registration loss', from);
  const regLostMs = down.t - t0;
  await child.wait(state('searching'), 30_000, 'manager searching', from);
  t.same((await wwan(cell)).addrs, [], 'registration lost: addresses removed');
  t.equal((await wwan(cell)).up, false, 'registration lost: wwan0 down');
  t.notMatch(await cell.ip('route', 'show'), /dev wwan0/, 'no route through wwan0 is left');
  from = child.events.length;
  await sim.act({ action: 'register' });
  await child.wait(pathUp, 30_000, 'path back up on re-registration', from);
  t.same((await wwan(cell)).addrs, ['10.21.0.2/24', 'fd00:21::2/64'], 'back up on re-registration');

  // the modem vanishes (both ports) and comes back
  from = child.events.length;
  await sim.act({ action: 'vanish' });
  await child.wait(state('absent'), 30_000, 'absent after vanish', from);
  await child.wait(pathDown, 30_000, 'path down after vanish', from);
  t.equal((await wwan(cell)).up, false, 'modem unplugged: wwan0 down');
  from = child.events.length;
  const t1 = now();
  await sim.act({ action: 'appear' });
  const back = await child.wait(pathUp, 30_000, 'path up after the modem returned', from);
  const reconnectMs = back.t - t1;
  t.same((await wwan(cell)).addrs, ['10.21.0.2/24', 'fd00:21::2/64'], 'replugged: wwan0 addressed again without restarting duocell');

  // stop: everything duocell put on the interface goes
  proc.stdin!.write('stop\n');
  await child.wait((e) => e.ev === 'stopped', 30_000, 'child stopped');
  t.same((await wwan(cell)).addrs, [], 'stopped: addresses removed');
  t.comment(`measured: registration lost (URC) → path down ${regLostMs.toFixed(1)} ms; port gone → reconnected after it returned ${reconnectMs.toFixed(0)} ms`);
  t.ok(regLostMs > 0 && reconnectMs > 0, 'timed');
});

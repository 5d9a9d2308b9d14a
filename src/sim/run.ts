import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { logger } from '../core/logger.js';
import { modemLinks } from './modem-host.js';
import { addMgmtLink, buildSim, projectRoot, simDown, simExists, simRunDir, SIM_ADDR, SIM_PREFIX } from './board.js';
import type { LinksWorld } from './links.js';
import { Pool } from './pool.js';

/** `duocell sim up|down` and the processes of the simulated board. */
const log = logger('duocell:sim');

function node(): string {
  return process.execPath;
}

/** Start a process inside a namespace, detached, its output in the run dir, its PID recorded. */
export function spawnInNs(ns: string, name: string, args: string[], opts: { foreground?: boolean; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
  const dir = simRunDir();
  fs.mkdirSync(dir, { recursive: true });
  const out = opts.foreground === true ? 'inherit' : fs.openSync(path.join(dir, `${name}.log`), 'a');
  // ns '' = the root namespace
  const [cmd, ...rest] = ns === '' ? args : ['ip', 'netns', 'exec', ns, ...args];
  const child = spawn(cmd!, rest, {
    detached: opts.foreground !== true,
    stdio: ['ignore', out, out],
    env: { ...process.env, DUOCELL_STATE_DIR: path.join(dir, `state-${name}`), ...opts.env },
  });
  if (child.pid !== undefined) fs.writeFileSync(path.join(dir, `${name}.pid`), String(child.pid));
  if (opts.foreground !== true) child.unref();
  return child;
}

/** `links`: the links' world, `realistic` (lte + wlan profiles, the default) or `ideal` (plain veth). */
/** `modem`: 'qmi' (the default, QMI + AT) or 'at' (an AT-only module on usb0 with DHCP; board sim-at). */
export async function simUp(opts: { withCell?: boolean; links?: LinksWorld; modem?: 'qmi' | 'at'; concentrators?: number } = {}): Promise<void> {
  if (await simExists()) {
    log.info('sim already up: taking it down first');
    await simDown();
  }
  const sim = await buildSim(SIM_PREFIX, undefined, {
    modem: opts.modem === 'at' ? 'at' : true,
    pathManager: 'userspace',
    links: opts.links ?? 'realistic',
    // The delay lines outlive this command: detached, their PIDs recorded for `sim down`.
    spawnWire: (wire, name, argv) => spawnInNs(wire.ns, name, argv),
  });
  await addMgmtLink(sim.cell);
  // The modem simulator (root namespace: ptys are files; it drives dc-cell's wwan0).
  spawnInNs('', 'modem', [node(), path.join(projectRoot(), 'dist/src/sim/modem-host.js')], { env: { DUOCELL_SIM_MODEM: opts.modem ?? 'qmi' } });
  const peer = path.join(projectRoot(), 'dist/src/sim/peer.js');
  spawnInNs(sim.srv.ns, 'n-server', [node(), peer, 'server', '::', '8000']);
  spawnInNs(sim.srv.ns, 'm-server', [node(), peer, 'server', '::', '8001', '--mptcp']);
  // The concentrator (Convert + SOCKS5 over MPTCP, plain TCP to dc-srv).
  spawnInNs(sim.conc.ns, 'concentrator', [node(), path.join(projectRoot(), 'bin/duocell.js'), 'run', '--board', 'concentrator-sim']);
  if (opts.withCell === true) {
    spawnInNs(sim.cell.ns, 'cell', [node(), path.join(projectRoot(), 'bin/duocell.js'), 'run', '--board', opts.modem === 'at' ? 'sim-at' : 'sim'], { env: cellEnv() });
  }
  if (opts.concentrators !== undefined && opts.concentrators > 0) {
    // The anycast pool (src/sim/pool.ts): N concentrators behind dc-pool-rtr, odd ones at site A
    // (5 ms one way to the router), even ones at site B (25 ms); cells dc-pool-cell1/2, server dc-pool-srv.
    const pool = await Pool.build(sim.topo, {
      instances: opts.concentrators,
      start: 0,
      dir: path.join(simRunDir(), 'pool'),
      bin: path.join(projectRoot(), 'bin/duocell.js'),
      names: 'pool-',
      siteDelayMs: (n) => (n % 2 === 1 ? 5 : 25),
      spawn: (h, name, argv, env) => spawnInNs(h.ns, `pool-${name}`, argv, env === undefined ? {} : { env }),
    });
    // the server first: an instance announces only while it reaches it
    spawnInNs(pool.srv.ns, 'pool-server', [node(), peer, 'server', '0.0.0.0', '8000']);
    for (let n = 1; n <= opts.concentrators; n++) await pool.startInstance(n);
  }
  log.info({ namespaces: sim.topo.hosts.map((h) => h.ns), links: opts.links ?? 'realistic', concentrators: opts.concentrators ?? 1 }, 'sim up');
}

/** A small traffic generator in dc-mue: a transfer every few seconds through the cell. */
export function startTrafficGenerator(): ChildProcess {
  const peer = path.join(projectRoot(), 'dist/src/sim/peer.js');
  // M-UE: explicit through the cell to the N-server; N-UE: plain TCP to the N-server, pooled by the
  // cell (TPROXY → Convert over both uplinks → concentrator).
  const mue = `while true; do ${node()} ${peer} client ${SIM_ADDR.cell.service[0]} 9000 4000000 8000000 --mptcp >/dev/null 2>&1; sleep 2; done`;
  spawnInNs(`${SIM_PREFIX}-lan`, 'traffic-nue', ['sh', '-c', `while true; do ${node()} ${peer} client ${SIM_ADDR.srv.srv0[0]} 8000 2000000 6000000 >/dev/null 2>&1; sleep 3; done`]);
  return spawnInNs(`${SIM_PREFIX}-mue`, 'traffic', ['sh', '-c', mue]);
}

/** The cell's environment on the simulated board: where the modem simulator's ports are. */
export function cellEnv(): NodeJS.ProcessEnv {
  const l = modemLinks();
  return { DUOCELL_MODEM_LINKS: `at=${l.at},qmi=${l.qmi}` };
}

export { simDown, simExists };

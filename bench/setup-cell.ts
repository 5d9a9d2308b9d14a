import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { buildSim, SIM_ADDR, SIM_RATES } from '../src/sim/board.js';
import type { Host } from '../src/sim/hosts.js';
import { cpuSeconds, fromRuns, runsWanted, sleep, type BenchResult } from './lib.js';
import { applyShipped, shippedNodeFlags, underShippedLimits } from './sysctl.js';

/**
 * New connections per second through a cell's transparent listener (group `setup-cell`): the
 * `setup` group measures an explicit listener of a concentrator preset (the direct connector),
 * not the cell. Here the simulated board (ideal links, own namespaces bscf-*), `duocell run`
 * with the cell preset: both uplinks (both labelled wlan as in the convert group: a cellular one needs the modem; the userspace path manager running), nftables TPROXY of
 * LAN port 7001 into the transparent listener (steering), proxy selection with an on-path
 * candidate for it (and an off-path one for another application), upstream MPTCP, the shipped
 * sysctls. The N-UE's load generator (connload rate, 64 at a time) to the N-server's echo
 * server through the cell, vs the same to an echo port the cell does not intercept (forwarded
 * over the same uplinks) in the same run. DUOCELL_FAST_PATH=1 and =0 alternate per run (the
 * cell restarted with each), so both modes see the same load; figures are ratios to the
 * same-run direct rate. The sim's ideal links keep their tbf here (not the delay line of the
 * bandwidth groups' ideal world, bench/world.ts): echoes of one byte never fill its queue (tc -s
 * in the cell: 0 drops in 270,000 packets over three runs), and a delay line would put a userspace
 * forwarding hop per packet on the 2 cores the cell and the load generator share.
 *   setup-cell-fast / setup-cell-js      conn/s with the fast path / without it (JS path)
 *   setup-cell-cpu-fast                  the cell process's CPU µs per proxied connection,
 *                                        against the same with DUOCELL_FAST_PATH=0
 * BENCH_SETUP_TOTAL (5000): connections per run; BENCH_SETUP_UPSTREAM=tcp: the listener's
 * upstream plain TCP instead of MPTCP (the path manager then has nothing to do per connection).
 * For profiling and A/B of builds (stderr lines only, the entries stay those of this build):
 * BENCH_SETUP_MODES=fast|js|fast,js (default both); BENCH_CELL_NODE_FLAGS: extra node flags for
 * the cell only (e.g. `--cpu-prof --cpu-prof-dir=/tmp/p`); BENCH_CELL_BIN_B: another build's
 * bin/duocell.js, run after this one's in every run and mode (the order alternating per run),
 * its lines tagged `B`.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin/duocell.js');
const LOAD = path.join(ROOT, 'build/connload'); // native/connload.c
const WEB = 18093;
const TOTAL = Number(process.env.BENCH_SETUP_TOTAL ?? 5000);

async function waitPort(h: Host, port: number, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while ((await h.exec('ss', ['-Hltn', `sport = :${port}`], { allowFail: true })).trim() === '') {
    if (Date.now() > end) throw new Error(`port ${port} never opened in ${h.ns}`);
    await sleep(100);
  }
}

function cellBoard(): object {
  const A = SIM_ADDR;
  return {
    name: 'bench-setup-cell',
    preset: 'cell',
    uplinks: [
      { name: 'up-a', access: 'wlan', interface: 'wwan0', gateway4: A.conc.wwan0[0], gateway6: A.conc.wwan0[1], table: 21 },
      { name: 'up-b', access: 'wlan', interface: 'wlan0', gateway4: A.conc.wlan0[0], gateway6: A.conc.wlan0[1], table: 22 },
    ],
    lan: { interfaces: ['lan0'] },
    web: { listen: [{ host: '127.0.0.1', port: WEB }] },
    listeners: [{ kind: 'transparent', host: '::', port: 7001, mptcp: true, claim: 'all', upstream: process.env.BENCH_SETUP_UPSTREAM ?? 'mptcp' }],
    accessNetworks: [],
    steering: { table: 'duocell_bsc' },
    proxies: [
      { name: 'self', address: A.cell.lan0[0], port: 1, protocol: 'convert', type: 'on-path', priority: 10 },
      { name: 'video', address: A.conc.wwan0[0], port: 5124, protocol: 'convert', priority: 20, apps: [{ name: 'video', ports: [8443] }] },
    ],
  };
}

const NODE_FLAGS = (process.env.BENCH_CELL_NODE_FLAGS ?? '').split(/\s+/).filter((f) => f !== '');
const BIN_B = process.env.BENCH_CELL_BIN_B;

async function startCell(h: Host, fast: '0' | '1', bin = BIN): Promise<{ child: ChildProcess; dir: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-bench-cell-'));
  fs.writeFileSync(path.join(dir, 'board.json'), JSON.stringify(cellBoard()));
  execFileSync(process.execPath, [BIN, 'policy', 'set', 'default', '--max-sessions', '1000000', '--max-server-sessions', '1000000', '--state-dir', dir], { stdio: 'ignore' });
  const child = h.spawn(...underShippedLimits(process.execPath, [...shippedNodeFlags(), ...NODE_FLAGS, bin, 'run', '--board', path.join(dir, 'board.json'), '--state-dir', dir]), {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, DUOCELL_LOG_LEVEL: 'warn', DUOCELL_FAST_PATH: fast },
  });
  await waitPort(h, 7001);
  await waitPort(h, WEB);
  await sleep(500);
  return { child, dir };
}

async function stop(c: ChildProcess, dir: string): Promise<void> {
  if (c.exitCode === null && c.signalCode === null) {
    const done = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await Promise.race([done, sleep(10_000)]);
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

interface Rate {
  rate: number;
  ok: number;
  failed: number;
  errors: Record<string, number>;
}

/**
 * The load generator's own port space (the N-UE namespace only; the cell keeps the shipped
 * sysctls). It closes first, so each connection leaves a TIME_WAIT (60 s) on its 4-tuple, and all
 * of them go from one address to one server port: the default 28,232 ephemeral ports then last
 * 60 s at 470 conn/s, and 5,000 warm-up + 5,000 measured connections per mode and run ran out of
 * them (connect() EADDRNOTAVAIL in the load generator, counted as the cell's failures). Many
 * real N-UEs have an address each; this one stands for all of them and, like any load generator,
 * reuses its own TIME_WAIT 4-tuples (tcp_tw_reuse = 1: once older than tcp_tw_reuse_delay, 1 s,
 * with timestamps, RFC 7323 PAWS) and uses the shipped port range.
 */
async function clientPorts(lan: Host): Promise<void> {
  await lan.sysctl('net.ipv4.tcp_tw_reuse', 1);
  await lan.sysctl('net.ipv4.ip_local_port_range', '10240 65535');
}

async function rate(lan: Host, port: number): Promise<Rate> {
  return JSON.parse(await lan.exec(LOAD, ['rate', SIM_ADDR.srv.srv0[0], String(port), String(TOTAL), '64'])) as Rate;
}

export async function setupCellBench(): Promise<BenchResult[]> {
  const sim = await buildSim('bscf', SIM_RATES, { links: 'ideal', pathManager: 'userspace' });
  try {
    const shipped = await applyShipped(sim.cell);
    await clientPorts(sim.lan);
    for (const p of ['7000', '7001']) sim.srv.spawn(LOAD, ['echo', p, '0.0.0.0'], { stdio: 'ignore' });
    await waitPort(sim.srv, 7001);
    const n = runsWanted();
    const runs = { fast: [] as Array<number | Error>, js: [] as Array<number | Error>, fastDirect: [] as Array<number | Error>, jsDirect: [] as Array<number | Error> };
    const cpu = { fast: [] as number[], js: [] as number[] };
    const failed = { fast: 0, js: 0, direct: 0 };
    const modes = (process.env.BENCH_SETUP_MODES ?? 'fast,js').split(',').filter((m): m is 'fast' | 'js' => m === 'fast' || m === 'js');
    for (let i = 0; i < n; i++) {
      const order = i % 2 === 0 ? modes : [...modes].reverse();
      const builds = BIN_B === undefined ? ['A'] : i % 2 === 0 ? ['A', 'B'] : ['B', 'A'];
      for (const mode of order) {
        for (const build of builds) {
          const cell = await startCell(sim.cell, mode === 'fast' ? '1' : '0', build === 'A' ? BIN : BIN_B);
          const tagB = BIN_B === undefined ? '' : ` ${build}`;
          try {
            await rate(sim.lan, 7001).catch(() => undefined); // warm-up: ARP, the path manager's first joins
            const c0 = cpuSeconds(cell.child.pid!);
            const p = await rate(sim.lan, 7001);
            await sleep(200);
            const us = ((cpuSeconds(cell.child.pid!) - c0) * 1e6) / Math.max(1, p.ok);
            const d = await rate(sim.lan, 7000);
            if (build === 'A') {
              cpu[mode].push(us);
              runs[mode].push(p.failed > 0 ? new Error(`${p.failed} of ${TOTAL} proxied connections failed: ${JSON.stringify(p.errors)}`) : p.rate);
              runs[mode === 'fast' ? 'fastDirect' : 'jsDirect'].push(d.rate);
              failed[mode] += p.failed;
              failed.direct += d.failed;
            }
            process.stderr.write(`setup-cell run ${i + 1} ${mode}${tagB}: proxied ${p.rate.toFixed(0)} conn/s, direct ${d.rate.toFixed(0)} conn/s, ratio ${(p.rate / d.rate).toFixed(3)}, cell CPU ${us.toFixed(0)} µs/conn${p.failed > 0 ? `, ${p.failed} failed` : ''}\n`);
          } catch (e) {
            if (build === 'A') {
              runs[mode].push(e instanceof Error ? e : new Error(String(e)));
              runs[mode === 'fast' ? 'fastDirect' : 'jsDirect'].push(e instanceof Error ? e : new Error(String(e)));
            }
            process.stderr.write(`setup-cell run ${i + 1} ${mode}${tagB}: failed: ${String(e)}\n`);
          } finally {
            await stop(cell.child, cell.dir);
          }
        }
      }
    }
    const tag = { links: 'ideal', pm: shipped.pm };
    const note = (mode: string): string =>
      `${n} runs of ${TOTAL} connections, 64 at a time, N-UE → cell (TPROXY, transparent listener, proxy selection: on-path) → N-server echo, DUOCELL_FAST_PATH=${mode === 'fast' ? 1 : 0}; the cell restarted per run, modes alternating; failed: proxied ${failed[mode as 'fast' | 'js']}, direct ${failed.direct}; the load generator and the link emulator share the 2 cores`;
    return [
      fromRuns('setup-cell-fast', 'conn/s', runs.fast, runs.fastDirect, 'direct N-UE → N-server over the same uplinks, same run', { ...tag, note: note('fast') }),
      fromRuns('setup-cell-js', 'conn/s', runs.js, runs.jsDirect, 'direct N-UE → N-server over the same uplinks, same run', { ...tag, note: note('js') }),
      fromRuns('setup-cell-cpu-fast', 'CPU µs/conn', cpu.fast, cpu.js, 'the same with DUOCELL_FAST_PATH=0', { ...tag, note: "the cell process's CPU (all threads, /proc) over each proxied run divided by its echoed connections" }),
    ];
  } finally {
    await sim.topo.destroy();
  }
}

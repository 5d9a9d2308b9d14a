import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { buildSim, SIM_ADDR, SIM_RATES } from '../src/sim/board.js';
import type { Host } from '../src/sim/hosts.js';
import { benchDir, fromRuns, runsWanted, sleep, type BenchResult } from './lib.js';
import { alternate } from './stats.js';
import { applyShipped, underShippedLimits } from './sysctl.js';
import { transfer, XferServer } from './xfer-run.js';
import { rateIn, worlds, type World } from './world.js';

/**
 * N-UE pooling through the cell and the concentrator (group `convert`), on the simulated board's
 * topology (own namespaces bsmr-* / bsmi-*), per link world, runs interleaved, medians of
 * BENCH_RUNS (5); the cell and the concentrator run the shipped sysctls:
 *   aggregate-nue      download N-server → concentrator → (Convert over MPTCP, both uplinks) →
 *                      cell (TPROXY) → N-UE, vs kernel-only MPTCP (the in-kernel path manager
 *                      with the WLAN endpoint, switched on for the baseline's runs only) from the
 *                      cell to an M-server over the same uplinks
 *   convert-setup      connect() to the echoed first byte from the N-UE through Convert over the
 *                      WLAN uplink (one run: median of K sequential connections), vs a direct
 *                      TCP connection over the same uplink; -tfo: the Convert message in the SYN
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const LOAD = path.join(ROOT, 'build/connload'); // native/connload.c
const BIN = path.join(ROOT, 'bin/duocell.js');
const MiB = 1 << 20;
const BYTES = 24 * MiB;

async function appliance(h: Host, board: object, port: number): Promise<ChildProcess> {
  const dir = benchDir();
  fs.writeFileSync(path.join(dir, 'board.json'), JSON.stringify(board));
  const child = h.spawn(...underShippedLimits(process.execPath, [BIN, 'run', '--board', path.join(dir, 'board.json'), '--state-dir', dir]), { env: { ...process.env, DUOCELL_LOG_LEVEL: 'warn' } });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  for (let i = 0; i < 150; i++) {
    if ((await h.exec('ss', ['-Hltn', `sport = :${port}`], { allowFail: true })).trim() !== '') return child;
    await sleep(100);
  }
  throw new Error(`appliance in ${h.ns} did not listen on ${port}: ${out.slice(-2000)}`);
}

async function stop(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const done = new Promise((r) => c.once('exit', r));
  c.kill('SIGTERM');
  await Promise.race([done, sleep(8000)]);
  if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

/** One latency run: the median ms of `k` sequential connect + echo + close; failures reject. */
async function latencyRun(lan: Host, port: number, k: number): Promise<number> {
  const out = await lan.exec(LOAD, ['latency', SIM_ADDR.srv.srv0[0], String(port), String(k)], { allowFail: true });
  const r = JSON.parse(out.trim().split('\n').pop() || '{}') as { medianMs?: number; failed?: number; error?: string };
  if (r.error !== undefined) throw new Error(r.error);
  if ((r.failed ?? 0) > 0) throw new Error(`${r.failed} of ${k} connections failed`);
  if (r.medianMs === undefined) throw new Error(`connload printed no figure: ${out.slice(-200)}`);
  return r.medianMs;
}

async function world(w: World): Promise<BenchResult[]> {
  const sim = await buildSim(w === 'ideal' ? 'bsmi' : 'bsmr', SIM_RATES, { links: w, rateIn: rateIn(w) });
  const n = runsWanted();
  try {
    const A = SIM_ADDR;
    // The shipped settings in both (the cell's TPROXY needs the shipped tcp_fwmark_accept = 0).
    const shipped = await applyShipped(sim.cell);
    await applyShipped(sim.conc);
    const tag: Partial<BenchResult> = { links: w, pm: shipped.pm };
    const deviation = 'shipped sysctls in the cell and the concentrator';
    const nserver = await XferServer.start(sim.srv, '::', 8000, false);
    const mserver = await XferServer.start(sim.srv, '::', 8001, true);
    for (const p of ['7000', '7001', '7002']) sim.srv.spawn(LOAD, ['echo', p, '0.0.0.0'], { stdio: 'ignore' });
    await appliance(
      sim.conc,
      {
        name: 'bench-conc',
        preset: 'concentrator',
        uplinks: [],
        lan: { interfaces: [] },
        web: { listen: [{ host: '127.0.0.1', port: 18085 }] },
        // A TFO queue: the convert-setup-tfo client puts the Convert message in its SYN.
        listeners: [{ kind: 'convert', host: '::', port: 5124, mptcp: true, upstream: 'tcp', fastOpen: 64, options: { cookies: ['bench-cookie'] } }],
        accessNetworks: [],
      },
      5124,
    );
    const cell1 = await appliance(
      sim.cell,
      {
        name: 'bench-cell',
        preset: 'cell',
        uplinks: [
          { name: 'up-a', access: 'wlan', interface: 'wwan0', gateway4: A.conc.wwan0[0], gateway6: A.conc.wwan0[1], table: 21 },
          { name: 'up-b', access: 'wlan', interface: 'wlan0', gateway4: A.conc.wlan0[0], gateway6: A.conc.wlan0[1], table: 22 },
        ],
        lan: { interfaces: ['lan0'] },
        web: { listen: [{ host: '127.0.0.1', port: 18086 }] },
        listeners: [{ kind: 'transparent', host: '::', port: 8000, mptcp: true, claim: 'all', upstream: 'mptcp', options: { concentrator: `${A.conc.wwan0[0]}:5124`, cookie: 'bench-cookie' } }],
        accessNetworks: [],
        steering: { table: 'duocell_bench' },
      },
      8000,
    );
    await sleep(500);
    const pooled = async (): Promise<number> => (await transfer(sim.lan, nserver, { host: A.srv.srv0[0], port: 8000, mptcp: false, receive: BYTES })).mbit;
    const kernelOnly = async (): Promise<number> => {
      // The baseline is the kernel's own path manager: the in-kernel PM (WLAN endpoint) for this run only.
      await sim.cell.sysctl('net.mptcp.pm_type', 0);
      try {
        return (await transfer(sim.cell, mserver, { host: A.srv.srv0[0], port: 8001, mptcp: true, receive: BYTES, from: A.cell.wwan0[0] })).mbit;
      } finally {
        if (shipped.pm === 'userspace') await sim.cell.sysctl('net.mptcp.pm_type', 1);
      }
    };
    const agg = await alternate(n, pooled, kernelOnly);
    await stop(cell1);

    // convert-setup: a cell whose upstream is the WLAN uplink only; the direct connection to the
    // echo port 7000 is routed over the same uplink both ways (policy rules on the cell and the
    // concentrator), so that the two share one path.
    await sim.cell.ip('rule', 'add', 'iif', 'lan0', 'ipproto', 'tcp', 'dport', '7000', 'table', '22', 'priority', '900');
    await sim.conc.ip('route', 'replace', '10.13.0.0/24', 'via', A.cell.wlan0[0], 'dev', 'wlan0', 'table', '122');
    await sim.conc.ip('rule', 'add', 'iif', 'srv0', 'ipproto', 'tcp', 'sport', '7000', 'table', '122', 'priority', '900');
    const claim = (port: number, fastOpen: boolean): object => ({
      kind: 'transparent', host: '::', port, mptcp: true, claim: 'all', upstream: 'mptcp',
      options: { concentrator: `${A.conc.wwan0[0]}:5124`, cookie: 'bench-cookie', fastOpen },
    });
    await appliance(
      sim.cell,
      {
        name: 'bench-cell-2',
        preset: 'cell',
        uplinks: [{ name: 'up-b', access: 'wlan', interface: 'wlan0', gateway4: A.conc.wlan0[0], gateway6: A.conc.wlan0[1], table: 22 }],
        lan: { interfaces: ['lan0'] },
        web: { listen: [{ host: '127.0.0.1', port: 18087 }] },
        listeners: [claim(7001, false), claim(7002, true)],
        accessNetworks: [],
        steering: { table: 'duocell_bench2', routeTable: 101, mark: 2 },
      },
      7002,
    );
    await sleep(300);
    const k = w === 'ideal' ? 100 : 30;
    // one warm-up each (the TFO cookie, ARP, the concentrator's first upstream)
    for (const p of [7000, 7001, 7002]) await latencyRun(sim.lan, p, 3).catch(() => undefined);
    const direct: Array<number | Error> = [];
    const conv: Array<number | Error> = [];
    const tfo: Array<number | Error> = [];
    const wrap = (p: Promise<number>): Promise<number | Error> => p.catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
    for (let i = 0; i < n; i++) {
      direct.push(await wrap(latencyRun(sim.lan, 7000, k)));
      conv.push(await wrap(latencyRun(sim.lan, 7001, k)));
      tfo.push(await wrap(latencyRun(sim.lan, 7002, k)));
    }
    const sum = SIM_RATES.cellular + SIM_RATES.wlan;
    const r105 = { target: 'ratio <= 1.05', judge: (x: { ratio: number }) => x.ratio <= 1.05 };
    return [
      fromRuns('aggregate-nue', 'Mbit/s', agg.a, agg.b, 'kernel-only MPTCP over the same two uplinks', {
        ...tag,
        target: 'ratio >= 0.95',
        judge: (x) => x.ratio >= 0.95,
        note: `${BYTES / MiB} MiB download to the N-UE, SHA-256 checked; sum of the uplinks ${sum} Mbit/s; ${deviation}`,
      }),
      fromRuns('convert-setup', 'ms to first byte', conv, direct, 'direct TCP over the same path (WLAN uplink)', {
        ...tag,
        ...r105,
        note: `one run = median of ${k} sequential connections from the N-UE, connect() to the echoed first byte; Convert after the handshake; ${deviation}`,
      }),
      fromRuns('convert-setup-tfo', 'ms to first byte', tfo, direct, 'direct TCP over the same path (WLAN uplink)', {
        ...tag,
        ...r105,
        note: `Convert message in the SYN (TCP_FASTOPEN_CONNECT on MPTCP, the concentrator's TFO queue, the shipped tcp_fastopen); ${deviation}`,
      }),
    ];
  } finally {
    await sim.topo.destroy();
  }
}

export async function convertBenches(): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  for (const w of worlds()) out.push(...(await world(w)));
  return out;
}

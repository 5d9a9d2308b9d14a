import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSim, SIM_ADDR, SIM_RATES } from '../src/sim/board.js';
import type { Host } from '../src/sim/hosts.js';
import { result, sleep, type BenchResult } from './lib.js';

/**
 * N-UE pooling through the cell and the concentrator, on the simulated board's topology (own
 * namespaces bsm-*), against kernel-only MPTCP over the same two shaped uplinks:
 *   aggregate-nue: bulk download N-UE → cell (TPROXY, Convert over MPTCP) → concentrator → N-server,
 *                  vs an MPTCP client in the cell to an M-server over the same uplinks
 *   convert-setup: time to the first echoed byte through Convert vs a direct TCP connection
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PEER = path.join(ROOT, 'dist/src/sim/peer.js');
const LOAD = path.join(ROOT, 'dist/bench/connload.js');
const BIN = path.join(ROOT, 'bin/duocell.js');
const MiB = 1 << 20;

async function appliance(h: Host, board: object, port: number): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-bench-'));
  fs.writeFileSync(path.join(dir, 'board.json'), JSON.stringify(board));
  const child = h.spawn(process.execPath, [BIN, 'run', '--board', path.join(dir, 'board.json'), '--state-dir', dir], { env: { ...process.env, DUOCELL_LOG_LEVEL: 'warn' } });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  for (let i = 0; i < 150; i++) {
    if ((await h.exec('ss', ['-Hltn', `sport = :${port}`], { allowFail: true })).trim() !== '') return;
    await sleep(100);
  }
  throw new Error(`appliance in ${h.ns} did not listen on ${port}: ${out.slice(-2000)}`);
}

export async function convertBenches(): Promise<BenchResult[]> {
  const sim = await buildSim('bsm');
  try {
    const A = SIM_ADDR;
    sim.srv.spawn(process.execPath, [PEER, 'server', '::', '8000'], { stdio: 'ignore' });
    sim.srv.spawn(process.execPath, [PEER, 'server', '::', '8001', '--mptcp'], { stdio: 'ignore' });
    sim.srv.spawn(process.execPath, [LOAD, 'echo', '7000', '0.0.0.0'], { stdio: 'ignore' });
    for (const h of [sim.cell, sim.conc]) await h.sysctl('net.ipv4.tcp_fastopen', '0x207');
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
    const cellBoard = (port: number, target: string) => ({
      name: 'bench-cell',
      preset: 'cell',
      uplinks: [
        { name: 'up-a', access: 'wlan', interface: 'wwan0', gateway4: A.conc.wwan0[0], gateway6: A.conc.wwan0[1], table: 21 },
        { name: 'up-b', access: 'wlan', interface: 'wlan0', gateway4: A.conc.wlan0[0], gateway6: A.conc.wlan0[1], table: 22 },
      ],
      lan: { interfaces: ['lan0'] },
      web: { listen: [{ host: '127.0.0.1', port: 18086 }] },
      listeners: [{ kind: 'transparent', host: '::', port, mptcp: true, claim: 'all', upstream: 'mptcp', options: { concentrator: target, cookie: 'bench-cookie' } }],
      accessNetworks: [],
      steering: { table: 'duocell_bench' },
    });
    await appliance(sim.cell, cellBoard(8000, `${A.conc.wwan0[0]}:5124`), 8000);
    await sleep(500);
    const bytes = 48 * MiB;
    const mbit = (ms: number): number => (bytes * 8) / (ms / 1000) / 1e6;
    const run = async (h: Host, args: string[]): Promise<number> => {
      const out = await h.exec(process.execPath, [PEER, 'client', ...args], { allowFail: true });
      const r = JSON.parse(out.trim().split('\n').pop() ?? '{}') as { ms?: number; error?: string };
      if (r.ms === undefined || r.error !== undefined) throw new Error(`transfer failed: ${out}`);
      return mbit(r.ms);
    };
    const pooled: number[] = [];
    const kernel: number[] = [];
    for (let i = 0; i < 3; i++) {
      // Downloads: the client's clock stops at the server's FIN after the last byte (an upload's
      // clock would stop when the bytes are queued in the proxy's buffers).
      pooled.push(await run(sim.lan, [A.srv.srv0[0], '8000', '0', String(bytes)]));
      kernel.push(await run(sim.cell, [A.srv.srv0[0], '8001', '0', String(bytes), '--mptcp', '--from', A.cell.wwan0[0]]));
    }
    const p = Math.max(...pooled);
    const k = Math.max(...kernel);
    // Time to first byte (connect + 1-byte echo): direct on an unclaimed port first.
    const lat = async (port: number): Promise<number> =>
      (JSON.parse(await sim.lan.exec(process.execPath, [LOAD, 'latency', A.srv.srv0[0], String(port), '200'])) as { medianMs: number }).medianMs;
    const direct = await lat(7000);
    return [
      result('aggregate-nue', 'Mbit/s', p, k, 'kernel-only MPTCP over the same two uplinks', { target: 'ratio >= 0.95', note: `sum of the shaped uplinks ${SIM_RATES.cellular + SIM_RATES.wlan} Mbit/s` }),
      ...(await convertSetup(sim, direct, lat)),
    ];
  } finally {
    await sim.topo.destroy();
  }
}

/**
 * Restart the cell with the echo ports claimed, and time the first byte through Convert: 7001
 * with the Convert message after the handshake (the default), 7002 with it in the SYN (TFO).
 * The figure is connect + 1-byte echo + close, sequential, median of 200.
 */
async function convertSetup(sim: Awaited<ReturnType<typeof buildSim>>, direct: number, lat: (port: number) => Promise<number>): Promise<BenchResult[]> {
  const A = SIM_ADDR;
  // Echo servers on claimed ports: 7001 and 7002 are claimed by the second cell's listeners.
  for (const p of ['7001', '7002']) sim.srv.spawn(process.execPath, [LOAD, 'echo', p, '0.0.0.0'], { stdio: 'ignore' });
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
  const viaConvert = await lat(7001);
  const viaTfo = await lat(7002);
  const note =
    'connect + 1-byte echo + close through two proxies on ~0-RTT veth paths: the gap is per-connection work in the two processes, not round trips. ' +
    'Was 7.5 ms before the cell stopped remembering the concentrator as an M-server (an nft run and a store write per session)';
  return [
    result('convert-setup', 'ms to first byte', viaConvert, direct, 'direct TCP over the same path', { target: 'ratio <= 1.05 with TFO', note }),
    result('convert-setup-tfo', 'ms to first byte', viaTfo, direct, 'direct TCP over the same path', {
      target: 'ratio <= 1.05',
      note: 'Convert message in the SYN (TCP_FASTOPEN_CONNECT on MPTCP, listener TFO queue): saves one ~0 RTT here; off by default because MPTCP+TFO transfers ran 7x slower on 6.18 (convert-chain test)',
    }),
  ];
}

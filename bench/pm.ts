import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Topology, type Host } from '../src/sim/hosts.js';
import { SIM_RATES } from '../src/sim/board.js';
import { RpcClient } from '../src/sim/rpc.js';
import { result, sleep, type BenchResult } from './lib.js';

/**
 * Path manager benchmarks in namespaces (group `pm`):
 *   ratio-convergence       |cellular share − 30 %| (points) of the bytes received from 10 s to
 *                           14 s after 20 bulk transfers start over cellular 20 / WLAN 30 Mbit/s,
 *                           steered to 30:70 (counted at the receiver); baseline: the same unsteered
 *   ratio-convergence-time  seconds until a trailing 3 s window is first within ±5 points
 *   pm-reaction             a refused MP_JOIN: its sub_established event → SUBFLOW_DESTROY acked
 *                           (PmService lastEnforceMs), median of 10; baseline: a no-op mptcp_pm
 *                           request's round trip (GET_LIMITS) in the same namespace
 *   pm-reaction-path-down   the kernel's link-down notification → the path's endpoint deleted
 *                           (DEL_ADDR acked), median of 5; same baseline
 *   pm-failover             active-standby: the active link set down → bytes flow on the standby
 *                           at the receiver (64 KiB more), median of 3
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CHILD = path.join(ROOT, 'dist/bench/pm-child.js');

/** The benchmark's helper process in a namespace (bench/pm-child.ts). */
class Child extends RpcClient {
  constructor(h: Host) {
    super(h.spawn(process.execPath, [CHILD], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, DUOCELL_LOG_LEVEL: 'silent' } }));
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)]!;
};

interface SteerRig {
  topo: Topology;
  cell: Host;
  C: Child;
  S: Child;
  port: number;
}

async function steerRig(policy: unknown): Promise<SteerRig> {
  const topo = new Topology('bpm');
  const cell = await topo.host('cell');
  const srv = await topo.host('srv');
  await topo.link(cell, 'wwan0', srv, 'r0', { a: ['10.79.1.1/24'], b: ['10.79.1.2/24'], rateMbit: SIM_RATES.cellular });
  await topo.link(cell, 'wlan0', srv, 'r1', { a: ['10.79.2.1/24'], b: ['10.79.2.2/24'], rateMbit: SIM_RATES.wlan });
  await srv.mptcpLimits(8, 8);
  await cell.sysctl('net.mptcp.path_manager', 'userspace');
  await cell.sysctl('net.ipv4.tcp_notsent_lowat', 16384);
  const C = new Child(cell);
  const S = new Child(srv);
  const port = await S.call<number>('sink', 0);
  await C.call('steer', [
    { name: 'cell', access: 'cellular', interface: 'wwan0', gateway4: '10.79.1.2', table: 231 },
    { name: 'wifi', access: 'wlan', interface: 'wlan0', gateway4: '10.79.2.2', table: 232 },
  ], policy);
  return { topo, cell, C, S, port };
}

async function receivedSplit(S: Child): Promise<{ cell: number; wlan: number; at: number }> {
  const list = await S.call<Array<{ daddr: string; bytesReceived: number }>>('diag');
  const r = { cell: 0, wlan: 0, at: Date.now() };
  for (const d of list) {
    if (d.daddr === '10.79.1.1') r.cell += d.bytesReceived;
    else r.wlan += d.bytesReceived;
  }
  return r;
}

interface RatioTrace {
  /** Cellular share over a trailing 3 s window, every 250 ms once the window is full. */
  w3: Array<{ s: number; share: number }>;
  /** Cellular share of the bytes received between 10 s and the end. */
  after10: number;
}

/** 20 bulk transfers, steered to 30:70 or not, for `ms`; the split as the receiver counts it. */
async function ratioRun(steered: boolean, ms = 14_000): Promise<RatioTrace> {
  const r = await steerRig(steered ? { mode: 'ratio', ratio: { cellular: 30, wlan: 70 } } : null);
  try {
    const t0 = Date.now();
    await r.C.call('bulk', '10.79.1.2', r.port, 20, ['10.79.1.1', '10.79.2.1']);
    const cum: Array<{ cell: number; wlan: number; at: number }> = [];
    const w3: Array<{ s: number; share: number }> = [];
    const share = (a: { cell: number; wlan: number }, b: { cell: number; wlan: number }): number => (100 * (b.cell - a.cell)) / Math.max(1, b.cell - a.cell + b.wlan - a.wlan);
    while (Date.now() - t0 < ms) {
      const x = await receivedSplit(r.S);
      const prev = cum.at(-1);
      cum.push({ cell: Math.max(prev?.cell ?? 0, x.cell), wlan: Math.max(prev?.wlan ?? 0, x.wlan), at: x.at });
      if (x.at - t0 >= 3000) w3.push({ s: (x.at - t0) / 1000, share: share(cum.find((y) => y.at >= x.at - 3000)!, cum.at(-1)!) });
      await sleep(250);
    }
    await r.C.call('stop');
    return { w3, after10: share(cum.find((y) => y.at - t0 >= 10_000)!, cum.at(-1)!) };
  } finally {
    await r.topo.destroy();
  }
}

async function failoverRun(): Promise<{ ms: number; acked?: number }> {
  const r = await steerRig({ mode: 'active-standby', ratio: { cellular: 50, wlan: 50 }, preferred: 'wlan' });
  try {
    await r.C.call('bulk', '10.79.1.2', r.port, 4, ['10.79.1.1']);
    await sleep(3000);
    const before = await receivedSplit(r.S);
    const t0 = Date.now();
    await r.cell.linkSet('wlan0', 'down');
    let ms = NaN;
    while (Date.now() - t0 < 5000) {
      const x = await receivedSplit(r.S);
      if (x.cell - before.cell > 64 * 1024) {
        ms = x.at - t0;
        break;
      }
      await sleep(10);
    }
    const st = await r.C.call<{ lastFailoverMs?: number } | undefined>('steer.stats');
    await r.C.call('stop');
    return { ms, ...(st?.lastFailoverMs === undefined ? {} : { acked: st.lastFailoverMs }) };
  } finally {
    await r.topo.destroy();
  }
}

async function enforceRun(n: number): Promise<{ enforce: number[]; rtt: number[] }> {
  const topo = new Topology('bpr');
  try {
    const ue = await topo.host('ue');
    const gw = await topo.host('gw');
    await topo.link(ue, 'p1', gw, 'q1', { a: ['10.79.11.1/24'], b: ['10.79.11.2/24'] });
    await topo.link(ue, 'p2', gw, 'q2', { a: ['10.79.12.1/24'], b: ['10.79.12.2/24'] });
    await ue.sysctl('net.mptcp.path_manager', 'userspace');
    await gw.sysctl('net.mptcp.path_manager', 'userspace');
    const U = new Child(ue);
    const G = new Child(gw);
    const port = await G.call<number>('sink', 0);
    await G.call('enforce', [{ name: 'q1', access: 'wlan', interface: 'q1' }, { name: 'q2', access: 'cellular', interface: 'q2' }], 1);
    await U.call('steer', [
      { name: 'p1', access: 'wlan', interface: 'p1', gateway4: '10.79.11.2', table: 241 },
      { name: 'p2', access: 'cellular', interface: 'p2', gateway4: '10.79.12.2', table: 242 },
    ], null);
    const enforce: number[] = [];
    let refused = 0;
    for (let i = 0; i < n; i++) {
      await U.call('connect', '10.79.11.2', port, '10.79.11.1');
      for (let k = 0; k < 40; k++) {
        await sleep(25);
        const st = await G.call<{ subflowsRefused: Record<string, number>; lastEnforceMs?: number }>('pm.stats');
        const total = Object.values(st.subflowsRefused).reduce((x, y) => x + y, 0);
        if (total > refused) {
          refused = total;
          if (st.lastEnforceMs !== undefined) enforce.push(st.lastEnforceMs);
          break;
        }
      }
    }
    await U.call('stop');
    const rtt = await G.call<number[]>('rtt', 50);
    return { enforce, rtt };
  } finally {
    await topo.destroy();
  }
}

async function pathDownRun(n: number): Promise<number[]> {
  const topo = new Topology('bpk');
  try {
    const cell = await topo.host('cell');
    const nt = await topo.host('net');
    await topo.link(cell, 'wwan0', nt, 'r0', { a: ['10.79.21.1/24'], b: ['10.79.21.2/24'] });
    await topo.link(cell, 'wlan0', nt, 'r1', { a: ['10.79.22.1/24'], b: ['10.79.22.2/24'] });
    const C = new Child(cell);
    await C.call('kernelpm', [
      { name: 'cell', access: 'cellular', interface: 'wwan0', gateway4: '10.79.21.2', table: 251 },
      { name: 'wifi', access: 'wlan', interface: 'wlan0', gateway4: '10.79.22.2', table: 252 },
    ]);
    const starts: number[] = [];
    for (let i = 0; i < n; i++) {
      starts.push(Date.now());
      await cell.linkSet('wlan0', 'down');
      await sleep(600);
      await cell.linkSet('wlan0', 'up');
      await sleep(1500);
    }
    const m = await C.call<{ linkDown: number[]; synced: number[] }>('marks');
    const out: number[] = [];
    for (const s of starts) {
      const down = m.linkDown.find((x) => x >= s);
      const synced = down === undefined ? undefined : m.synced.find((x) => x >= down);
      if (down !== undefined && synced !== undefined && synced - down < 2000) out.push(synced - down);
    }
    return out;
  } finally {
    await topo.destroy();
  }
}

export async function pmBenches(): Promise<BenchResult[]> {
  const steered = await ratioRun(true);
  const free = await ratioRun(false);
  const tIn = steered.w3.find((x) => Math.abs(x.share - 30) <= 5)?.s ?? NaN;
  const tail = steered.w3.filter((x) => x.s >= 10);
  const inBand = tail.filter((x) => Math.abs(x.share - 30) <= 5).length / Math.max(1, tail.length);
  const worst = Math.max(...tail.map((x) => Math.abs(x.share - 30)));
  const fo: Array<{ ms: number; acked?: number }> = [];
  for (let i = 0; i < 3; i++) fo.push(await failoverRun());
  const en = await enforceRun(10);
  const pd = await pathDownRun(5);
  const rtt = median(en.rtt);
  return [
    result('ratio-convergence', 'points', Math.abs(steered.after10 - 30), Math.abs(free.after10 - 30), 'unsteered (kernel scheduler on both paths)', {
      target: '<= 5 points',
      note: `30:70 over cellular 20 / WLAN 30 Mbit/s, 20 bulk transfers; |cellular share − 30| of the bytes the receiver got from 10 s to 14 s (steered ${steered.after10.toFixed(1)} %, unsteered ${free.after10.toFixed(1)} %); trailing 3 s windows after 10 s: ${(inBand * 100).toFixed(0)} % within ±5 points, worst ${worst.toFixed(1)} points`,
    }),
    result('ratio-convergence-time', 's', tIn, 10, 'requirement', { target: '< 10 s', note: 'first trailing 3 s window (receiver) within ±5 points of 30 %; windows are full from 3 s' }),
    result('pm-reaction', 'ms', median(en.enforce), rtt, 'mptcp_pm GET_LIMITS round trip', { note: `refused join → SUBFLOW_DESTROY acked, median of ${en.enforce.length}: ${en.enforce.map((x) => x.toFixed(1)).join(' ')}` }),
    result('pm-reaction-path-down', 'ms', median(pd), rtt, 'mptcp_pm GET_LIMITS round trip', { note: `rtnetlink link down → endpoint deleted, median of ${pd.length}: ${pd.join(' ')}` }),
    result('pm-failover', 'ms', median(fo.map((x) => x.ms)), 1000, 'requirement', {
      target: '< 1000 ms',
      note: `active-standby, WLAN down → 64 KiB more on cellular at the receiver: ${fo.map((x) => x.ms).join(' ')} ms; controller path event → flags acked: ${fo.map((x) => x.acked).join(' ')} ms`,
    }),
  ];
}

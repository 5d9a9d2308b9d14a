import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Topology, type Host } from '../src/sim/hosts.js';
import { realtime } from '../src/sim/realtime.js';
import type { SinkReport } from '../src/sim/probe.js';
import type { PeerReport } from '../src/sim/peer.js';
import { cpuSeconds, fromRuns, sleep, type BenchResult } from './lib.js';

/**
 * `links`: the link emulator itself (build/delayline between two namespaces), each figure the
 * median of 5 runs, the plain veth baseline run interleaved with it.
 *   links-delay-error     one-way delay measured by a 50 Mbit/s UDP stream (1400-byte datagrams,
 *                         time-stamped with the shared monotonic clock) minus the configured
 *                         20 ms; baseline: the same stream's one-way delay over a plain veth
 *                         (the measurement's own floor). Target ±1 ms.
 *   links-forwarding      TCP goodput through the delay line with no shaping and 1 ms delay
 *                         (100 MB, sha256 checked); baseline: a plain veth. Target >= 200 Mbit/s.
 *   links-cpu-50          the delay line's CPU (utime+stime from /proc) in % of one core while it
 *                         carries 50 Mbit/s (tbf) of TCP with 20 ms delay. Target <= 10 %.
 *   links-rate-delayline  goodput at 20 Mbit/s, 20 ms one-way, rate in the delay line;
 *                         baseline: the rate as a tbf at the sender (the default).
 * Probes and transfers run at real-time priority (src/sim/realtime.ts) so that a busy machine's
 * scheduling is not counted as link delay; the delay line runs SCHED_FIFO itself.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PROBE = path.join(ROOT, 'dist/src/sim/probe.js');
const PEER = path.join(ROOT, 'dist/src/sim/peer.js');
const RUNS = 5;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const q = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
const r2 = (x: number): number => Math.round(x * 100) / 100;
const spread = (xs: number[]): string => `runs ${xs.map(r2).join(', ')} (min ${r2(Math.min(...xs))}, max ${r2(Math.max(...xs))})`;

async function json<T>(h: Host, script: string, args: string[]): Promise<T> {
  const out = await h.exec(...realtime([process.execPath, script, ...args]));
  return JSON.parse(out.trim().split('\n').pop()!) as T;
}

/** A long-running tool; resolves with a function that awaits its second line (the report). */
async function start(h: Host, script: string, args: string[]): Promise<() => Promise<string>> {
  const child = h.spawn(...realtime([process.execPath, script, ...args]));
  const lines: string[] = [];
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  const nth = async (n: number): Promise<string> => {
    for (let i = 0; i < 3000 && lines.length <= n; i++) {
      if (child.exitCode !== null) break;
      await sleep(10);
    }
    if (lines.length <= n) throw new Error(`${path.basename(script)} ${args[0]} gave no line ${n}`);
    return lines[n]!;
  };
  await nth(0);
  return () => nth(1);
}

/** One-way delays (ms) of a 50 Mbit/s stream from a to `addr` for 2 s. */
async function owdRun(a: Host, b: Host, addr: string, port: number): Promise<number[]> {
  const report = await start(b, PROBE, ['sink', String(port), '1000']);
  const pps = Math.round((50e6 / 8) / 1442); // 1400 B payload + UDP/IP/Ethernet headers
  await json(a, PROBE, ['stream', addr, String(port), String(2 * pps), String(pps), '1400']);
  const r = JSON.parse(await report()) as SinkReport;
  if (r.unique < 1.5 * pps) throw new Error(`the stream lost too much: ${r.unique} of ${2 * pps}`);
  return r.owdMs;
}

/** A TCP download of `size` bytes from b's peer server: Mbit/s, or an error if a byte is missing or wrong. */
async function download(a: Host, addr: string, size: number, expectHash: string): Promise<number> {
  const r = await json<PeerReport>(a, PEER, ['client', addr, '8100', '0', String(size)]);
  if (r.error !== undefined || r.received !== size || r.receivedHash !== expectHash) {
    throw new Error(`transfer to ${addr} failed: ${r.error ?? ''} received ${r.received} of ${size}, hash ${r.receivedHash === expectHash ? 'ok' : 'differs'}`);
  }
  return (size * 8) / (r.ms * 1000);
}

export async function linksBenches(): Promise<BenchResult[]> {
  const topo = new Topology(`bln${process.pid}`);
  try {
    const a = await topo.host('a');
    const b = await topo.host('b');
    await topo.link(a, 'v0', b, 'v0', { a: ['10.82.0.1/24'], b: ['10.82.0.2/24'] });
    await topo.link(a, 'd20', b, 'd20', { a: ['10.82.1.1/24'], b: ['10.82.1.2/24'], delayMs: 20 });
    await topo.link(a, 'd1', b, 'd1', { a: ['10.82.2.1/24'], b: ['10.82.2.2/24'], delayMs: 1 });
    await topo.link(a, 'r50', b, 'r50', { a: ['10.82.3.1/24'], b: ['10.82.3.2/24'], delayMs: 20, rateMbit: 50 });
    await topo.link(a, 'tbf20', b, 'tbf20', { a: ['10.82.4.1/24'], b: ['10.82.4.2/24'], delayMs: 20, rateMbit: 20 });
    await topo.link(a, 'dl20', b, 'dl20', { a: ['10.82.5.1/24'], b: ['10.82.5.2/24'], delayMs: 20, rateMbit: 20, rateIn: 'delayline' });
    const server = await start(b, PEER, ['server', '0.0.0.0', '8100']);
    void server;
    const out: BenchResult[] = [];

    // 1. delay accuracy under a 50 Mbit/s load
    const err: number[] = [];
    const floor: number[] = [];
    const tails: string[] = [];
    for (let i = 0; i < RUNS; i++) {
      const d = await owdRun(a, b, '10.82.1.2', 7100 + i);
      err.push(median(d) - 20);
      tails.push(`${r2(q(d, 0.01) - 20)}..${r2(q(d, 0.99) - 20)}`);
      floor.push(median(await owdRun(a, b, '10.82.0.2', 7200 + i)));
    }
    out.push(
      fromRuns('links-delay-error', 'ms', err, floor, 'plain veth one-way delay (the probe floor)', {
        judge: ({ value }) => Math.abs(value) <= 1,
        target: '|value| <= 1 ms',
        note: `one-way delay 20 ms configured, 50 Mbit/s UDP load; error of the median per run: ${spread(err)}; p1..p99 error per run: ${tails.join(' / ')}`,
      }),
    );

    // 2. forwarding rate, no shaping
    const size = 100_000_000;
    const expectHash = (await json<PeerReport>(b, PEER, ['client', '127.0.0.1', '8100', '0', String(size)])).receivedHash;
    const fw: number[] = [];
    const veth: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      fw.push(await download(a, '10.82.2.2', size, expectHash));
      veth.push(await download(a, '10.82.0.2', size, expectHash));
    }
    out.push(
      fromRuns('links-forwarding', 'Mbit/s', fw, veth, 'plain veth', {
        judge: ({ value }) => value >= 200,
        target: '>= 200 Mbit/s',
        note: `TCP goodput through the delay line (1 ms delay, no rate), 100 MB sha256-checked; ${spread(fw)}; veth ${spread(veth)}`,
      }),
    );

    // 3. CPU at 50 Mbit/s
    const pid = topo.delayLines.get('a-r50')?.pid;
    if (pid === undefined) throw new Error('no delay line for r50');
    const cpu: number[] = [];
    const rates: number[] = [];
    const size50 = 25_000_000;
    const hash50 = (await json<PeerReport>(b, PEER, ['client', '127.0.0.1', '8100', '0', String(size50)])).receivedHash;
    for (let i = 0; i < RUNS; i++) {
      const c0 = cpuSeconds(pid);
      const t0 = performance.now();
      rates.push(await download(a, '10.82.3.2', size50, hash50));
      cpu.push((100 * (cpuSeconds(pid) - c0)) / ((performance.now() - t0) / 1000));
    }
    out.push(
      fromRuns('links-cpu-50', '% of a core', cpu, cpu.map(() => 0), 'none (the delay line alone)', {
        judge: ({ value }) => value <= 10,
        target: '<= 10 %',
        note: `delay line utime+stime over a 25 MB TCP download at 50 Mbit/s (tbf), 20 ms one-way: ${spread(cpu)}; goodput ${spread(rates)} Mbit/s`,
      }),
    );

    // 4. where the rate is enforced: tbf at the sender vs the delay line
    const size20 = 6_000_000;
    const hash20 = (await json<PeerReport>(b, PEER, ['client', '127.0.0.1', '8100', '0', String(size20)])).receivedHash;
    const inTbf: number[] = [];
    const inLine: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      inLine.push(await download(a, '10.82.5.2', size20, hash20));
      inTbf.push(await download(a, '10.82.4.2', size20, hash20));
    }
    out.push(
      fromRuns('links-rate-delayline', 'Mbit/s', inLine, inTbf, 'tbf at the sender (the default)', {
        note: `20 Mbit/s, 20 ms one-way, 6 MB TCP downloads (sha256-checked); ceiling ${r2((20 * 1448) / 1514)} Mbit/s of goodput; delay line ${spread(inLine)}; tbf ${spread(inTbf)}`,
      }),
    );
    return out;
  } finally {
    await topo.destroy();
  }
}

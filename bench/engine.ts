import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cpuSeconds, result, rssMiB, runCmd, sleep, type BenchResult } from './lib.js';

/**
 * Loopback benchmarks of the proxy engine, each against a baseline measured in the same run:
 *   relay-loopback (+ relay-cpu-per-gib): duocell's relay vs `socat -b 131072`, iperf3 through each
 *   setup / setup-latency: new connections per second and added latency vs direct
 *   sessions-memory: RSS of the proxy holding 10,000 idle sessions
 * The relay runs as `duocell run` in its own process so its CPU is measured alone.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin/duocell.js');
const LOAD = path.join(ROOT, 'dist/bench/connload.js');

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

async function waitPort(port: number, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.destroy();
        r(true);
      });
      c.on('error', () => r(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`port ${port} never opened`);
    await sleep(100);
  }
}

/** Start duocell with one explicit listener → target; resolves with the process once it listens. */
export async function startRelay(listenPort: number, targetPort: number, mptcp = false): Promise<ChildProcess> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-bench-'));
  const board = {
    name: 'bench',
    preset: 'concentrator',
    uplinks: [],
    lan: { interfaces: ['lo'] },
    web: { listen: [{ host: '127.0.0.1', port: 0 }] },
    listeners: [{ kind: 'explicit', host: '127.0.0.1', port: listenPort, mptcp, target: `127.0.0.1:${targetPort}`, upstream: 'tcp' }],
    accessNetworks: [],
    // The benchmark's server is on loopback: allowed on purpose (the target filter refuses it).
    proxyTargets: { allow: ['127.0.0.1/32'] },
  };
  fs.writeFileSync(path.join(dir, 'board.json'), JSON.stringify(board));
  // One loopback client holds up to 10,000 sessions to one server: lift the default policy's
  // per-UE and per-N-server limits (256 / 1024) for the benchmark's store.
  execFileSync(process.execPath, [BIN, 'policy', 'set', 'default', '--max-sessions', '1000000', '--max-server-sessions', '1000000', '--state-dir', dir], { stdio: 'ignore' });
  const child = spawn(process.execPath, [BIN, 'run', '--board', path.join(dir, 'board.json'), '--state-dir', dir], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DUOCELL_LOG_LEVEL: 'warn' } });
  await waitPort(listenPort);
  return child;
}

async function stop(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null) return;
  const done = new Promise((r) => c.once('exit', r));
  c.kill('SIGTERM');
  await Promise.race([done, sleep(8000)]);
  if (c.exitCode === null) c.kill('SIGKILL');
}

/** iperf3 through a relay process: Gbit/s and relay CPU seconds per GiB. */
async function iperfThrough(relay: ChildProcess, relayPort: number, serverPort: number, bytes: string): Promise<{ gbps: number; cpuPerGiB: number }> {
  let lastErr = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const srv = spawn('iperf3', ['-s', '-1', '-p', String(serverPort)], { stdio: 'ignore' });
    await sleep(500); // no probe: a probe connection would be iperf3's one (-1) client
    const cpu0 = cpuSeconds(relay.pid!);
    const out = JSON.parse(await runCmd('iperf3', ['-c', '127.0.0.1', '-p', String(relayPort), '-n', bytes, '-J', '-l', '128K']).catch((e: Error) => JSON.stringify({ error: e.message, end: {} }))) as {
      error?: string;
      end: { sum_received?: { bits_per_second: number; bytes: number } };
    };
    await sleep(300);
    const cpu = cpuSeconds(relay.pid!) - cpu0;
    srv.kill();
    await sleep(200);
    const r = out.end.sum_received;
    if (r !== undefined && r.bytes > 0) return { gbps: r.bits_per_second / 1e9, cpuPerGiB: cpu / (r.bytes / 2 ** 30) };
    lastErr = out.error ?? 'no result';
  }
  throw new Error(`iperf3 through port ${relayPort} failed three times: ${lastErr}`);
}

export async function relayLoopback(): Promise<BenchResult[]> {
  const sp = await freePort();
  const rp = await freePort();
  const socatPort = await freePort();
  const relay = await startRelay(rp, sp);
  const socat = spawn('socat', ['-b', '131072', `TCP-LISTEN:${socatPort},bind=127.0.0.1,reuseaddr,fork`, `TCP:127.0.0.1:${sp}`], { stdio: 'ignore' });
  try {
    await waitPort(socatPort);
    // interleave runs so both see the same machine load; best of three each
    const d: Array<{ gbps: number; cpuPerGiB: number }> = [];
    const s: Array<{ gbps: number; cpuPerGiB: number }> = [];
    for (let i = 0; i < 3; i++) {
      d.push(await iperfThrough(relay, rp, sp, '2G'));
      s.push(await iperfThrough(socat, socatPort, sp, '2G'));
    }
    const best = (xs: typeof d): { gbps: number; cpuPerGiB: number } => xs.reduce((a, b) => (b.gbps > a.gbps ? b : a));
    const bd = best(d);
    const bs = best(s);
    return [
      result('relay-loopback', 'Gbit/s', bd.gbps, bs.gbps, 'socat -b 131072', { target: 'ratio >= 0.8' }),
      result('relay-cpu-per-gib', 'CPU s/GiB', bd.cpuPerGiB, bs.cpuPerGiB, 'socat -b 131072', { target: 'ratio <= 1.5' }),
    ];
  } finally {
    await stop(relay);
    socat.kill();
  }
}

export async function setupBench(): Promise<BenchResult[]> {
  const ep = await freePort();
  const echo = spawn(process.execPath, [LOAD, 'echo', String(ep)], { stdio: 'ignore' });
  await waitPort(ep);
  const rp = await freePort();
  const relay = await startRelay(rp, ep);
  try {
    const rate = async (port: number): Promise<number> => (JSON.parse(await runCmd(process.execPath, [LOAD, 'rate', '127.0.0.1', String(port), '20000', '64'])) as { rate: number }).rate;
    const lat = async (port: number): Promise<number> => (JSON.parse(await runCmd(process.execPath, [LOAD, 'latency', '127.0.0.1', String(port), '2000'])) as { medianMs: number }).medianMs;
    const direct = await rate(ep);
    const proxied = await rate(rp);
    const ld = await lat(ep);
    const lp = await lat(rp);
    return [
      result('setup', 'conn/s', proxied, direct, 'direct to the echo server', { target: '>= 5000 conn/s' }),
      result('setup-latency', 'ms added', lp - ld, ld, 'direct connect+echo median (ms)', { target: '<= 1 ms', note: `median proxied ${lp.toFixed(3)} ms, direct ${ld.toFixed(3)} ms` }),
    ];
  } finally {
    await stop(relay);
    echo.kill();
  }
}

export async function sessionsMemory(n = 10_000): Promise<BenchResult[]> {
  const ep = await freePort();
  const echo = spawn(process.execPath, [LOAD, 'echo', String(ep)], { stdio: 'ignore' });
  await waitPort(ep);
  const rp = await freePort();
  const relay = await startRelay(rp, ep);
  try {
    await sleep(500);
    const idle = rssMiB(relay.pid!);
    const hold = spawn(process.execPath, [LOAD, 'hold', '127.0.0.1', String(rp), String(n)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((r) => hold.stdout!.once('data', (d: Buffer) => r(d.toString())));
    const open = (JSON.parse(line) as { open: number }).open;
    await sleep(2000);
    const rss = rssMiB(relay.pid!);
    hold.kill('SIGTERM');
    return [result('sessions-memory', 'MiB RSS', rss, idle, 'RSS with no session', { target: '<= 400 MiB at 10,000 idle sessions', note: `${open} sessions held open` })];
  } finally {
    await stop(relay);
    echo.kill();
  }
}

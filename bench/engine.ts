import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Topology, type Host } from '../src/sim/hosts.js';
import { benchDir, cpuSeconds, cpuSplit, failure, fromRuns, result, rssMiB, runsWanted, sleep, type BenchResult } from './lib.js';
import { alternate, spread } from './stats.js';
import { applyShipped, nofileHere, shippedNodeFlags, underShippedLimits } from './sysctl.js';

/**
 * Loopback benchmarks of the proxy engine, in a namespace of their own with the shipped sysctls
 * (systemd/60-duocell.conf), each against a baseline measured in the same run, interleaved,
 * medians of BENCH_RUNS (5):
 *   relay-loopback (+ relay-cpu-per-gib): duocell's relay vs `socat -b 131072`, iperf3 through each
 *   setup / setup-latency: new connections per second and added latency vs direct; a connection
 *     counts only if its echo came back, failures are reported and left out of the rate
 *   sessions-memory: RSS of the proxy holding 10,000 idle sessions, as its own /metrics counts them
 * The relay runs as `duocell run` in its own process so its CPU is measured alone.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin/duocell.js');
const LOAD = path.join(ROOT, 'build/connload'); // native/connload.c
const WEB = 18090;

interface Lo {
  topo: Topology;
  h: Host;
  pm: string;
}

async function loopbackHost(prefix: string): Promise<Lo> {
  const topo = new Topology(prefix);
  try {
    const h = await topo.host('lo');
    const s = await applyShipped(h);
    return { topo, h, pm: s.pm };
  } catch (e) {
    await topo.destroy();
    throw e;
  }
}

async function waitPort(h: Host, port: number, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while ((await h.exec('ss', ['-Hltn', `sport = :${port}`], { allowFail: true })).trim() === '') {
    if (Date.now() > end) throw new Error(`port ${port} never opened in ${h.ns}`);
    await sleep(100);
  }
}

/** Start duocell in `h` with one explicit listener → target; resolves once it listens. */
async function startRelay(h: Host, listenPort: number, targetPort: number, bin = BIN, web = WEB, nodeFlags: readonly string[] = []): Promise<ChildProcess> {
  const dir = benchDir();
  const board = {
    name: 'bench',
    preset: 'concentrator',
    uplinks: [],
    lan: { interfaces: ['lo'] },
    web: { listen: [{ host: '127.0.0.1', port: web }] },
    listeners: [{ kind: 'explicit', host: '127.0.0.1', port: listenPort, mptcp: false, target: `127.0.0.1:${targetPort}`, upstream: 'tcp' }],
    accessNetworks: [],
    // The benchmark's server is on loopback: allowed on purpose (the target filter refuses it).
    proxyTargets: { allow: ['127.0.0.1/32'] },
  };
  fs.writeFileSync(path.join(dir, 'board.json'), JSON.stringify(board));
  // One loopback client holds up to 10,000 sessions to one server: lift the default policy's
  // per-UE and per-N-server limits (256 / 1024) for the benchmark's store.
  execFileSync(process.execPath, [bin, 'policy', 'set', 'default', '--max-sessions', '1000000', '--max-server-sessions', '1000000', '--state-dir', dir], { stdio: 'ignore' });
  const child = h.spawn(...underShippedLimits(process.execPath, [...shippedNodeFlags(), ...nodeFlags, bin, 'run', '--board', path.join(dir, 'board.json'), '--state-dir', dir]), { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DUOCELL_LOG_LEVEL: 'warn' } });
  await waitPort(h, listenPort);
  await waitPort(h, web);
  return child;
}

async function stop(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const done = new Promise((r) => c.once('exit', r));
  c.kill('SIGTERM');
  await Promise.race([done, sleep(8000)]);
  if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

/** iperf3 through a relay process: Gbit/s and relay CPU seconds per GiB. */
async function iperfThrough(h: Host, relay: ChildProcess, relayPort: number, serverPort: number, bytes: string): Promise<{ gbps: number; cpuPerGiB: number }> {
  const srv = h.spawn('iperf3', ['-s', '-1', '-p', String(serverPort)], { stdio: 'ignore' });
  try {
    await waitPort(h, serverPort);
    const cpu0 = cpuSeconds(relay.pid!);
    const raw = await h.exec('iperf3', ['-c', '127.0.0.1', '-p', String(relayPort), '-n', bytes, '-J', '-l', '128K'], { allowFail: true });
    await sleep(300);
    const cpu = cpuSeconds(relay.pid!) - cpu0;
    let out: { error?: string; end?: { sum_received?: { bits_per_second: number; bytes: number } } };
    try {
      out = JSON.parse(raw) as typeof out;
    } catch {
      throw new Error(`iperf3 printed no JSON: ${raw.slice(-200)}`);
    }
    const r = out.end?.sum_received;
    if (r === undefined || r.bytes <= 0) throw new Error(`iperf3 through port ${relayPort}: ${out.error ?? 'no bytes received'}`);
    return { gbps: r.bits_per_second / 1e9, cpuPerGiB: cpu / (r.bytes / 2 ** 30) };
  } finally {
    srv.kill();
    await sleep(200);
  }
}

export async function relayLoopback(): Promise<BenchResult[]> {
  const lo = await loopbackHost('bnlr');
  try {
    const { h } = lo;
    const [sp, rp, socatPort] = [5201, 7100, 7200];
    // BENCH_RELAY_CC=reno|bbr|…: this namespace's congestion control for the run (A/B of the pacing cost).
    const wantCc = process.env['BENCH_RELAY_CC'];
    if (wantCc !== undefined && wantCc !== '') await h.exec('sysctl', ['-qw', `net.ipv4.tcp_congestion_control=${wantCc}`]);
    const relay = await startRelay(h, rp, sp);
    const socat = h.spawn('socat', ['-b', '131072', `TCP-LISTEN:${socatPort},bind=127.0.0.1,reuseaddr,fork`, `TCP:127.0.0.1:${sp}`], { stdio: 'ignore' });
    await waitPort(h, socatPort);
    const runs = await alternate(runsWanted(), () => iperfThrough(h, relay, rp, sp, '1G'), () => iperfThrough(h, socat, socatPort, sp, '1G'));
    const pick = (xs: Array<{ gbps: number; cpuPerGiB: number } | Error>, k: 'gbps' | 'cpuPerGiB'): Array<number | Error> => xs.map((x) => (x instanceof Error ? x : x[k]));
    const tag = { links: 'loopback', pm: lo.pm };
    // The namespace inherits the host's congestion control (the shipped sysctls do not set it).
    // It weighs on both relays alike: BBR paces, and on a VM every pacing timer it arms costs
    // a timer reprogramming (see docs/relay.md, "Per-byte cost"); reported so figures compare.
    const cc = (await h.exec('sysctl', ['-n', 'net.ipv4.tcp_congestion_control'], { allowFail: true })).trim() || 'unknown';
    const note = `iperf3 -n 1G -l 128K, relay first then socat per run; congestion control ${cc}`;
    return [
      fromRuns('relay-loopback', 'Gbit/s', pick(runs.a, 'gbps'), pick(runs.b, 'gbps'), 'socat -b 131072', { ...tag, target: 'ratio >= 1.0', judge: (x) => x.ratio >= 1.0, note }),
      fromRuns('relay-cpu-per-gib', 'CPU s/GiB', pick(runs.a, 'cpuPerGiB'), pick(runs.b, 'cpuPerGiB'), 'socat -b 131072', { ...tag, target: 'ratio <= 0.7', judge: (x) => x.ratio <= 0.7, note }),
    ];
  } finally {
    await lo.topo.destroy();
  }
}

/**
 * `setup` knobs (A/B and profiling, not figures of their own): BENCH_SETUP_BIN_B=…/bin/duocell.js
 * runs a second build's proxy (port 7401) beside this one's, and every setup run measures both,
 * A then B or B then A alternately, before the direct run; the entries stay this build's, B's
 * figures go to the setup-cpu note and stderr. BENCH_SETUP_NODE_FLAGS adds node flags to this
 * build's proxy (e.g. `--cpu-prof --cpu-prof-dir=/tmp/p`, written when the group stops it).
 */
const SETUP_BIN_B = process.env.BENCH_SETUP_BIN_B;
const SETUP_NODE_FLAGS = (process.env.BENCH_SETUP_NODE_FLAGS ?? '').split(/\s+/).filter((f) => f !== '');

export async function setupBench(): Promise<BenchResult[]> {
  const lo = await loopbackHost('bnls');
  const children: ChildProcess[] = [];
  try {
    const { h } = lo;
    const [ep, rp, rpB] = [7300, 7400, 7401];
    const echo = h.spawn(LOAD, ['echo', String(ep)], { stdio: 'ignore' });
    await waitPort(h, ep);
    const relay = await startRelay(h, rp, ep, BIN, WEB, SETUP_NODE_FLAGS);
    children.push(relay);
    const relayB = SETUP_BIN_B === undefined ? undefined : await startRelay(h, rpB, ep, SETUP_BIN_B, WEB + 1);
    if (relayB !== undefined) children.push(relayB);
    const total = 5000;
    // setup-cpu: CPU µs per connection of the proxy process (all threads), and of the echo
    // server in the direct runs as the baseline (what a minimal native epoll server spends per connection)
    const cpu = { proxied: [] as number[], direct: [] as number[], proxiedB: [] as number[] };
    // the proxy's user-space share of it: the rest is the kernel's work for its two sockets
    const userUs: number[] = [];
    const userUsB: number[] = [];
    const ratesB: number[] = [];
    const failures = { proxied: 0, direct: 0, proxiedB: 0, errors: {} as Record<string, number> };
    // the load generator's own CPU µs per connection (it shares the 2 cores with the proxy)
    const genUs = { proxied: [] as number[], direct: [] as number[], proxiedB: [] as number[] };
    const measure = async (port: number, who: 'proxied' | 'direct' | 'proxiedB'): Promise<number> => {
      const pid = who === 'proxied' ? relay.pid! : who === 'proxiedB' ? relayB!.pid! : echo.pid!;
      const c0 = cpuSeconds(pid);
      const u0 = cpuSplit(pid).user;
      const r = JSON.parse(await h.exec(LOAD, ['rate', '127.0.0.1', String(port), String(total), '64'])) as { rate: number; ok: number; failed: number; errors: Record<string, number>; cpuS: number };
      await sleep(100); // the last completions
      genUs[who].push((r.cpuS * 1e6) / Math.max(1, r.ok));
      cpu[who].push(((cpuSeconds(pid) - c0) * 1e6) / Math.max(1, r.ok));
      if (who !== 'direct') (who === 'proxied' ? userUs : userUsB).push(((cpuSplit(pid).user - u0) * 1e6) / Math.max(1, r.ok));
      failures[who] += r.failed;
      for (const [k, v] of Object.entries(r.errors)) failures.errors[k] = (failures.errors[k] ?? 0) + v;
      if (who !== 'direct') process.stderr.write(`setup run: ${who === 'proxied' ? 'A' : 'B'} ${Math.round(r.rate)} conn/s, ${Math.round(cpu[who].at(-1)!)} CPU µs/conn\n`);
      return r.rate;
    };
    const rate = (port: number, who: 'proxied' | 'direct') => async (i: number): Promise<number> => {
      if (who === 'direct' || relayB === undefined) return measure(port, who);
      // A/B: both builds' proxies in every run, the order alternating
      if (i % 2 === 1) ratesB.push(await measure(rpB, 'proxiedB'));
      const a = await measure(port, who);
      if (i % 2 === 0) ratesB.push(await measure(rpB, 'proxiedB'));
      return a;
    };
    const lat = (port: number) => async (): Promise<number> => {
      const r = JSON.parse(await h.exec(LOAD, ['latency', '127.0.0.1', String(port), '400'])) as { medianMs?: number; failed: number };
      if (r.failed > 0 || r.medianMs === undefined) throw new Error(`${r.failed} of 400 connections failed`);
      return r.medianMs;
    };
    const n = runsWanted();
    const rates = await alternate(n, rate(rp, 'proxied'), rate(ep, 'direct'));
    const lats = await alternate(n, lat(rp), lat(ep));
    const added = lats.a.map((x, i) => {
      const d = lats.b[i];
      return x instanceof Error ? x : d instanceof Error ? d : x - d!;
    });
    const tag = { links: 'loopback', pm: lo.pm };
    const errs = Object.entries(failures.errors).map(([k, v]) => `${k} ${v}`).join(', ');
    const fmt = (u: { median: number; min: number; max: number }): string => `${Math.round(u.median)} (${Math.round(u.min)}–${Math.round(u.max)})`;
    // CPU of everything on the 2 cores per proxied connection, and the rate it allows at best
    const perConn = spread(cpu.proxied).median + spread(genUs.proxied).median + spread(cpu.direct).median;
    const genNote = `; the load generator's own CPU ${fmt(spread(genUs.proxied))} µs/conn through the proxy, ${fmt(spread(genUs.direct))} direct; proxy + generator + echo server ${Math.round(perConn)} µs/conn, so at most ${Math.round((os.availableParallelism() * 1e6) / perConn)} conn/s on ${os.availableParallelism()} cores`;
    const perRun = cpu.proxied.map((a, i) => a / cpu.proxiedB[i]!).filter((x) => Number.isFinite(x));
    const abNote =
      relayB === undefined
        ? ''
        : `; B (BENCH_SETUP_BIN_B=${SETUP_BIN_B}, same runs, order alternating): ${fmt(spread(ratesB))} conn/s, ${fmt(spread(cpu.proxiedB))} CPU µs/conn, of which user space ${fmt(spread(userUsB))}, failed ${failures.proxiedB}; per-run CPU ratio A/B ${spread(perRun).median.toFixed(2)} (${perRun.map((x) => x.toFixed(2)).join(', ')})`;
    return [
      fromRuns('setup', 'conn/s', rates.a, rates.b, 'direct to the echo server', {
        ...tag,
        target: '>= 5000 conn/s',
        judge: (x) => x.value >= 5000 && failures.proxied === 0,
        note: `${n} runs of ${total} connections, 64 at a time; counted only with the echo back; failed: proxied ${failures.proxied}, direct ${failures.direct}${errs === '' ? '' : ` (${errs})`}; the load generator shares the 2 cores${genNote}`,
      }),
      fromRuns('setup-cpu', 'CPU µs/conn', cpu.proxied, cpu.direct, 'the echo server, direct runs (CPU µs/conn)', {
        ...tag,
        target: '<= 60 µs',
        judge: (x) => x.value <= 60,
        note: `the proxy process's CPU (all threads, /proc, user + system) over each setup run divided by its echoed connections, of which user space ${fmt(spread(userUs))} µs (the rest is the kernel's work for the connection's two sockets); DUOCELL_FAST_PATH=${process.env['DUOCELL_FAST_PATH'] ?? 'unset'}${abNote}`,
      }),
      fromRuns('setup-latency', 'ms added', added, lats.b, 'direct connect+echo median (ms)', {
        ...tag,
        target: '<= 0.3 ms',
        judge: (x) => x.value <= 0.3,
        note: 'per run: median of 400 sequential connections, connect() to the echoed first byte, through the proxy minus the same direct',
      }),
    ];
  } finally {
    // stopped (SIGTERM) before the namespace goes, so a --cpu-prof is written
    await Promise.all(children.map((c) => stop(c)));
    await lo.topo.destroy();
  }
}

/** The proxy's own count of open sessions, from its /metrics (duocell_sessions summed). */
async function sessionsReported(h: Host): Promise<number> {
  const js = `fetch('http://127.0.0.1:${WEB}/metrics').then((r) => r.text()).then((t) => process.stdout.write(t), (e) => { process.stderr.write(String(e)); process.exit(1); })`;
  const text = await h.exec(process.execPath, ['-e', js]);
  let n = 0;
  let seen = false;
  for (const line of text.split('\n')) {
    const m = /^duocell_sessions\{[^}]*\}\s+([0-9.e+]+)$/.exec(line.trim());
    if (m !== null) {
      n += Number(m[1]);
      seen = true;
    }
  }
  if (!seen) throw new Error(`the proxy's /metrics has no duocell_sessions: ${text.slice(0, 200)}`);
  return n;
}

export async function sessionsMemory(n = 10_000): Promise<BenchResult[]> {
  const lo = await loopbackHost('bnlm');
  const tag = { links: 'loopback', pm: lo.pm };
  const lim = nofileHere();
  // A session holds two descriptors (client and upstream); keep ~250 for the rest of the process.
  const hold = Math.min(n, Math.floor((lim.effective - 250) / 2));
  try {
    const { h } = lo;
    const [ep, rp] = [7500, 7600];
    h.spawn(LOAD, ['echo', String(ep)], { stdio: 'ignore' });
    await waitPort(h, ep);
    const relay = await startRelay(h, rp, ep);
    await sleep(500);
    const idle = rssMiB(relay.pid!);
    const holder = h.spawn(LOAD, ['hold', '127.0.0.1', String(rp), String(hold)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((r) => holder.stdout!.once('data', (d: Buffer) => r(d.toString())));
    const open = (JSON.parse(line) as { open: number }).open;
    // Wait until the proxy itself counts them (each session also connects upstream).
    let reported = 0;
    let lastErr = '';
    for (let i = 0; i < 60 && reported < hold; i++) {
      await sleep(500);
      reported = await sessionsReported(h).catch((e: unknown) => {
        lastErr = (e as Error).message.slice(-120);
        return reported;
      });
    }
    const rss = rssMiB(relay.pid!);
    holder.kill('SIGTERM');
    const note = `the proxy reported ${reported} sessions (its /metrics duocell_sessions); the client held ${open} open; RSS ${rss.toFixed(1)} MiB, idle ${idle.toFixed(1)} MiB; open-file limit ${lim.effective} (shipped LimitNOFILE ${lim.shipped})${lastErr === '' ? '' : `; last /metrics error: ${lastErr}`}`;
    const target = '<= 200 MiB at 10,000 idle sessions';
    // Without CAP_SYS_RESOURCE the hard open-file limit (20,000 on the build host) leaves room
    // for ~9,875 sessions: from 90 % of n on, the figure is the measured RSS scaled to n by the
    // per-session cost (linear), and the note says so; below that it is a failure.
    if (hold < 0.9 * n) {
      return [failure('sessions-memory', 'MiB RSS', 'RSS with no session', `${n} sessions need ${2 * n} descriptors; this machine's hard open-file limit is ${lim.effective} (the shipped unit sets ${lim.shipped}, raising it needs CAP_SYS_RESOURCE): measured at ${hold} instead, see the note`, { ...tag, target, note })];
    }
    if (reported < hold) return [failure('sessions-memory', 'MiB RSS', 'RSS with no session', `the proxy reported only ${reported} of ${hold} sessions`, { ...tag, target, note })];
    const perSession = (rss - idle) / reported;
    const value = hold < n ? idle + perSession * n : rss;
    const scaled = hold < n ? `; measured at ${reported} sessions (open-file limit ${lim.effective}), scaled to ${n} at ${(perSession * 1024).toFixed(1)} KiB per session` : `; ${(perSession * 1024).toFixed(1)} KiB per session`;
    return [result('sessions-memory', 'MiB RSS', value, idle, 'RSS with no session', { ...tag, runs: 1, target, met: value <= 200, note: note + scaled })];
  } finally {
    await lo.topo.destroy();
  }
}

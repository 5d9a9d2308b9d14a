import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { Topology, type Host } from '../src/sim/hosts.js';
import { benchDir, failure, fromRuns, sleep, runsWanted, type BenchResult } from './lib.js';
import { benchRoot } from './root.js';
import { median } from './stats.js';
import { applyShipped, underShippedLimits } from './sysctl.js';

/**
 * abandon-flood (issue 17, "Bad input"): established sessions through the proxy while a flood of
 * abandoned connections hits the same listener, on loopback in a namespace of its own with the
 * shipped sysctls and the shipped default policy (per-UE limits included).
 *
 *   est (N sessions, each paced by the server at RATE) ──┐
 *   flooder (20,000 connects/s from 64 addresses, RST) ──┴─► duocell explicit listener ─► source server
 *
 * One set of established sessions is measured throughout, in alternating windows: quiet, flood,
 * quiet, flood… (BENCH_RUNS of each). Per window the sessions' Mbit/s, the first 0.5 s of each
 * left out (the flood's backlog settling, or its start); the figure is the flood windows' median
 * over the quiet windows' median. The flooder, the sessions and the server are one small C
 * program (native/abandon-flood.c, built here) so that the load fits beside the proxy on 2 cores.
 */
const ROOT = benchRoot();
const BIN = path.join(ROOT, 'bin/duocell.js');
const SRC = path.join(ROOT, 'native/abandon-flood.c');
export const FLOODER = path.join(ROOT, 'build/abandon-flood');
const WEB = 18091;

/** Build the load program when it is missing or older than its source. */
export function buildFlooder(): string {
  const stale = !fs.existsSync(FLOODER) || fs.statSync(FLOODER).mtimeMs < fs.statSync(SRC).mtimeMs;
  if (stale) {
    fs.mkdirSync(path.dirname(FLOODER), { recursive: true });
    execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-o', FLOODER, SRC], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  return FLOODER;
}

/** A child's JSON lines, one at a time. */
export class Lines {
  readonly #q: Array<Record<string, unknown>> = [];
  #wake: (() => void) | undefined;
  #ended = false;
  constructor(readonly child: ChildProcess) {
    readline.createInterface({ input: child.stdout! }).on('line', (l) => {
      try {
        this.#q.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        return;
      }
      this.#wake?.();
    });
    child.on('exit', () => {
      this.#ended = true;
      this.#wake?.();
    });
  }
  async next(ms = 60_000): Promise<Record<string, unknown>> {
    const end = Date.now() + ms;
    while (this.#q.length === 0) {
      if (this.#ended) throw new Error(`${this.child.spawnfile} exited (${this.child.exitCode ?? this.child.signalCode}) before its next line`);
      if (Date.now() > end) throw new Error(`${this.child.spawnfile}: no line in ${ms} ms`);
      await new Promise<void>((r) => {
        this.#wake = r;
        setTimeout(r, 200);
      });
      this.#wake = undefined;
    }
    return this.#q.shift()!;
  }
}

export interface FloodReport {
  start: number;
  end: number;
  attempted: number;
  connected: number;
  failed: number;
  refused?: number;
  timedOut?: number;
  otherErrors?: number;
  stillConnecting?: number;
  skipped?: number;
  closedByPeer?: number;
  /** Connects given up (closed) after 250 ms in SYN-SENT: SYNs the full accept queue dropped. */
  gaveUp?: number;
  rate: number;
}

export interface EstReport {
  bucketMs: number;
  start: number;
  closed: number;
  bytes: number[];
  per: number[];
}

/**
 * Mbit/s of the sessions in [from, to) (CLOCK_MONOTONIC ms), from their 100 ms buckets, and the
 * slowest bucket's rate in that window (a stall shows there first). Only whole buckets count.
 */
export function windowRate(est: EstReport, from: number, to: number): { mbit: number; worstMbit: number; buckets: number } {
  const first = Math.ceil((from - est.start) / est.bucketMs);
  const last = Math.floor((to - est.start) / est.bucketMs); // exclusive
  const bs = est.bytes.slice(Math.max(0, first), Math.max(0, Math.min(last, est.bytes.length)));
  if (bs.length === 0) return { mbit: NaN, worstMbit: NaN, buckets: 0 };
  const toMbit = (bytes: number, ms: number): number => (bytes * 8) / (ms * 1000);
  return { mbit: toMbit(bs.reduce((a, b) => a + b, 0), bs.length * est.bucketMs), worstMbit: toMbit(Math.min(...bs), est.bucketMs), buckets: bs.length };
}

const waitPort = async (h: Host, port: number, ms = 15_000): Promise<void> => {
  const end = Date.now() + ms;
  while ((await h.exec('ss', ['-Hltn', `sport = :${port}`], { allowFail: true })).trim() === '') {
    if (Date.now() > end) throw new Error(`port ${port} never opened in ${h.ns}`);
    await sleep(100);
  }
};

export async function stopChild(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const done = new Promise((r) => c.once('exit', r));
  c.kill('SIGTERM');
  await Promise.race([done, sleep(8000)]);
  if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

/** `duocell run` in `h` with one explicit listener → target, the shipped default policy. */
export async function startProxy(h: Host, listenPort: number, targetPort: number, webPort = WEB): Promise<{ child: ChildProcess; dir: string }> {
  const dir = benchDir('dc-flood-');
  const board = {
    name: 'flood',
    preset: 'concentrator',
    uplinks: [],
    lan: { interfaces: ['lo'] },
    web: { listen: [{ host: '127.0.0.1', port: webPort }] },
    listeners: [{ kind: 'explicit', host: '127.0.0.1', port: listenPort, mptcp: false, target: `127.0.0.1:${targetPort}`, upstream: 'tcp' }],
    accessNetworks: [],
    proxyTargets: { allow: ['127.0.0.1/32'] },
  };
  fs.writeFileSync(path.join(dir, 'board.json'), JSON.stringify(board));
  const child = h.spawn(...underShippedLimits(process.execPath, [BIN, 'run', '--board', path.join(dir, 'board.json'), '--state-dir', dir]), {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, DUOCELL_LOG_LEVEL: 'error' },
  });
  await waitPort(h, listenPort);
  await waitPort(h, webPort);
  return { child, dir };
}

/** The proxy's refusals by reason and open sessions, from its own /metrics. */
export async function proxyCounts(h: Host, webPort = WEB): Promise<{ sessions: number; refusals: Record<string, number> }> {
  const js = `fetch('http://127.0.0.1:${webPort}/metrics').then((r) => r.text()).then((t) => process.stdout.write(t), (e) => { process.stderr.write(String(e)); process.exit(1); })`;
  const text = await h.exec(process.execPath, ['-e', js]);
  let sessions = 0;
  const refusals: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const s = /^duocell_sessions\{[^}]*\}\s+([0-9.e+]+)$/.exec(line.trim());
    if (s !== null) sessions += Number(s[1]);
    const r = /^duocell_refusals_total\{reason="([^"]+)"\}\s+([0-9.e+]+)$/.exec(line.trim());
    if (r !== null) refusals[r[1]!] = Number(r[2]);
  }
  return { sessions, refusals };
}

/** The kernel's listener counters in `h` (accept queue overflows, SYN cookies, aborts). */
export async function kernelCounts(h: Host): Promise<Record<string, number>> {
  const out = await h.exec('nstat', ['-az'], { allowFail: true });
  const want = /^TcpExt(ListenOverflows|ListenDrops|SyncookiesSent|SyncookiesRecv|TCPReqQFullDoCookies|TCPReqQFullDrop|TCPAbortOnData|TCPAbortOnClose)\s+(\d+)/;
  const r: Record<string, number> = {};
  for (const line of out.split('\n')) {
    const m = want.exec(line.trim());
    if (m !== null) r[m[1]!] = Number(m[2]);
  }
  return r;
}

const diff = (a: Record<string, number>, b: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.entries(b).map(([k, v]) => [k, v - (a[k] ?? 0)]).filter(([, v]) => v !== 0));
const fmt = (r: Record<string, number>): string => (Object.keys(r).length === 0 ? 'none' : Object.entries(r).map(([k, v]) => `${k} ${v}`).join(', '));

export interface FloodOptions {
  /** Flood connects per second (20,000). */
  rate?: number;
  /** ms per window (3000). */
  windowMs?: number;
  /** Alternations (quiet, flood) (BENCH_RUNS). */
  runs?: number;
  /** Established sessions (4), paced by the server. */
  sessions?: number;
  /** rst | fin | idle:HOLDMS */
  mode?: string;
}

export interface FloodMeasurement {
  quiet: number[];
  flood: number[];
  quietWorst: number[];
  floodWorst: number[];
  floods: FloodReport[];
  sessionsClosed: number;
  refusals: Record<string, number>;
  kernel: Record<string, number>;
}

/**
 * The measurement itself, in `h` (a namespace with the proxy listening on `proxyPort`): windows
 * alternate quiet, flood; each flood window's report and the sessions' rates are returned.
 */
export async function measureFlood(h: Host, proxyPort: number, webPort: number, o: FloodOptions = {}): Promise<FloodMeasurement> {
  const exe = buildFlooder();
  const rate = o.rate ?? 20_000;
  const win = o.windowMs ?? 3000;
  const runs = o.runs ?? runsWanted();
  const n = o.sessions ?? 4;
  const mode = o.mode ?? 'rst';
  const k0 = await kernelCounts(h);
  const p0 = await proxyCounts(h, webPort);
  const seconds = (2 * runs * (win + 150)) / 1000 + 2;
  const est = h.spawn(exe, ['est', '127.0.0.1', String(proxyPort), String(n), String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const estLines = new Lines(est);
  try {
    await estLines.next(20_000); // every session carries bytes
    await sleep(500);
    const windows: Array<{ kind: 'quiet' | 'flood'; r: FloodReport }> = [];
    for (let i = 0; i < runs; i++) {
      for (const kind of ['quiet', 'flood'] as const) {
        const args = kind === 'quiet' ? ['none', String(win)] : ['flood', '127.0.0.1', String(proxyPort), String(rate), String(win), mode, '127.0.1.1', '64'];
        const f = h.spawn(exe, args, { stdio: ['ignore', 'pipe', 'inherit'] });
        const r = (await new Lines(f).next(win + 30_000)) as unknown as FloodReport;
        windows.push({ kind, r });
      }
    }
    const er = (await estLines.next(seconds * 1000 + 30_000)) as unknown as EstReport;
    const out: FloodMeasurement = { quiet: [], flood: [], quietWorst: [], floodWorst: [], floods: [], sessionsClosed: er.closed, refusals: {}, kernel: {} };
    for (const w of windows) {
      const r = windowRate(er, w.r.start + 500, w.r.end);
      if (r.buckets === 0) throw new Error(`no bytes measured in a ${w.kind} window (the sessions ended early: ${er.closed} closed)`);
      out[w.kind].push(r.mbit);
      out[w.kind === 'quiet' ? 'quietWorst' : 'floodWorst'].push(r.worstMbit);
      if (w.kind === 'flood') out.floods.push(w.r);
    }
    out.refusals = diff(p0.refusals, (await proxyCounts(h, webPort)).refusals);
    out.kernel = diff(k0, await kernelCounts(h));
    return out;
  } finally {
    await stopChild(est);
  }
}

export async function floodBenches(): Promise<BenchResult[]> {
  const topo = new Topology('bnfl');
  try {
    const h = await topo.host('lo');
    const shipped = await applyShipped(h);
    const [sp, pp] = [7700, 7800];
    const mbit = 25;
    const srv = h.spawn(buildFlooder(), ['serve', String(sp), String(mbit)], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Lines(srv).next(10_000);
    await startProxy(h, pp, sp);
    const tag = { links: 'loopback', pm: shipped.pm };
    const out: BenchResult[] = [];
    for (const mode of ['rst', 'idle:2000']) {
      out.push(await floodEntry(h, pp, mode, mbit, tag).catch((e: unknown) => failure(mode === 'rst' ? 'abandon-flood' : 'abandon-flood-idle', 'Mbit/s', 'the same sessions without the flood', (e as Error).message, tag)));
    }
    return out;
  } finally {
    await topo.destroy();
  }
}

async function floodEntry(h: Host, pp: number, mode: string, mbit: number, tag: Partial<BenchResult>): Promise<BenchResult> {
  const m = await measureFlood(h, pp, WEB, { mode });
  const idle = mode.startsWith('idle:');
  const how = idle ? `each held open without a byte for ${mode.slice(5)} ms (the flooder's open-file limit caps what it holds)` : 'each closed with RST once connected';
  const fr = m.floods.map((f) => f.rate);
  const offered = m.floods.map((f) => f.attempted / ((f.end - f.start) / 1000));
  const connected = m.floods.reduce((a, f) => a + f.connected, 0);
  const failed = m.floods.reduce((a, f) => a + f.failed, 0);
  const pending = m.floods.reduce((a, f) => a + (f.stillConnecting ?? 0), 0);
  const gaveUp = m.floods.reduce((a, f) => a + (f.gaveUp ?? 0), 0);
  const note =
    `4 established sessions paced at ${mbit} Mbit/s each by the server, through one explicit listener (shipped sysctls and default policy); ` +
    `${m.flood.length} flood windows of 3 s interleaved with as many quiet ones, the first 0.5 s of each left out; ` +
    `flood: 20,000 connects/s from 64 loopback addresses, ${how}: SYNs offered at ${median(offered).toFixed(0)} conn/s (min ${Math.min(...offered).toFixed(0)}), handshakes completed at ${median(fr).toFixed(0)} conn/s (min ${Math.min(...fr).toFixed(0)}); ` +
    `abandoned: ${connected} connected, ${failed} failed, ${gaveUp} given up after 250 ms in SYN-SENT (dropped by the full accept queue), ${pending} still connecting at the window's end; ` +
    `the proxy's refusals: ${fmt(m.refusals)}; the kernel: ${fmt(m.kernel)}; slowest 100 ms window during the floods ${Math.min(...m.floodWorst).toFixed(1)} Mbit/s, in the quiet ones ${Math.min(...m.quietWorst).toFixed(1)}; sessions closed early: ${m.sessionsClosed}`;
  return fromRuns(idle ? 'abandon-flood-idle' : 'abandon-flood', 'Mbit/s', m.flood, m.quiet, 'the same sessions without the flood', {
    ...tag,
    target: 'ratio >= 0.9 (never starved)',
    judge: (x) => x.ratio >= 0.9 && m.sessionsClosed === 0,
    note,
  });
}

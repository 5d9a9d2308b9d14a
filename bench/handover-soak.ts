import { removeBenchDirs, sleep } from './lib.js';
import { applyShipped } from './sysctl.js';
import { handoverRun, rig, startCell, type Case, type Dir } from './netns.js';
import { XferServer } from './xfer-run.js';
import type { Host } from '../src/sim/hosts.js';
import { rateOf } from './world.js';

/**
 * One handover case of the `netns` group, repeated (not a benchmark: a hunt for a rare fault).
 * Each run is checked at the receiver with the position pattern (bench/position.ts); a run that
 * fails prints where the first wrong byte is and where the bytes there came from, and the MPTCP
 * and TCP counters (nstat) that moved on the cell and the server during that run.
 *
 *   node dist/bench/handover-soak.js RUNS
 * SOAK_TARGET=duocell|kernel (duocell: through the cell's explicit listener; kernel: MPTCP end
 * to end), SOAK_DIR=upload|download, SOAK_CASE=other|initial, SOAK_BYTES (24 MiB), SOAK_CUT_MS
 * (2500), BENCH_LINKS=ideal|realistic (the first is used). duocell reads its own env knobs
 * (DUOCELL_FAST_PATH, DUOCELL_HANDOVER_BACKUP, DUOCELL_RELAY) from this process's environment.
 */
const MiB = 1 << 20;

async function counters(h: Host): Promise<Map<string, number>> {
  const out = await h.exec('nstat', ['-az', '--json'], { allowFail: true });
  const m = new Map<string, number>();
  try {
    const j = JSON.parse(out) as { kernel?: Record<string, number> };
    for (const [k, v] of Object.entries(j.kernel ?? {})) m.set(k, v);
  } catch {
    /* no nstat */
  }
  return m;
}

function moved(a: Map<string, number>, b: Map<string, number>, re: RegExp): string {
  const out: string[] = [];
  for (const [k, v] of b) {
    const d = v - (a.get(k) ?? 0);
    if (d !== 0 && re.test(k)) out.push(`${k}=${d}`);
  }
  return out.join(' ');
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 20);
  const target = process.env.SOAK_TARGET === 'kernel' ? 'kernel' : 'duocell';
  const dir: Dir = process.env.SOAK_DIR === 'download' ? 'download' : 'upload';
  const c: Case = process.env.SOAK_CASE === 'initial' ? 'initial' : 'other';
  const bytes = Number(process.env.SOAK_BYTES ?? 24 * MiB);
  const cutMs = Number(process.env.SOAK_CUT_MS ?? 2500);
  const world = (process.env.BENCH_LINKS ?? 'ideal').split(',')[0] === 'realistic' ? 'realistic' : 'ideal';
  const r = await rig(world, `upls${process.pid % 1000}`);
  let bad = 0;
  try {
    await applyShipped(r.cell);
    const srv = target === 'duocell' ? await XferServer.start(r.srv, '::', 8000, false, true) : await XferServer.start(r.srv, '::', 8001, true, true);
    if (target === 'duocell') await startCell(r.cell);
    await sleep(500);
    const survivor = rateOf(c === 'initial' ? 'wlan' : 'cellular') * 0.95;
    const re = /^(MPTcp|TcpExtTCP(Abort|Backlog|OFO|Zero|RcvQDrop|DSACK)|TcpExtTCPLoss)/;
    for (let i = 1; i <= runs; i++) {
      const before = await Promise.all([counters(r.cell), counters(r.srv), counters(r.mue)]);
      let line: string;
      try {
        const h = await handoverRun(r, srv, target === 'duocell' ? '10.71.0.1' : '10.71.3.2', target === 'duocell' ? 9000 : 8001, c, survivor, dir, bytes, cutMs);
        line = `ok resume ${h.resumeMs.toFixed(0)} ms`;
      } catch (e) {
        bad++;
        line = `FAILED ${(e as Error).message}`;
      }
      const after = await Promise.all([counters(r.cell), counters(r.srv), counters(r.mue)]);
      process.stdout.write(`run ${i}/${runs} ${target} ${dir} ${c}: ${line}\n  cell: ${moved(before[0], after[0], re)}\n  srv: ${moved(before[1], after[1], re)}\n  mue: ${moved(before[2], after[2], re)}\n`);
    }
  } finally {
    await r.topo.destroy();
    removeBenchDirs();
  }
  process.stdout.write(`${bad} of ${runs} runs failed\n`);
  process.exitCode = bad > 0 ? 1 : 0;
}
void main();

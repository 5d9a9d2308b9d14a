// An M-UE's upload through the cell's explicit listener on 10.71.0.1:9000 (bench/netns.ts rig)
// to the server's :8000, one radio cut on both ends mid-upload: what the M-UE saw. Shared by
// test/kernel/mue-radio-ids.test.ts and test/kernel/join-dnat.test.ts.
import type { ChildProcess } from 'node:child_process';
import { waitFor } from './appliance.js';
import type { Rig } from '../../bench/netns.js';
import { transfer, type XferServer } from '../../bench/xfer-run.js';
import { sleep } from '../../bench/lib.js';
import type { Host } from '../../src/sim/hosts.js';

const MiB = 1 << 20;
export const SIZE = 24 * MiB; // long enough to outlast the GONE_MS window on the survivor alone
const CUT_AT = 2 * MiB;
export const GONE_MS = 6000;

/** One MPTcpExt counter of a namespace, absolute (/proc/net/netstat; no shared nstat history). */
export async function mptcpCounter(h: Host, name: string): Promise<number> {
  const lines = (await h.exec('cat', ['/proc/net/netstat'])).split('\n');
  for (let i = 0; i + 1 < lines.length; i += 2) {
    if (!lines[i]!.startsWith('MPTcpExt:')) continue;
    const keys = lines[i]!.trim().split(/\s+/);
    const vals = lines[i + 1]!.trim().split(/\s+/);
    const k = keys.indexOf(name);
    return k < 0 ? 0 : Number(vals[k]);
  }
  return 0;
}

/** The M-UE's established subflows to port 9000 as "local remote" pairs. */
export async function ueSubflows(r: Rig): Promise<string[]> {
  const out = await r.mue.exec('ss', ['-Htn', 'state', 'established', 'dport', '=', ':9000'], { allowFail: true });
  return out.split('\n').map((l) => l.trim().split(/\s+/).filter((f) => /:\d+$/.test(f))).filter((f) => f.length >= 2).map((f) => `${f[0]!.replace(/%\w+/, '')} ${f[1]}`);
}

export async function serverReceived(r: Rig): Promise<number> {
  const out = await r.srv.exec('ss', ['-Htni', 'state', 'established', 'sport', '= :8000'], { allowFail: true });
  let sum = 0;
  for (const m of out.matchAll(/bytes_received:(\d+)/g)) sum += Number(m[1]);
  return sum;
}

export async function stopDuocell(app: { child: ChildProcess }): Promise<void> {
  if (app.child.exitCode !== null) return;
  const done = new Promise((res) => app.child.once('exit', res));
  app.child.kill('SIGTERM');
  await Promise.race([done, sleep(15_000)]);
}

export interface Round {
  /** Subflows of the M-UE before the cut. */
  before: string[];
  rmAddr: number;
  /** MPTcpExtSubflowStale of the M-UE over the round. */
  stale: number;
  /** The dead radio's subflow left ESTABLISHED within GONE_MS of the cut, while the upload still ran. */
  gone: boolean;
  /** When it left, ms after the cut (a figure for the message, never asserted). */
  goneMs?: number;
  ok: boolean;
  error?: string;
  midUpload: boolean;
}

/** One upload with `dev` cut on both ends once the server has CUT_AT bytes. */
export async function round(r: Rig, srv: XferServer, dev: 'ran0' | 'wap0', onFlowing?: () => Promise<void>): Promise<Round> {
  const ueAddr = dev === 'ran0' ? '10.71.1.2' : '10.71.2.2';
  const rm0 = await mptcpCounter(r.mue, 'RmAddr');
  const st0 = await mptcpCounter(r.mue, 'SubflowStale');
  let before: string[] = [];
  let gone = false;
  let goneMs: number | undefined;
  let cutAt = 0;
  let done = false;
  const up = transfer(r.mue, srv, { host: '10.71.0.1', port: 9000, mptcp: true, send: SIZE, trace: true, timeoutMs: 90_000 }).finally(() => {
    done = true;
  });
  const cut = (async () => {
    await waitFor(async () => ((await serverReceived(r)) >= CUT_AT ? true : undefined), 30_000, 50);
    before = await ueSubflows(r);
    await onFlowing?.();
    const dead = before.filter((s) => s.startsWith(`${ueAddr}:`));
    cutAt = performance.timeOrigin + performance.now();
    await Promise.all([r.cell.linkSet(dev, 'down'), r.mue.linkSet(dev, 'down')]);
    // While the upload runs (its end closes every subflow anyway) and for at most GONE_MS.
    const t0 = Date.now();
    while (!done && Date.now() - t0 < GONE_MS && dead.length > 0) {
      const now = await ueSubflows(r);
      if (!dead.some((d) => now.includes(d))) {
        gone = !done;
        goneMs = Date.now() - t0;
        break;
      }
      await sleep(50);
    }
  })();
  try {
    const res = await up.then((x) => ({ ok: true as const, x }), (e: Error) => ({ ok: false as const, e }));
    await cut;
    const samples = res.ok ? res.x.serverSamples ?? [] : [];
    const atCut = samples.filter(([x]) => x < cutAt).at(-1)?.[1] ?? 0;
    return { before, rmAddr: (await mptcpCounter(r.mue, 'RmAddr')) - rm0, stale: (await mptcpCounter(r.mue, 'SubflowStale')) - st0, gone, ...(goneMs === undefined ? {} : { goneMs }), ok: res.ok, ...(res.ok ? {} : { error: res.e.message }), midUpload: atCut > 0 && atCut < SIZE };
  } finally {
    await cut.catch(() => undefined);
    await r.restore();
    await sleep(500);
  }
}


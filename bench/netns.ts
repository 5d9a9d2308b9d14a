import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Topology, type Host } from '../src/sim/hosts.js';
import { benchDir, failure, fromRuns, runsWanted, sleep, type BenchResult } from './lib.js';
import { alternate } from './stats.js';
import { applyShipped, underShippedLimits } from './sysctl.js';
import { handoverOf } from './handover.js';
import { transfer, XferServer } from './xfer-run.js';
import { linkOptions, rateOf, worlds, type World } from './world.js';

/**
 * M-UE benchmarks in namespaces (group `netns`), per link world: an M-UE with a cellular and a
 * WLAN access link to the cell, whose way to the server is unshaped (faster than their sum).
 * duocell (the cell's explicit MPTCP listener → plain TCP to the server) against kernel-only
 * MPTCP end to end over the same links, runs interleaved, medians of BENCH_RUNS (5):
 *   aggregate / aggregate-of-sum   download, server → M-UE (Mbit/s; fraction of 20 + 30)
 *   aggregate-upload (+ -of-sum)   the same the other way
 *   single-path-cellular / -wlan   one plain TCP download per path (the surviving path's rate)
 *   handover-{initial,other}-path  download, cut the path of the initial subflow (cellular) or
 *                                  the other one (WLAN) 2.5 s in: bytes flow again after the
 *                                  longest stall; handover-80-…: the rate holds ≥ 80 % of the
 *                                  surviving path's single-path rate for 1 s (bench/handover.ts)
 *   handover-upload-…, handover-80-upload-…   the same for an upload (M-UE → server), traced
 *                                  at the server
 * The cell runs the shipped sysctls (systemd/60-duocell.conf). BENCH_NETNS=handover measures
 * only the handover figures (and the single-path rates they need); BENCH_HANDOVER=download|upload
 * only those of one direction, BENCH_HANDOVER_CASE=initial|other only one cut.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin/duocell.js');
const MiB = 1 << 20;
const BYTES = 24 * MiB;
const CUT_AFTER_MS = 2500;

export interface Rig {
  topo: Topology;
  mue: Host;
  cell: Host;
  srv: Host;
  restore(): Promise<void>;
}

// BENCH_NS_PREFIX: a namespace prefix of one's own when others may run the same group at once.
export async function rig(w: World, prefix = `${process.env.BENCH_NS_PREFIX ?? 'bnx'}${w === 'ideal' ? 'i' : 'r'}`): Promise<Rig> {
  const topo = new Topology(prefix);
  try {
    const mue = await topo.host('mue');
    const cell = await topo.host('cell', { forward: true });
    const srv = await topo.host('srv');
    await topo.link(mue, 'ran0', cell, 'ran0', linkOptions(w, 'cellular', { a: ['10.71.1.2/24'], b: ['10.71.1.1/24'] }));
    await topo.link(mue, 'wap0', cell, 'wap0', linkOptions(w, 'wlan', { a: ['10.71.2.2/24'], b: ['10.71.2.1/24'] }));
    await topo.link(cell, 'up0', srv, 'up0', { a: ['10.71.3.1/24'], b: ['10.71.3.2/24'] });
    // The cell's service address lives on lo, not on one radio: losing a radio keeps it reachable.
    await cell.ip('addr', 'add', '10.71.0.1/32', 'dev', 'lo');
    await mue.ip('rule', 'add', 'from', '10.71.1.2', 'table', '11');
    await mue.ip('rule', 'add', 'from', '10.71.2.2', 'table', '12');
    const restore = async (): Promise<void> => {
      for (const h of [mue, cell]) for (const i of ['ran0', 'wap0']) await h.linkSet(i, 'up');
      await mue.ip('route', 'replace', 'default', 'via', '10.71.1.1', 'dev', 'ran0');
      await mue.ip('route', 'replace', 'default', 'via', '10.71.1.1', 'dev', 'ran0', 'table', '11');
      await mue.ip('route', 'replace', 'default', 'via', '10.71.2.1', 'dev', 'wap0', 'table', '12');
      await srv.ip('route', 'replace', 'default', 'via', '10.71.3.1');
    };
    await restore();
    await mue.mptcpEndpoint('10.71.2.2', 'wap0', ['subflow']);
    for (const h of [mue, cell, srv]) await h.mptcpLimits(4, 4);
    // BENCH_MUE_ADD_ADDR=N: the M-UE's own add_addr_accepted limit (the UE's business, a bench
    // variant: Linux's default is 0; the rig's default stays 4).
    const accept = process.env.BENCH_MUE_ADD_ADDR;
    if (accept !== undefined) await mue.exec('ip', ['mptcp', 'limits', 'set', 'add_addr_accepted', String(Number(accept)), 'subflows', '4']);
    // BENCH_MUE_STALE_LOSS=N: the M-UE's own net.mptcp.stale_loss_cnt (Linux's default 4), the
    // UE-side knob of an upload's handover (docs/relay.md "Upload handover: whose time it is").
    const stale = process.env.BENCH_MUE_STALE_LOSS;
    if (stale !== undefined) await mue.sysctl('net.mptcp.stale_loss_cnt', Number(stale));
    return { topo, mue, cell, srv, restore };
  } catch (e) {
    await topo.destroy();
    throw e;
  }
}

export async function startCell(cell: Host): Promise<void> {
  const dir = benchDir();
  const board = {
    name: 'bench-cell',
    preset: 'cell',
    uplinks: [{ name: 'up', access: 'wlan', interface: 'up0' }],
    lan: { interfaces: ['ran0', 'wap0'] },
    web: { listen: [{ host: '127.0.0.1', port: 18081 }] },
    listeners: [{ kind: 'explicit', host: '::', port: 9000, mptcp: true, target: '10.71.3.2:8000', upstream: 'tcp' }],
    // BENCH_MUE_RADIO_IDS=1: per-radio address ids for M-UE sessions (the product's opt-in).
    ...(process.env.BENCH_MUE_RADIO_IDS === '1' ? { mueRadioAddresses: true } : {}),
    // BENCH_JOIN_DNAT=1: the join DNAT on (the product's opt-in `joinDnat`; docs/relay.md "Upload
    // handover: whose time it is"), for an A/B. The kernel-only baseline never passes the cell's listener.
    ...(process.env.BENCH_JOIN_DNAT === '1' ? { joinDnat: true } : {}),
    accessNetworks: [
      { prefix: '10.71.1.0/24', access: 'cellular' },
      { prefix: '10.71.2.0/24', access: 'wlan' },
    ],
  };
  fs.writeFileSync(path.join(dir, 'board.json'), JSON.stringify(board));
  // BENCH_CELL_LOG=FILE keeps the cell's log (at DUOCELL_LOG_LEVEL, default warn) for tracing.
  const logFile = process.env.BENCH_CELL_LOG;
  const out = logFile === undefined ? 'ignore' : fs.openSync(logFile, 'a');
  cell.spawn(...underShippedLimits(process.execPath, [BIN, 'run', '--board', path.join(dir, 'board.json'), '--state-dir', dir]), {
    stdio: ['ignore', out, out],
    env: { ...process.env, DUOCELL_LOG_LEVEL: logFile === undefined ? 'warn' : (process.env.DUOCELL_LOG_LEVEL ?? 'warn') },
  });
  if (typeof out === 'number') fs.closeSync(out);
  // Up once the listener is there and, where the join DNAT applies, its table (the path manager starts after the listeners).
  const dnat = process.env.BENCH_JOIN_DNAT === '1' && process.env.BENCH_MUE_RADIO_IDS !== '1';
  for (let i = 0; i < 150; i++) {
    const ok = await cell.exec('ss', ['-Hltn', 'sport = :9000'], { allowFail: true });
    if (ok.trim() !== '' && (!dnat || (await cell.exec('nft', ['list', 'tables'], { allowFail: true })).includes('inet duocell_join'))) return;
    await sleep(100);
  }
  throw new Error('cell did not start');
}

export type Case = 'initial' | 'other';
const CUT: Record<Case, { dev: string; survivor: 'cellular' | 'wlan' }> = {
  initial: { dev: 'ran0', survivor: 'wlan' }, // the M-UE's default route: the initial subflow
  other: { dev: 'wap0', survivor: 'cellular' },
};

export type Dir = 'download' | 'upload';

export async function handoverRun(r: Rig, srv: XferServer, host: string, port: number, c: Case, survivorMbit: number, dir: Dir = 'download', size = BYTES, cutAfterMs = CUT_AFTER_MS): Promise<{ resumeMs: number; to80Ms: number }> {
  // A download is traced at the M-UE, an upload at the server (after the cell's relay, for duocell).
  const p = transfer(r.mue, srv, { host, port, mptcp: true, ...(dir === 'download' ? { receive: size } : { send: size }), trace: true, timeoutMs: 60_000 });
  let cutAt = 0;
  const cut = (async () => {
    await sleep(cutAfterMs);
    cutAt = performance.timeOrigin + performance.now();
    await Promise.all([r.cell.linkSet(CUT[c].dev, 'down'), r.mue.linkSet(CUT[c].dev, 'down')]);
  })();
  try {
    const t = await p;
    await cut;
    const samples = (dir === 'download' ? t.client.samples : t.serverSamples) ?? [];
    const before = samples.filter(([x]) => x < cutAt);
    if (before.length === 0 || before[before.length - 1]![1] < 1 * MiB) throw new Error('the cut came before the transfer was flowing');
    const h = handoverOf(samples, cutAt, survivorMbit);
    if (!Number.isFinite(h.resumeMs)) throw new Error('no byte arrived after the cut');
    return h;
  } finally {
    await cut.catch(() => undefined);
    await r.restore();
    await sleep(1000);
  }
}

async function world(w: World): Promise<BenchResult[]> {
  const r = await rig(w);
  const n = runsWanted();
  try {
    const shipped = await applyShipped(r.cell);
    const tag: Partial<BenchResult> = { links: w, pm: shipped.pm };
    // The servers trace arrivals: an upload's handover is read at the receiver, the server.
    const viaCell = await XferServer.start(r.srv, '::', 8000, false, true);
    const mserver = await XferServer.start(r.srv, '::', 8001, true, true);
    await startCell(r.cell);
    await sleep(500);
    const sum = rateOf('cellular') + rateOf('wlan');
    const dl = (host: string, port: number, s: XferServer) => async (): Promise<number> => (await transfer(r.mue, s, { host, port, mptcp: true, receive: BYTES })).mbit;
    const ul = (host: string, port: number, s: XferServer) => async (): Promise<number> => (await transfer(r.mue, s, { host, port, mptcp: true, send: BYTES })).mbit;
    const frac = (xs: Array<number | Error>): Array<number | Error> => xs.map((x) => (typeof x === 'number' ? x / sum : x));
    const ratio97 = { target: 'ratio >= 0.97', judge: (x: { ratio: number }) => x.ratio >= 0.97 };
    const out: BenchResult[] = [];
    if (process.env.BENCH_NETNS !== 'handover') {
      const down = await alternate(n, dl('10.71.0.1', 9000, viaCell), dl('10.71.3.2', 8001, mserver));
      const up = await alternate(n, ul('10.71.0.1', 9000, viaCell), ul('10.71.3.2', 8001, mserver));
      out.push(
        fromRuns('aggregate', 'Mbit/s', down.a, down.b, 'kernel-only MPTCP end to end', { ...tag, ...ratio97, note: `download of ${BYTES / MiB} MiB, timed to the receiver's last byte, SHA-256 checked` }),
        fromRuns('aggregate-of-sum', 'fraction', frac(down.a), frac(down.b), `kernel-only MPTCP, fraction of ${sum} Mbit/s`, tag),
        fromRuns('aggregate-upload', 'Mbit/s', up.a, up.b, 'kernel-only MPTCP end to end', { ...tag, ...ratio97 }),
        fromRuns('aggregate-upload-of-sum', 'fraction', frac(up.a), frac(up.b), `kernel-only MPTCP, fraction of ${sum} Mbit/s`, tag),
      );
    }
    // The surviving path's rate: one plain TCP download over each path alone, median of 3.
    const single: Record<'cellular' | 'wlan', number> = { cellular: NaN, wlan: NaN };
    for (const [acc, from] of [['cellular', '10.71.1.2'], ['wlan', '10.71.2.2']] as const) {
      const got = await alternate(3, async () => (await transfer(r.mue, viaCell, { host: '10.71.3.2', port: 8000, mptcp: false, from, receive: BYTES / 2 })).mbit, async () => NaN);
      const e = fromRuns(`single-path-${acc}`, 'Mbit/s', got.a, [rateOf(acc)], 'the profile\'s rate', { ...tag, note: 'plain TCP download over this path alone: the surviving path\'s rate for handover-80' });
      single[acc] = e.value ?? NaN;
      out.push(e);
    }
    const dirs = (['download', 'upload'] as const).filter((d) => (process.env.BENCH_HANDOVER ?? d) === d);
    for (const dir of dirs) {
      for (const c of (['initial', 'other'] as const).filter((x) => (process.env.BENCH_HANDOVER_CASE ?? x) === x)) {
        const ref = single[CUT[c].survivor];
        const up = dir === 'upload' ? 'upload-' : '';
        const what = `cut ${CUT[c].dev} (${c === 'initial' ? 'the initial subflow\'s path, cellular' : 'the other path, WLAN'}) ${CUT_AFTER_MS / 1000} s into a ${BYTES / MiB} MiB ${dir === 'download' ? 'download (traced at the M-UE)' : 'upload, M-UE → server (traced at the server)'}`;
        if (!Number.isFinite(ref)) {
          out.push(failure(`handover-${up}${c}-path`, 'ms', 'kernel-only MPTCP end to end', `no single-path rate of ${CUT[c].survivor} to compare with`, tag));
          continue;
        }
        const h = await alternate(n, () => handoverRun(r, viaCell, '10.71.0.1', 9000, c, ref, dir), () => handoverRun(r, mserver, '10.71.3.2', 8001, c, ref, dir));
        const pick = (xs: Array<{ resumeMs: number; to80Ms: number } | Error>, k: 'resumeMs' | 'to80Ms'): Array<number | Error> =>
          xs.map((x) => (x instanceof Error ? x : Number.isFinite(x[k]) ? x[k] : k === 'to80Ms' ? Infinity : new Error('no resume')));
        out.push(
          fromRuns(`handover-${up}${c}-path`, 'ms', pick(h.a, 'resumeMs'), pick(h.b, 'resumeMs'), 'kernel-only MPTCP end to end', { ...tag, target: '<= 300 ms', judge: (x) => x.value <= 300, note: what }),
          fromRuns(`handover-80-${up}${c}-path`, 'ms', pick(h.a, 'to80Ms'), pick(h.b, 'to80Ms'), 'kernel-only MPTCP end to end', {
            ...tag,
            censored: true,
            target: '<= 1000 ms',
            judge: (x) => x.value <= 1000,
            note: `${what}; 80 % of ${ref.toFixed(1)} Mbit/s (single-path ${CUT[c].survivor}${dir === 'upload' ? ', measured as a download: the links are symmetric' : ''}) in every 250 ms window for 1 s`,
          }),
        );
      }
    }
    return out;
  } finally {
    await r.topo.destroy();
  }
}

export async function netnsBenches(): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  for (const w of worlds()) out.push(...(await world(w)));
  return out;
}

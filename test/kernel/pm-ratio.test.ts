// Needs root, network namespaces and the kernel's MPTCP (runs in CI as root).
// Steering with per-connection backup flags (SteeringController) under the userspace path
// manager in the sender's namespace: two tbf-shaped paths, cellular 20 Mbit/s and WLAN
// 30 Mbit/s, whose natural split under greedy transfers is about 40:60.
//   ratio 30:70, 20 bulk transfers: the split the RECEIVER sees (its own sock_diag counters,
//     not the controller's) comes within ±5 points of 30 % in under 10 s and stays there;
//   active-standby (WLAN active): cellular carries almost nothing until WLAN goes down, then
//     bytes flow on cellular in under 1 s; when WLAN returns, cellular is standby again.
import t from 'tap';
import { netnsUnavailable } from '../helpers/hosts.js';
import { received, steerRig } from './steer-rig.js';

const why = await netnsUnavailable();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const rig = steerRig;

t.test('ratio 30:70 over 20 bulk transfers converges (needs root + MPTCP kernel)', { skip: why === false ? false : why, timeout: 120_000 }, async (t) => {
  const { C, S, port, cellAddr, wlanAddr, dst } = await rig(t, 'tpmr', 76, { mode: 'ratio', ratio: { cellular: 30, wlan: 70 } });
  const t0 = Date.now();
  t.equal(await C.call('bulk.start', dst, port, 20, [cellAddr, wlanAddr]), 20);
  // sample the receiver every 250 ms for 18 s
  const cumulative: Array<{ cell: number; wlan: number; at: number }> = [];
  while (Date.now() - t0 < 18_000) {
    const r = await received(S, cellAddr);
    // subflows that closed drop out of the dump: never let a total go backwards
    const prev = cumulative.at(-1) ?? { cell: 0, wlan: 0 };
    cumulative.push({ cell: Math.max(prev.cell, r.cell), wlan: Math.max(prev.wlan, r.wlan), at: r.at });
    await sleep(250);
  }
  await C.call('bulk.stop');
  /** Cellular share over a trailing window of `ms`, at each sample once the window is full. */
  const trailing = (ms: number): Array<{ s: number; share: number }> => {
    const out: Array<{ s: number; share: number }> = [];
    for (const b of cumulative) {
      if (b.at - t0 < ms) continue;
      const a = cumulative.find((x) => x.at >= b.at - ms)!;
      const total = b.cell - a.cell + (b.wlan - a.wlan);
      if (total > 0) out.push({ s: (b.at - t0) / 1000, share: (100 * (b.cell - a.cell)) / total });
    }
    return out;
  };
  const within = (x: { share: number }): boolean => Math.abs(x.share - 30) <= 5;
  const stats = (series: Array<{ s: number; share: number }>): { first?: number; inBand: number; mean: number; n: number } => {
    const tail = series.filter((x) => x.s >= 10);
    const first = series.find(within)?.s;
    return { ...(first === undefined ? {} : { first }), inBand: tail.filter(within).length / Math.max(1, tail.length), mean: tail.reduce((x, y) => x + y.share, 0) / Math.max(1, tail.length), n: tail.length };
  };
  const w5 = trailing(5000);
  const s5 = stats(w5);
  const s3 = stats(trailing(3000));
  t.comment(`cellular share (receiver, trailing 5 s): ${w5.map((x) => `${x.s.toFixed(1)}s=${x.share.toFixed(1)}`).join(' ')}`);
  t.comment(`5 s windows: first within ±5 at ${s5.first?.toFixed(1)} s; after 10 s ${(s5.inBand * 100).toFixed(0)} % within ±5, mean ${s5.mean.toFixed(1)} %`);
  t.comment(`3 s windows: first within ±5 at ${s3.first?.toFixed(1)} s; after 10 s ${(s3.inBand * 100).toFixed(0)} % within ±5, mean ${s3.mean.toFixed(1)} %`);
  // the split over the controller-independent 5 s window (greedy flows make the loop alternate
  // with a period of a few seconds, see pm/steer/ratio.ts; 5 s spans about one period)
  t.ok(s5.first !== undefined && s5.first < 10, `within ±5 points of 30 % after ${s5.first?.toFixed(1)} s (< 10 s)`);
  t.ok(s5.n >= 10, 'enough samples');
  // After 10 s the loop keeps alternating around the target (greedy flows). On a quiet machine
  // 84–100 % of the 5 s windows stay within ±5 points (bench ratio-convergence: 3.0 points off);
  // with other kernel tests running at the same time (CI runs two files at once) ticks are late
  // and one swing of about 15 points has been seen: these bounds hold there and still tell a
  // steered split from the unsteered 40 %.
  t.ok(s5.inBand >= 0.4, `at least 40 % of the 5 s windows after 10 s are within ±5 points (${(s5.inBand * 100).toFixed(0)} %)`);
  t.ok(Math.abs(s5.mean - 30) <= 7, `mean share after 10 s within ±7 points (${s5.mean.toFixed(1)} %; unsteered 40 %)`);
  const st = await C.call<{ moves: number; commands: number; unsupported: number }>('steer.stats');
  t.comment(`controller: ${JSON.stringify(st)}`);
  t.ok(st.moves > 0 && st.commands > 0, 'the controller acted');
  t.equal(st.unsupported, 0, 'SET_FLAGS accepted under the userspace PM');
});

t.test('active-standby: standby idle until the active path fails, then takes over in < 1 s (needs root + MPTCP kernel)', { skip: why === false ? false : why, timeout: 120_000 }, async (t) => {
  const { C, S, cell, port, cellAddr, dst } = await rig(t, 'tpma', 78, { mode: 'active-standby', ratio: { cellular: 50, wlan: 50 }, preferred: 'wlan' });
  // the connections start on the standby (cellular) address: the hardest case
  await C.call('bulk.start', dst, port, 4, [cellAddr]);
  await sleep(1500);
  const a = await received(S, cellAddr);
  await sleep(3000);
  const b = await received(S, cellAddr);
  const standby = b.cell - a.cell;
  const active = b.wlan - a.wlan;
  t.comment(`steady state over 3 s: cellular ${standby} B, WLAN ${active} B`);
  t.ok(active > 0, 'WLAN carries the traffic');
  t.ok(standby <= 0.01 * (standby + active), 'cellular (standby) carries under 1 % of the bytes');

  // WLAN goes down on the cell: bytes must flow on cellular within a second
  const before = await received(S, cellAddr);
  const tDown = Date.now();
  await cell.linkSet('wlan0', 'down');
  let tFlow: number | undefined;
  while (Date.now() - tDown < 5000) {
    const r = await received(S, cellAddr);
    if (r.cell - before.cell > 64 * 1024) {
      tFlow = r.at;
      break;
    }
    await sleep(20);
  }
  const fo = await C.waitEvent((e) => e.event === 'failover', 5000).catch(() => undefined);
  t.comment(`WLAN down → 64 KiB more on cellular at the receiver after ${tFlow === undefined ? 'never' : tFlow - tDown} ms; controller failover (path event → flags acked) ${JSON.stringify(fo?.data)}`);
  t.ok(tFlow !== undefined && tFlow - tDown < 1000, 'standby carries bytes within 1 s of the active path going down');
  const c1 = await received(S, cellAddr);
  await sleep(2000);
  const c2 = await received(S, cellAddr);
  t.ok(c2.cell - c1.cell > 0, 'cellular keeps carrying');

  // WLAN comes back: a WLAN subflow reopens and cellular is standby again
  await cell.linkSet('wlan0', 'up');
  let reverted = false;
  const tUp = Date.now();
  while (Date.now() - tUp < 15_000 && !reverted) {
    await sleep(500);
    const x = await received(S, cellAddr);
    await sleep(1000);
    const y = await received(S, cellAddr);
    const dc = y.cell - x.cell;
    const dw = y.wlan - x.wlan;
    reverted = dw > 0 && dc <= 0.05 * (dc + dw);
  }
  t.comment(`reverted to WLAN after ${Date.now() - tUp} ms`);
  t.ok(reverted, 'back on WLAN with cellular as standby once WLAN returns');
  await C.call('bulk.stop');
});

t.test('priority: the other access is added when the preferred one is saturated, released when the load falls (needs root + MPTCP kernel)', { skip: why === false ? false : why, timeout: 120_000 }, async (t) => {
  const { C, S, port, cellAddr, wlanAddr, dst } = await rig(t, 'tpmq', 77, { mode: 'priority', ratio: { cellular: 50, wlan: 50 }, preferred: 'wlan' });
  const split = async (ms: number): Promise<{ cell: number; wlan: number }> => {
    const a = await received(S, cellAddr);
    await sleep(ms);
    const b = await received(S, cellAddr);
    return { cell: b.cell - a.cell, wlan: b.wlan - a.wlan };
  };
  // a light load fits on WLAN: cellular stays standby
  await C.call('paced.start', dst, port, 4, wlanAddr);
  await sleep(2000);
  const light = await split(2000);
  t.comment(`4 Mbit/s paced: ${JSON.stringify(light)}`);
  t.ok(light.wlan > 0 && light.cell <= 0.02 * (light.cell + light.wlan), 'light load: WLAN only');
  // greedy transfers saturate WLAN (a standing queue): cellular is added
  await C.call('bulk.start', dst, port, 4, [wlanAddr]);
  const t0 = Date.now();
  let added: number | undefined;
  while (Date.now() - t0 < 10_000 && added === undefined) {
    const g = await C.call<Array<{ overflow?: boolean }>>('steer.groups');
    if (g[0]?.overflow === true) added = Date.now() - t0;
    else await sleep(100);
  }
  t.comment(`secondary added ${added} ms after the greedy transfers started`);
  t.ok(added !== undefined, 'overflow declared');
  const heavy = await split(2000);
  t.comment(`saturated: ${JSON.stringify(heavy)}`);
  t.ok(heavy.cell > 0.2 * (heavy.cell + heavy.wlan), 'cellular carries a real share while WLAN is saturated');
  // the greedy transfers end: the load falls below what WLAN alone carried, cellular is released
  await C.call('bulk.stop');
  await C.call('paced.start', dst, port, 4, wlanAddr);
  const t1 = Date.now();
  let released: number | undefined;
  while (Date.now() - t1 < 15_000 && released === undefined) {
    const g = await C.call<Array<{ overflow?: boolean }>>('steer.groups');
    if (g[0]?.overflow === false) released = Date.now() - t1;
    else await sleep(100);
  }
  t.comment(`secondary released ${released} ms after the load fell`);
  t.ok(released !== undefined, 'released');
  await sleep(1000);
  const after = await split(2000);
  t.comment(`light again: ${JSON.stringify(after)}`);
  t.ok(after.wlan > 0 && after.cell <= 0.02 * (after.cell + after.wlan), 'light load: WLAN only again');
  await C.call('bulk.stop');
});

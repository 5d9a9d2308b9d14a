// Needs root, network namespaces and the kernel's MPTCP (runs in CI as root).
// smallest-delay for MPTCP (issue 18 item 4) under the userspace path manager in the sender's
// namespace: two emulated paths of 20 Mbit/s, cellular 8 ms RTT and WLAN 40 ms RTT (duocell's
// delay line, 4 / 20 ms each way). The policy names no preferred access (the fallback is WLAN),
// so only the measured RTTs can put traffic on cellular.
//   an application-limited connection (2 Mbit/s) that starts on the 40 ms path is carried by
//     the 8 ms path, the 40 ms subflow stays backup;
//   bulk transfers saturate the 8 ms path (a standing queue): the 40 ms path is added and
//     carries a real share.
import t from 'tap';
import { netnsUnavailable } from '../helpers/hosts.js';
import { received, steerRig } from './steer-rig.js';

const why = await netnsUnavailable();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Diag { saddr: string; rttMs?: number; minRttMs?: number }
interface Group { mode: string; overflow?: boolean; fastest?: string }

t.test('smallest-delay: app-limited stays on the 8 ms path, bulk gets both (needs root + MPTCP kernel)', { skip: why === false ? false : why, timeout: 120_000 }, async (t) => {
  const { C, S, port, cellAddr, wlanAddr, dst } = await steerRig(t, 'steersd', 79, { mode: 'smallest-delay', ratio: { cellular: 50, wlan: 50 } }, {
    cellular: { rateMbit: 20, delayMs: 4 },
    wlan: { rateMbit: 20, delayMs: 20 },
  });
  const split = async (ms: number): Promise<{ cell: number; wlan: number }> => {
    const a = await received(S, cellAddr);
    await sleep(ms);
    const b = await received(S, cellAddr);
    return { cell: b.cell - a.cell, wlan: b.wlan - a.wlan };
  };
  const groups = (): Promise<Group[]> => C.call<Group[]>('steer.groups');

  // 1. application-limited, started on the 40 ms path (the hardest case)
  await C.call('paced.start', dst, port, 2, wlanAddr);
  const t0 = Date.now();
  let g: Group | undefined;
  while (Date.now() - t0 < 10_000) {
    g = (await groups())[0];
    if (g?.fastest === 'cellular') break;
    await sleep(100);
  }
  t.comment(`fastest chosen after ${Date.now() - t0} ms: ${JSON.stringify(g)}; sender subflows: ${JSON.stringify((await C.call<Diag[]>('diag.subflows')).map((d) => [d.saddr, d.rttMs, d.minRttMs]))}`);
  t.equal(g?.fastest, 'cellular', 'the 8 ms path is measured as the fastest (the policy fallback was WLAN)');
  await sleep(1500);
  const light = await split(3000);
  t.comment(`2 Mbit/s paced over 3 s: ${JSON.stringify(light)}`);
  t.ok(light.cell > 0, 'the 8 ms path carries the application-limited connection');
  t.ok(light.wlan <= 0.05 * (light.cell + light.wlan), 'the 40 ms path carries at most 5 % (backup)');
  t.equal((await groups())[0]?.overflow, false, 'no overflow for an application-limited connection');

  // 2. bulk transfers saturate the 8 ms path: the 40 ms one is added
  await C.call('bulk.start', dst, port, 4, [cellAddr]);
  const t1 = Date.now();
  let added: number | undefined;
  while (Date.now() - t1 < 15_000 && added === undefined) {
    if ((await groups())[0]?.overflow === true) added = Date.now() - t1;
    else await sleep(100);
  }
  t.comment(`second path added ${added} ms after the bulk transfers started`);
  t.ok(added !== undefined, 'overflow declared under bulk load');
  await sleep(1000);
  const heavy = await split(3000);
  t.comment(`bulk over 3 s: ${JSON.stringify(heavy)}`);
  t.ok(heavy.wlan > 0.1 * (heavy.cell + heavy.wlan), 'the 40 ms path carries a real share while the 8 ms one is saturated');
  t.ok(heavy.cell > 0.3 * (heavy.cell + heavy.wlan), 'the 8 ms path keeps carrying');
  await C.call('bulk.stop');
});

// Needs root and network namespaces (runs in CI as root). The product's path measurement
// (services/paths/measure.ts + drivers/probe/udp.ts) against the link emulator: a cell with a
// cellular uplink shaped `lte` (40 ms RTT) and a WLAN uplink shaped `wlan` (8 ms), both to one
// network host that runs the simulator's UDP echo responder on an address behind both links. The
// probes of each path are sent from that uplink's address, and the uplink's source rule takes them
// out through it: the medians must land near each link's configured RTT (generous tolerance:
// the machine is shared and busy), and never the other link's.
import t from 'tap';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Topology, netnsUnavailable } from '../helpers/hosts.js';
import { profileShape } from '../../src/sim/links.js';
import { realtime } from '../../src/sim/realtime.js';
import type { PathMeasure } from '../../src/services/paths/measure.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const PROBE = path.resolve(here, '../../src/sim/probe.ts');
const CHILD = path.resolve(here, 'paths-measure-child.ts');
const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript') || (a.startsWith('--import=') && a.includes('tsx')));
const why = await netnsUnavailable();

t.test('path measurement: probe medians match the lte and wlan links (needs root, namespaces)', { skip: why === false ? false : why, timeout: 180_000 }, async (t) => {
  const topo = new Topology(`udpm${process.pid}`);
  t.teardown(() => topo.destroy());
  const cell = await topo.host('cell');
  const inet = await topo.host('net', { forward: true });
  const lte = profileShape('lte');
  const wlan = profileShape('wlan');
  await topo.link(cell, 'wwan0', inet, 'c0', { a: ['10.181.1.2/24'], b: ['10.181.1.1/24'], ...lte });
  await topo.link(cell, 'wlan0', inet, 'w0', { a: ['10.181.2.2/24'], b: ['10.181.2.1/24'], ...wlan });
  await inet.ip('addr', 'add', '10.181.9.1/32', 'dev', 'lo');
  // per-uplink source routing, as the routing keeper installs it on the box
  await cell.sourceRoute('10.181.1.2', 'wwan0', '10.181.1.1', 201);
  await cell.sourceRoute('10.181.2.2', 'wlan0', '10.181.2.1', 202);
  const echo = inet.spawn(...realtime([process.execPath, ...loader, PROBE, 'echo', '7']));
  await new Promise<void>((resolve, reject) => {
    echo.stdout!.once('data', () => resolve());
    echo.once('exit', (c) => reject(new Error(`echo exited ${c}`)));
  });
  // 200 ms interval (5/s, a test setting; the product's default is 1/s) for 12 s: ~60 samples per path
  const out = await cell.exec(...realtime([process.execPath, ...loader, CHILD, '200', '12000', '10.181.9.1', '7', 'cellular=10.181.1.2', 'wlan=10.181.2.2']));
  const res = JSON.parse(out.trim().split('\n').pop()!) as { figures: Record<string, PathMeasure>; counters: { sent: number; received: number; dropped: number } };
  for (const [name, shape] of [['cellular', lte], ['wlan', wlan]] as const) {
    const f = res.figures[name]!;
    const want = 2 * shape.delayMs!;
    t.comment(`${name}: configured RTT ${want} ms ±${2 * shape.jitterMs!}; measured median ${f.rttMs?.median} ms, p95 ${f.rttMs?.p95} ms, min ${f.rttMs?.min} ms, jitter ${f.jitterMs} ms, loss ${f.lossPct} % over ${f.samples} probes`);
    t.ok(f.samples >= 40, `${name}: probed continuously (${f.samples} samples)`);
    t.ok(f.received >= f.samples * 0.8, `${name}: most probes answered (${f.received}/${f.samples})`);
    const med = f.rttMs!.median;
    t.ok(Math.abs(med - want) <= Math.max(4, 0.25 * want), `${name}: median ${med} ms near the configured ${want} ms`);
    t.ok(f.rttMs!.min >= want - 2 * shape.jitterMs! - 0.5, `${name}: no RTT below the link's floor (the probe left through this uplink)`);
    t.ok(f.rttMs!.p95 >= med, `${name}: p95 ≥ median`);
    t.ok(f.jitterMs! > 0, `${name}: jitter seen`);
  }
  t.ok(res.figures.cellular!.rttMs!.median > res.figures.wlan!.rttMs!.median + 15, 'the cellular path is measured slower than the WLAN path');
});

// Needs root and network namespaces (runs in CI as root), nft and conntrack. Bad input for UDP
// steering (issue 18): one LAN device floods UDP, with more flows than its cap and at a high
// packet rate; another device's flow and the path probes must go on. Asserted on counts only
// (delivered packets, probes answered), never on times:
//
//   lan: 192.168.77.2 (the flooder: 200 flows, cap 40) and 192.168.77.3 (one flow at 50 pps)
//     ─ cell (the product's UDP steering, per-device flow cap, path meter probing both uplinks)
//     ═ wwan0 / wlan0 ═ net (the sink and the probes' echo responders)
import t from 'tap';
import { netnsUnavailable } from '../helpers/hosts.js';
import { parseTableCounters } from '../../src/drivers/nft/counters.js';
import type { PathMeasure } from '../../src/services/paths/measure.js';
import { start, steerWorld, stopChild, type Sink } from '../helpers/udp-steer.js';

const why = await netnsUnavailable();

t.test('a UDP flood from one device starves neither another device\'s flow nor the path probes (needs root)', { skip: why === false ? false : why, timeout: 180_000 }, async (t) => {
  const { topo, lan, cell, inet, cfg } = await steerWorld(`udpf${process.pid}`);
  t.teardown(() => topo.destroy());
  await lan.ip('addr', 'add', '192.168.77.3/24', 'dev', 'lan0');
  for (const port of ['7']) {
    const e = start(inet, ['echo', port]);
    t.teardown(() => stopChild(e.child));
    await e.line(0);
  }
  const c = start(cell, ['cell', cfg({ mode: 'active-standby' }, { perSourceFlows: 40, probe: { cellular: { address: '10.182.1.1', port: 7 }, wlan: { address: '10.182.2.1', port: 7 } }, probeMs: 200 })]);
  t.teardown(() => stopChild(c.child));
  await c.line(0);
  const measure = async (): Promise<Record<string, PathMeasure>> => {
    const n = c.lines.length;
    c.child.kill('SIGUSR2');
    return (await c.line(n)).measure as Record<string, PathMeasure>;
  };
  const sink = start(inet, ['sink', '7500', '2000']);
  t.teardown(() => stopChild(sink.child));
  await sink.line(0);
  await new Promise((r) => setTimeout(r, 1000)); // the probes have started
  const before = await measure();
  // the flood (200 flows at 500 pps each, 5 s) and, alongside, the other device's flow (50 pps, 5 s)
  const flood = start(lan, ['flows', '10.182.9.1', '7500', '200', '500', '5000', '192.168.77.2', '0']);
  const other = start(lan, ['flows', '10.182.9.1', '7500', '1', '50', '5000', '192.168.77.3', '1000']);
  const [fl, ot] = await Promise.all([flood.line(0), other.line(0)]);
  const after = await measure();
  const r = (await sink.line(1)) as unknown as Sink;
  const floodFlows = Object.keys(r.flows).filter((k) => Number(k) < 1000);
  const floodDelivered = floodFlows.reduce((n, k) => n + Object.values(r.flows[k]!).reduce((m, x) => m + x.n, 0), 0);
  const otherSent = Number(ot.sent);
  const otherDelivered = Object.values(r.flows['1000'] ?? {}).reduce((m, x) => m + x.n, 0);
  const per = parseTableCounters(await cell.exec('nft', ['-j', 'list', 'table', 'inet', 'duocell_udp'])).sets.capdrops4 ?? {};
  const probes = (['cellular', 'wlan'] as const).map((p) => ({ p, sent: (after[p]?.samples ?? 0) - (before[p]?.samples ?? 0), answered: (after[p]?.received ?? 0) - (before[p]?.received ?? 0) }));
  t.comment(`flood: sent ${fl.sent} on 200 flows, ${floodFlows.length} flows and ${floodDelivered} packets delivered, refused by the cap ${JSON.stringify(per)}; other device: sent ${otherSent}, delivered ${otherDelivered}; probes during the flood ${probes.map((x) => `${x.p} ${x.answered}/${x.sent}`).join(', ')}`);
  t.ok(floodFlows.length <= 40, `the flooder got no more than its cap of flows through (${floodFlows.length})`);
  t.ok((per['192.168.77.2'] ?? 0) > 0, 'its excess flows were refused and counted against it');
  t.equal(per['192.168.77.3'], undefined, 'nothing counted against the other device');
  t.ok(otherSent > 0 && otherDelivered >= 0.9 * otherSent, `the other device's flow kept delivering (${otherDelivered} of ${otherSent})`);
  for (const x of probes) {
    t.ok(x.sent >= 5, `${x.p}: the meter kept probing during the flood (${x.sent} probes)`);
    t.ok(x.answered >= 0.8 * x.sent, `${x.p}: and its probes were answered (${x.answered} of ${x.sent})`);
  }
});

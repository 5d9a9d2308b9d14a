// Runs inside the cell's namespace (paths-measure.test.ts): the product's PathMeter with the real
// UDP probe transport, probing each given path for DURATION_MS, then one JSON line of figures.
//   node paths-measure-child.ts INTERVAL_MS DURATION_MS TARGET PORT NAME=LOCAL_ADDR...
import { PathMeter } from '../../src/services/paths/measure.js';
import { udpProbeTransport } from '../../src/drivers/probe/udp.js';

const [interval, duration, target, port, ...paths] = process.argv.slice(2);
const m = new PathMeter({
  transport: udpProbeTransport,
  intervalMs: Number(interval),
  window: 1000,
  targets: Object.fromEntries(paths.map((p) => [p.split('=')[0]!, { address: target!, port: Number(port) }])),
});
for (const p of paths) {
  const [name, local] = p.split('=') as [string, string];
  m.update({ name, access: name === 'cellular' ? 'cellular' : 'wlan', interface: name, state: 'up', since: '', addresses: [local], table: 0, routing: 'installed', signal: { quality: 'unknown' } });
}
setTimeout(() => {
  const out = Object.fromEntries(paths.map((p) => [p.split('=')[0]!, m.get(p.split('=')[0]!)]));
  m.stop();
  process.stdout.write(JSON.stringify({ figures: out, counters: m.counters }) + '\n');
}, Number(duration));

// Runs inside the cell's namespace (paths-icmp.test.ts): the product's PathMeter with the real
// ICMP probe transport (ping sockets bound to each uplink's device and address), probing each
// path's gateway. Prints {"ready":true} once the paths are handed to the meter, then after
// DURATION_MS one JSON line: figures per path, the meter's and the ICMP transport's counters.
//   node paths-icmp-child.ts '{"intervalMs":100,"durationMs":12000,"forbid":["cellular"],
//     "paths":[{"name":"wlan","access":"wlan","interface":"wlan0","local":"10.0.0.2","gateway":"10.0.0.1","state":"up"}]}'
import { PathMeter } from '../../src/services/paths/measure.js';
import { icmpProbeCounters, icmpProbeTransport } from '../../src/drivers/probe/icmp.js';

interface Cfg {
  intervalMs: number;
  durationMs: number;
  /** Access types the policy forbids (as the paths wiring's allowed()). */
  forbid?: Array<'cellular' | 'wlan'>;
  paths: Array<{ name: string; access: 'cellular' | 'wlan'; interface: string; local: string; gateway: string; state: 'up' | 'down' }>;
}
const cfg = JSON.parse(process.argv[2]!) as Cfg;
const m = new PathMeter({
  transport: icmpProbeTransport,
  intervalMs: cfg.intervalMs,
  window: 1000,
  allowed: (p) => !(cfg.forbid ?? []).includes(p.access),
});
for (const p of cfg.paths) {
  const gw = p.gateway.includes(':') ? { gateway6: p.gateway } : { gateway4: p.gateway };
  m.update({ name: p.name, access: p.access, interface: p.interface, state: p.state, since: '', addresses: [p.local], ...gw, table: 0, routing: 'installed', signal: { quality: 'unknown' } });
}
process.stdout.write(JSON.stringify({ ready: true }) + '\n');
setTimeout(() => {
  const figures = Object.fromEntries(cfg.paths.map((p) => [p.name, m.get(p.name) ?? null]));
  m.stop();
  process.stdout.write(JSON.stringify({ figures, counters: m.counters, icmp: icmpProbeCounters }) + '\n');
}, cfg.durationMs);

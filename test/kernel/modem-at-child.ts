/**
 * Runs INSIDE the test's cell namespace (test/kernel/modem-at.test.ts): duocell's AT-only modem
 * path as `duocell run` wires it for `modem.control: "at"` — ModemManager with control 'at' (AT over the pty,
 * data session by AT, DHCP on usb0 by udhcpc) with the DataInterface over rtnetlink, and the
 * paths service fed by the manager. One JSON line per event with a wall-clock time (ms):
 *   { ev: 'state', state, reason, t }   { ev: 'path', type, state, addresses, routing, t }
 * Reads 'stop' on stdin: stops everything and exits.
 */
import { performance } from 'node:perf_hooks';
import { ModemManager } from '../../src/drivers/modem/manager.js';
import { DataInterface } from '../../src/drivers/modem/netif.js';
import { CharDeviceTransport } from '../../src/drivers/modem/transport.js';
import { openNetlinkStack } from '../../src/drivers/netlink/stack.js';
import { Rtnl } from '../../src/drivers/netlink/rtnetlink.js';
import { PathsService } from '../../src/services/paths/index.js';
import { cellularSource } from '../../src/wiring/paths.js';

const [at] = process.argv.slice(2) as [string];
const now = (): number => performance.timeOrigin + performance.now();
const out = (o: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify({ ...o, t: now() })}\n`);

const rtnl = Rtnl.open();
const netif = new DataInterface({ ifname: 'usb0', ops: rtnl, defaultMetric: 50, rawIp: false });
const m = new ModemManager({
  control: 'at',
  ports: [at],
  open: (p) => CharDeviceTransport.open(p),
  apn: 'internet',
  netInterface: 'usb0',
  netif,
  linkUp: async (ifname) => {
    const l = await rtnl.link(ifname);
    if (l === undefined) throw new Error(`no ${ifname}`);
    await rtnl.setLinkUp(l.index, true);
  },
  pollMs: 500,
  probeTimeoutMs: 600,
  backoffBaseMs: 200,
  backoffCapMs: 1000,
  connectTimeoutMs: 15000,
});
m.on('state', (c) => out({ ev: 'state', state: c.state, reason: c.reason }));
m.on('info', (i) => out({ ev: 'info', info: i }));
m.on('signal', (s) => out({ ev: 'signal', signal: s }));
const stack = await openNetlinkStack({ wlanInterfaces: [] });
const paths = new PathsService({ uplinks: [{ name: 'cellular', access: 'cellular', interface: 'usb0', table: 21 }], net: stack.rtnl, routing: stack.routing, cellular: cellularSource(m), sampleMs: 0 });
paths.on('event', (e) => out({ ev: 'path', type: e.type, state: e.path.state, addresses: e.path.addresses, routing: e.path.routing, reason: e.path.reason }));
await paths.start();
m.start();
out({ ev: 'ready' });
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d: string) => {
  if (d.includes('snapshot')) out({ ev: 'snapshot', snapshot: m.snapshot() });
  const pt = /^at (.*)$/m.exec(d);
  if (pt) void m.atCommand(pt[1]!, 3000).then((r) => out({ ev: 'at', lines: r.lines, final: r.final }), (e: Error) => out({ ev: 'at', error: e.message }));
  if (!d.includes('stop')) return;
  void (async () => {
    await m.stop();
    paths.stop();
    await stack.close();
    rtnl.close();
    out({ ev: 'stopped' });
    process.exit(0);
  })();
});

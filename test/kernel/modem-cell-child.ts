/**
 * Runs INSIDE the test's cell namespace (test/kernel/modem-wwan.test.ts): duocell's own modem
 * path as `duocell run` wires it — ModemManager with the DataInterface over rtnetlink, and the
 * paths service (rtnetlink + routing keeper) fed by the manager. Prints one JSON line per event
 * with a wall-clock time in ms (performance.timeOrigin + now) so the parent can time them:
 *   { ev: 'state', state, reason, t }   { ev: 'path', type, state, addresses, routing, t }
 * Arguments: QMI port, AT port (may be absent), poll period in ms (default 500).
 * Reads 'stop' on stdin: stops everything and exits.
 */
import { performance } from 'node:perf_hooks';
import { ModemManager, DataInterface } from '../../src/drivers/modem/index.js';
import { CharDeviceTransport } from '../../src/drivers/modem/transport.js';
import { openNetlinkStack } from '../../src/drivers/netlink/stack.js';
import { Rtnl } from '../../src/drivers/netlink/rtnetlink.js';
import { PathsService } from '../../src/services/paths/index.js';
import { cellularSource } from '../../src/wiring/paths.js';

const [qmi, at, pollArg] = process.argv.slice(2) as [string, string, string | undefined];
const now = (): number => performance.timeOrigin + performance.now();
const out = (o: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify({ ...o, t: now() })}\n`);

const rtnl = Rtnl.open();
const netif = new DataInterface({ ifname: 'wwan0', ops: rtnl, defaultMetric: 50 });
const m = new ModemManager({
  ports: [qmi, at],
  open: (p) => CharDeviceTransport.open(p),
  apn: 'internet',
  ipFamily: 'ipv4v6',
  netInterface: 'wwan0',
  netif,
  // a long poll (third argument) leaves indications and URCs as the only fast way to learn a loss
  pollMs: pollArg === undefined ? 500 : Number(pollArg),
  probeTimeoutMs: 600,
  backoffBaseMs: 200,
  backoffCapMs: 1000,
});
m.on('state', (c) => out({ ev: 'state', state: c.state, reason: c.reason }));
m.on('info', (i) => out({ ev: 'info', info: i }));
const stack = await openNetlinkStack({ wlanInterfaces: [] });
const paths = new PathsService({ uplinks: [{ name: 'cellular', access: 'cellular', interface: 'wwan0', table: 21 }], net: stack.rtnl, routing: stack.routing, cellular: cellularSource(m), sampleMs: 0 });
paths.on('event', (e) => out({ ev: 'path', type: e.type, state: e.path.state, addresses: e.path.addresses, routing: e.path.routing, reason: e.path.reason }));
await paths.start();
m.start();
out({ ev: 'ready' });
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d: string) => {
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

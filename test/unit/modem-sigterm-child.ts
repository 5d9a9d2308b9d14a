/**
 * Child of modem-degrade.test.ts: a ModemManager on the simulator's ports (default opener: the
 * cdc-wdm path through CharDeviceTransport). On SIGTERM it stops the manager and returns; it
 * never calls process.exit, so the process ends only if nothing (no pending read) is left.
 */
import { ModemManager } from '../../src/drivers/modem/manager.js';

const [qmi, at] = process.argv.slice(2) as [string, string];
const m = new ModemManager({ ports: [qmi, at], apn: 'internet', ipFamily: 'ipv4v6', pollMs: 300, probeTimeoutMs: 600 });
m.on('state', (c) => {
  if (c.state === 'connected') process.stdout.write('connected\n');
});
process.once('SIGTERM', () => {
  void m.stop().then(() => process.stdout.write('stopped\n'));
});
m.start();

/**
 * Child of modem-absent-log.test.ts: a ModemManager whose only port does not exist, with a
 * back-off of a few milliseconds, run through `argv[2]` failed probes; its JSON log lines go to
 * stdout for the parent to count.
 */
import { ModemManager } from '../../src/drivers/modem/manager.js';

const want = Number(process.argv[2]);
const m = new ModemManager({ ports: ['/nonexistent/cdc-wdm9'], apn: 'internet', backoffBaseMs: 1, backoffCapMs: 2, probeTimeoutMs: 50 });
let failed = 0;
m.on('state', (c) => {
  if (c.state === 'absent' && ++failed === want) void m.stop();
});
m.start();

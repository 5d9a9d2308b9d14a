import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store } from '../../src/store/index.js';
import { ProxyEngine } from '../../src/services/proxy/index.js';
import { buildWebDeps } from '../../src/wiring/web.js';
import { signalView } from '../../src/wiring/paths.js';
import { modemFor } from '../../src/wiring/modem.js';
import { validateBoard } from '../../src/core/board.js';
import type { ModemView } from '../../src/web/deps.js';
import { PathSchema } from '../../src/web/schemas.js';
import { socketIo } from '../../src/drivers/sockets/io.js';

/** API regressions from issue 14: RSRP labelled as RSSI, /health ok without a modem, control "at". */

const cellBoard = (modem: Record<string, unknown>) =>
  validateBoard({ name: 't', preset: 'cell', uplinks: [{ name: 'cellular', access: 'cellular', interface: 'wwan0' }], lan: { interfaces: [] }, web: { listen: [{ host: '127.0.0.1', port: 0 }] }, listeners: [], accessNetworks: [], modem });

t.test('/paths signal: RSRP is rsrpDbm, rssiDbm is only an RSSI', async (t) => {
  const cell = signalView('cellular', { quality: 'known', dbm: -95, rssiDbm: -65, rsrpDbm: -95, rsrqDb: -9, sinrDb: 12 });
  t.same(cell, { rssiDbm: -65, rsrpDbm: -95, rsrq: -9, sinr: 12, bars: 3 });
  const onlyRsrp = signalView('cellular', { quality: 'known', dbm: -101, rsrpDbm: -101 });
  t.equal(onlyRsrp.rssiDbm, undefined, 'no RSSI from the modem: no rssiDbm (it used to carry the RSRP)');
  t.equal(onlyRsrp.rsrpDbm, -101);
  t.same(signalView('wlan', { quality: 'known', dbm: -58 }), { rssiDbm: -58, bars: 4 }, 'WLAN signal stays rssiDbm');
  const props: Record<string, unknown> = PathSchema.properties.signal.properties;
  t.ok('rsrpDbm' in props && !('rsrp' in props), 'the API schema names it rsrpDbm');
});

t.test('/health: a cell whose modem is absent is degraded', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-health-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const store = await Store.open({ dir, scrypt: { N: 1024, r: 8, p: 1 } });
  t.teardown(() => store.close());
  const board = cellBoard({ model: 'EC25', control: 'qmi' });
  let view: ModemView = { present: false, state: 'absent', sim: 'unknown' };
  const deps = buildWebDeps({ board, engine: new ProxyEngine({ io: socketIo }), store, startedAt: new Date(), version: 't', modem: () => view });
  const h1 = await deps.health();
  t.equal(h1.status, 'degraded');
  t.equal(h1.checks.modem, false);
  view = { present: true, state: 'connected', sim: 'ready' };
  t.equal((await deps.health()).status, 'ok', 'ok once the modem is there');
  const noModemBoard = validateBoard({ name: 't', preset: 'cell', uplinks: [{ name: 'wlan', access: 'wlan', interface: 'wlan0' }], lan: { interfaces: [] }, web: { listen: [{ host: '127.0.0.1', port: 0 }] }, listeners: [], accessNetworks: [] });
  const d2 = buildWebDeps({ board: noModemBoard, engine: new ProxyEngine({ io: socketIo }), store, startedAt: new Date(), version: 't' });
  t.equal((await d2.health()).status, 'ok', 'a board without a modem is not degraded by it');
});

t.test('modem.control "at" builds the AT-only manager (issue 14: no longer refused)', async (t) => {
  const at = modemFor(cellBoard({ model: 'X', control: 'at', ports: { at: { path: '/dev/ttyUSB-nonexistent' }, net: { name: 'usb0' } } }), {});
  t.equal((at as { control?: string } | undefined)?.control, 'at', 'a ModemManager with the AT control channel (AT port, usb0 by DHCP)');
  const m = modemFor(cellBoard({ model: 'EC25', control: 'qmi', ports: { qmi: { path: '/dev/cdc-wdm-nonexistent' } } }), {});
  t.ok(m !== undefined, 'control "qmi" still builds a manager');
});

import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { managerOptionsFromBoard, resolveModemPorts } from '../../src/drivers/modem/board.js';
import type { ModemProfile } from '../../src/core/board.js';

const EC25: ModemProfile = {
  model: 'Quectel EC25',
  control: 'qmi',
  usb: [{ vendor: '2c7c', product: '0125' }],
  ports: { at: { usbInterface: 2, path: '/dev/ttyUSB2' }, qmi: { usbInterface: 4, path: '/dev/cdc-wdm0' }, net: { usbInterface: 4, name: 'wwan0' } },
  apn: { name: 'internet', ipType: 'ipv4v6', auth: 'none' },
};

function fakeSysfs(t: { teardown(f: () => void): void }, ttys: string[], wdm: string, net: string): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tmodem-sys-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const dev = path.join(root, 'bus/usb/devices/1-1.3');
  fs.mkdirSync(dev, { recursive: true });
  fs.writeFileSync(path.join(dev, 'idVendor'), '2c7c\n');
  fs.writeFileSync(path.join(dev, 'idProduct'), '0125\n');
  ttys.forEach((tty, i) => fs.mkdirSync(path.join(dev, `1-1.3:1.${i}`, tty), { recursive: true }));
  fs.mkdirSync(path.join(dev, '1-1.3:1.4/usbmisc', wdm), { recursive: true });
  fs.mkdirSync(path.join(dev, '1-1.3:1.4/net', net), { recursive: true });
  // an unrelated USB device
  fs.mkdirSync(path.join(root, 'bus/usb/devices/1-1.2'), { recursive: true });
  fs.writeFileSync(path.join(root, 'bus/usb/devices/1-1.2/idVendor'), '0bda\n');
  return root;
}

t.test('ports found by USB interface number, after a re-plug renamed them', async (t) => {
  const root = fakeSysfs(t, ['ttyUSB4', 'ttyUSB5', 'ttyUSB6', 'ttyUSB7'], 'cdc-wdm1', 'wwan1');
  t.same(await resolveModemPorts(EC25, root), { at: '/dev/ttyUSB6', qmi: '/dev/cdc-wdm1', net: 'wwan1' });
  const o = managerOptionsFromBoard(EC25, { sysfsRoot: root, pin: '1234' });
  t.equal(typeof o.ports, 'function', 'resolved again before every probe');
  t.same(await (o.ports as () => Promise<string[]>)(), ['/dev/cdc-wdm1', '/dev/ttyUSB6']);
  t.equal(o.apn, 'internet');
  t.equal(o.ipFamily, 'ipv4v6');
  t.equal(o.pin, '1234');
});

t.test('modem absent from sysfs: fixed paths as the fall-back; simulated board uses links', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tmodem-sys-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  t.same(await resolveModemPorts(EC25, root), { at: '/dev/ttyUSB2', qmi: '/dev/cdc-wdm0', net: 'wwan0' });
  const sim = managerOptionsFromBoard({ model: 'sim', simulated: true, apn: { name: 'internet' } }, { links: { at: '/run/x/ttyUSB2', qmi: '/run/x/cdc-wdm0' } });
  t.same(sim.ports, ['/run/x/cdc-wdm0', '/run/x/ttyUSB2']);
  t.equal(sim.netInterface, 'wwan0');
});

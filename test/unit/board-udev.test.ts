import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadBoard } from '../../src/core/board.js';
import { classifyPort, discoverModemPorts, discoverUsbModem, parseUdevProperties, udevRules } from '../../src/drivers/udev/index.js';

const ec25 = loadBoard('rpi4-ec25').modem!;

/** A fake /sys with a Quectel EC25 at `busPath` whose ttys start at ttyUSB`first`. */
function fakeSys(t: { teardown(f: () => void): void }, busPath: string, first: number, vendor = '2c7c', product = '0125'): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-sys-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const base = path.join(root, 'bus/usb/devices');
  const mk = (p: string, content?: string): void => {
    const f = path.join(base, p);
    if (content === undefined) fs.mkdirSync(f, { recursive: true });
    else {
      fs.mkdirSync(path.dirname(f), { recursive: true });
      fs.writeFileSync(f, content + '\n');
    }
  };
  // An unrelated hub and keyboard first.
  mk('usb1/idVendor', '1d6b');
  mk('usb1/idProduct', '0002');
  mk('1-1.1/idVendor', '046d');
  mk('1-1.1/idProduct', 'c31c');
  mk(`${busPath}/idVendor`, vendor);
  mk(`${busPath}/idProduct`, product);
  for (let i = 0; i < 4; i++) {
    mk(`${busPath}:1.${i}/bInterfaceNumber`, `0${i}`);
    mk(`${busPath}:1.${i}/ttyUSB${first + i}`);
  }
  mk(`${busPath}:1.4/bInterfaceNumber`, '04');
  mk(`${busPath}:1.4/usbmisc/cdc-wdm0`);
  mk(`${busPath}:1.4/net/wwan0`);
  return root;
}

t.test('EC25 ports found by vendor/product id and interface number', async (t) => {
  const sys = fakeSys(t, '1-1.3', 0);
  t.same(discoverUsbModem(ec25, { sysRoot: sys }), {
    via: 'usb',
    vendor: '2c7c',
    product: '0125',
    usbPath: '1-1.3',
    at: '/dev/ttyUSB2',
    qmi: '/dev/cdc-wdm0',
    net: 'wwan0',
  });
});

t.test('a re-plugged modem (other port, other tty numbers) is found again', async (t) => {
  const sys = fakeSys(t, '2-1', 4);
  const p = discoverModemPorts(ec25, { sysRoot: sys, devRoot: sys });
  t.equal(p?.usbPath, '2-1');
  t.equal(p?.at, '/dev/ttyUSB6', 'AT is interface 2 whatever its number');
  t.equal(p?.qmi, '/dev/cdc-wdm0');
});

t.test('another modem is not ours; no modem at all is undefined (READY goes on without it)', async (t) => {
  const sys = fakeSys(t, '1-1.3', 0, '1199', '9071');
  t.equal(discoverUsbModem(ec25, { sysRoot: sys }), undefined);
  t.equal(discoverModemPorts(ec25, { sysRoot: sys, devRoot: sys }), undefined);
  t.equal(discoverModemPorts(ec25, { sysRoot: '/nonexistent', devRoot: '/nonexistent' }), undefined);
});

t.test('fixed paths are the fallback when the ids do not match', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-dev-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  fs.mkdirSync(path.join(root, 'dev'));
  fs.writeFileSync(path.join(root, 'dev/ttyUSB2'), '');
  const p = discoverModemPorts(ec25, { sysRoot: root, devRoot: root });
  t.same(p, { via: 'fixed', at: '/dev/ttyUSB2' });
});

t.test('udevadm output parsing and port classification', async (t) => {
  // `udevadm info --query=property --name=/dev/ttyUSB2` of an EC25 (abridged).
  const tty = parseUdevProperties(
    [
      'DEVPATH=/devices/platform/scb/fd500000.pcie/pci0000:00/0000:00:00.0/0000:01:00.0/usb1/1-1/1-1.3/1-1.3:1.2/ttyUSB2/tty/ttyUSB2',
      'DEVNAME=/dev/ttyUSB2',
      'SUBSYSTEM=tty',
      'ID_VENDOR_ID=2c7c',
      'ID_MODEL_ID=0125',
      'ID_USB_INTERFACE_NUM=02',
      'ID_USB_DRIVER=option',
    ].join('\n'),
  );
  t.equal(tty.DEVNAME, '/dev/ttyUSB2');
  t.equal(classifyPort(ec25, tty), 'at');
  // The plain `udevadm info` form: P:/N:/E: prefixes.
  const wdm = parseUdevProperties('P: /devices/x/1-1.3:1.4/usbmisc/cdc-wdm0\nN: cdc-wdm0\nE: SUBSYSTEM=usbmisc\nE: ID_VENDOR_ID=2c7c\nE: ID_MODEL_ID=0125\nE: ID_USB_INTERFACE_NUM=04\n');
  t.equal(wdm.SUBSYSTEM, 'usbmisc');
  t.equal(wdm.P, undefined, 'P: lines are not properties');
  t.equal(classifyPort(ec25, wdm), 'qmi');
  t.equal(classifyPort(ec25, { ...tty, ID_USB_INTERFACE_NUM: '00' }), undefined, 'the diag port is not ours');
  t.equal(classifyPort(ec25, { ...tty, ID_VENDOR_ID: '1199' }), undefined);
});

t.test('udev rules name the ports and open them to dialout', async (t) => {
  const r = udevRules(ec25);
  t.match(r, /SUBSYSTEM=="tty", ATTRS\{idVendor\}=="2c7c", ATTRS\{idProduct\}=="0125", ENV\{ID_USB_INTERFACE_NUM\}=="02", GROUP="dialout", MODE="0660", SYMLINK\+="duocell\/at"/);
  t.match(r, /SUBSYSTEM=="usbmisc", KERNEL=="cdc-wdm\*", .*GROUP="dialout".*SYMLINK\+="duocell\/qmi"/);
  t.match(r, /ID_MM_DEVICE_IGNORE/);
  t.equal(udevRules(undefined).split('\n').filter((l) => l && !l.startsWith('#')).length, 0, 'no modem, no rules');
});

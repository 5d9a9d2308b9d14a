import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { ModemProfile, PortSpec } from '../../core/board.js';
import { DuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';

/**
 * Finding the modem's ports by what the modem is, not by the order it was enumerated in.
 *
 *   /sys/bus/usb/devices/
 *     1-1.3/                     idVendor=2c7c idProduct=0125   ← the modem (matched by id)
 *     1-1.3:1.2/                 bInterfaceNumber=02
 *       ttyUSB2/                 ← AT port  (option driver: tty as a direct child)
 *     1-1.3:1.4/                 bInterfaceNumber=04
 *       usbmisc/cdc-wdm0/        ← QMI port (qmi_wwan)
 *       net/wwan0/               ← its network interface
 *     (cdc-acm modems: 1-1.3:1.N/tty/ttyACM0)
 *
 * A re-plugged modem comes back under another bus path and maybe other tty numbers; the
 * board profile names ports by USB interface number (PortSpec.usbInterface), so the same
 * walk finds them again. The fixed `path`/`name` of a PortSpec is the fallback when the
 * modem is not on USB or its ids are unknown. The same facts are available from udev
 * (`udevadm info`: ID_VENDOR_ID, ID_MODEL_ID, ID_USB_INTERFACE_NUM); udevRules() writes
 * rules that give the ports stable names (/dev/duocell/at, /dev/duocell/qmi) and the
 * dialout group.
 */

const log = logger('duocell:udev');

export interface ModemPorts {
  /** How the ports were found. */
  via: 'usb' | 'fixed';
  vendor?: string;
  product?: string;
  /** USB bus path (e.g. 1-1.3), changes on re-plug. */
  usbPath?: string;
  at?: string;
  qmi?: string;
  net?: string;
}

export interface DiscoverOptions {
  /** Root of sysfs (tests build a fake tree). */
  sysRoot?: string;
  /** Root under which fixed /dev paths are checked. */
  devRoot?: string;
}

function read(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function list(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** The tty, usbmisc and net children of one USB interface directory. */
function interfaceChildren(dir: string): { tty?: string; usbmisc?: string; net?: string } {
  const out: { tty?: string; usbmisc?: string; net?: string } = {};
  for (const e of list(dir)) if (/^tty(USB|ACM)\d+$/.test(e)) out.tty = e;
  for (const e of list(path.join(dir, 'tty'))) if (/^tty(USB|ACM)\d+$/.test(e)) out.tty = e;
  for (const e of list(path.join(dir, 'usbmisc'))) if (/^cdc-wdm\d+$/.test(e)) out.usbmisc = e;
  const nets = list(path.join(dir, 'net'));
  if (nets.length > 0) out.net = nets.sort()[0];
  return out;
}

/** Find the modem of `modem` among the USB devices; undefined when it is not plugged in. */
export function discoverUsbModem(modem: ModemProfile, o: DiscoverOptions = {}): ModemPorts | undefined {
  const sysRoot = o.sysRoot ?? '/sys';
  const base = path.join(sysRoot, 'bus/usb/devices');
  const ids = (modem.usb ?? []).map((u) => `${u.vendor.toLowerCase()}:${u.product.toLowerCase()}`);
  if (ids.length === 0) return undefined;
  const entries = list(base);
  for (const dev of entries.filter((e) => !e.includes(':')).sort()) {
    const vendor = read(path.join(base, dev, 'idVendor'))?.toLowerCase();
    const product = read(path.join(base, dev, 'idProduct'))?.toLowerCase();
    if (vendor === undefined || product === undefined || !ids.includes(`${vendor}:${product}`)) continue;
    const byNum = new Map<number, ReturnType<typeof interfaceChildren>>();
    for (const intf of entries.filter((e) => e.startsWith(`${dev}:`))) {
      const num = Number.parseInt(read(path.join(base, intf, 'bInterfaceNumber')) ?? '', 16);
      if (Number.isInteger(num)) byNum.set(num, interfaceChildren(path.join(base, intf)));
    }
    const pick = (spec: PortSpec | undefined, kind: 'tty' | 'usbmisc' | 'net'): string | undefined => {
      if (spec?.usbInterface === undefined) return undefined;
      const v = byNum.get(spec.usbInterface)?.[kind];
      return v === undefined ? undefined : kind === 'net' ? v : `/dev/${v}`;
    };
    const found: ModemPorts = { via: 'usb', vendor, product, usbPath: dev };
    const at = pick(modem.ports?.at, 'tty');
    const qmi = pick(modem.ports?.qmi, 'usbmisc');
    const net = pick(modem.ports?.net, 'net');
    if (at !== undefined) found.at = at;
    if (qmi !== undefined) found.qmi = qmi;
    if (net !== undefined) found.net = net;
    log.debug({ found }, 'modem found on USB');
    return found;
  }
  return undefined;
}

/**
 * The modem's ports: by USB ids first, else the profile's fixed paths that exist.
 * Undefined when no port is there at all (modem pulled): the caller keeps running without
 * the cellular path and tries again later.
 */
export function discoverModemPorts(modem: ModemProfile, o: DiscoverOptions = {}): ModemPorts | undefined {
  const usb = discoverUsbModem(modem, o);
  if (usb !== undefined) return usb;
  const devRoot = o.devRoot ?? '/';
  const sysRoot = o.sysRoot ?? '/sys';
  const exists = (p: string | undefined): p is string => p !== undefined && fs.existsSync(path.join(devRoot, p));
  const fixed: ModemPorts = { via: 'fixed' };
  if (exists(modem.ports?.at?.path)) fixed.at = modem.ports.at.path;
  if (exists(modem.ports?.qmi?.path)) fixed.qmi = modem.ports.qmi.path;
  const net = modem.ports?.net?.name;
  if (net !== undefined && fs.existsSync(path.join(sysRoot, 'class/net', net))) fixed.net = net;
  return fixed.at !== undefined || fixed.qmi !== undefined ? fixed : undefined;
}

/** Parse `udevadm info --query=property` (KEY=value lines) or `udevadm info` (E: KEY=value). */
export function parseUdevProperties(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.startsWith('E: ') ? raw.slice(3) : raw;
    const eq = line.indexOf('=');
    if (eq <= 0 || /^[A-Z]: /.test(line)) continue;
    const k = line.slice(0, eq).trim();
    if (/^[A-Z0-9_.]+$/.test(k)) out[k] = line.slice(eq + 1).trim();
  }
  return out;
}

/** udev's properties of a device node, from `udevadm info` (the process needs no privilege). */
export function udevProperties(devNode: string, udevadm = 'udevadm'): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    execFile(udevadm, ['info', '--query=property', `--name=${devNode}`], { timeout: 5000 }, (err, stdout) => {
      if (err !== null) {
        reject(new DuocellError('DC_UDEV_QUERY', `udevadm info ${devNode}: ${err.message}`, { cause: err }));
        return;
      }
      resolve(parseUdevProperties(stdout));
    });
  });
}

/** Does this device (its udev properties) belong to the profile's modem, and which port is it? */
export function classifyPort(modem: ModemProfile, props: Record<string, string>): 'at' | 'qmi' | 'net' | undefined {
  const v = props.ID_VENDOR_ID?.toLowerCase();
  const p = props.ID_MODEL_ID?.toLowerCase();
  if (!(modem.usb ?? []).some((u) => u.vendor.toLowerCase() === v && u.product.toLowerCase() === p)) return undefined;
  const num = Number.parseInt(props.ID_USB_INTERFACE_NUM ?? '', 16);
  const sub = props.SUBSYSTEM;
  for (const kind of ['at', 'qmi', 'net'] as const) {
    if (modem.ports?.[kind]?.usbInterface !== num) continue;
    if (kind === 'at' && sub === 'tty') return kind;
    if (kind === 'qmi' && sub === 'usbmisc') return kind;
    if (kind === 'net' && sub === 'net') return kind;
  }
  return undefined;
}

/**
 * udev rules for the profile's modem: stable names /dev/duocell/at and /dev/duocell/qmi,
 * group dialout so the unprivileged service can open them (cdc-wdm is root-only by default).
 */
export function udevRules(modem: ModemProfile | undefined): string {
  const lines = ['# Written from the board profile by the duocell image build. Do not edit.'];
  for (const u of modem?.usb ?? []) {
    const m = `ATTRS{idVendor}=="${u.vendor.toLowerCase()}", ATTRS{idProduct}=="${u.product.toLowerCase()}"`;
    const at = modem?.ports?.at?.usbInterface;
    const qmi = modem?.ports?.qmi?.usbInterface;
    if (at !== undefined) {
      lines.push(`SUBSYSTEM=="tty", ${m}, ENV{ID_USB_INTERFACE_NUM}=="${at.toString(16).padStart(2, '0')}", GROUP="dialout", MODE="0660", SYMLINK+="duocell/at"`);
    }
    if (qmi !== undefined) {
      lines.push(`SUBSYSTEM=="usbmisc", KERNEL=="cdc-wdm*", ${m}, GROUP="dialout", MODE="0660", SYMLINK+="duocell/qmi"`);
    }
    // ModemManager, if installed, must leave our modem alone.
    lines.push(`ACTION=="add|change", ${m}, ENV{ID_MM_DEVICE_IGNORE}="1"`);
  }
  return lines.join('\n') + '\n';
}

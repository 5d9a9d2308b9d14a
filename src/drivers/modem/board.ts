import fs from 'node:fs/promises';
import path from 'node:path';
import type { ModemProfile, PortSpec } from '../../core/board.js';
import type { IpFamilyChoice, ModemManagerOptions } from './manager.js';

/**
 * From the board profile's `modem` section to the manager's options, finding ports by USB
 * interface number in sysfs (so a re-plugged modem that came back as ttyUSB6/cdc-wdm1 is still
 * found), with the fixed paths as the fall-back:
 *
 *   /sys/bus/usb/devices/<dev>/idVendor,idProduct  match one of profile.usb
 *   /sys/bus/usb/devices/<dev>/<dev>:1.<iface>/ttyUSBn | tty/ttyACMn   → /dev/ttyUSBn (AT)
 *   /sys/bus/usb/devices/<dev>/<dev>:1.<iface>/usbmisc/cdc-wdmN        → /dev/cdc-wdmN (QMI)
 *   /sys/bus/usb/devices/<dev>/<dev>:1.<iface>/net/<ifname>            → wwan0 (data)
 */

export interface ResolvedPorts {
  at?: string;
  qmi?: string;
  net?: string;
}

async function entries(dir: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch {
    return [];
  }
}

async function read(file: string): Promise<string | undefined> {
  try {
    return (await fs.readFile(file, 'utf8')).trim().toLowerCase();
  } catch {
    return undefined;
  }
}

async function findIn(ifdir: string, kind: 'tty' | 'qmi' | 'net'): Promise<string | undefined> {
  if (kind === 'tty') {
    const direct = (await entries(ifdir)).find((e) => /^tty(USB|ACM)\d+$/.test(e));
    if (direct) return `/dev/${direct}`;
    const sub = (await entries(path.join(ifdir, 'tty'))).find((e) => /^tty(USB|ACM)\d+$/.test(e));
    return sub ? `/dev/${sub}` : undefined;
  }
  if (kind === 'qmi') {
    const w = (await entries(path.join(ifdir, 'usbmisc'))).find((e) => /^cdc-wdm\d+$/.test(e));
    return w ? `/dev/${w}` : undefined;
  }
  return (await entries(path.join(ifdir, 'net')))[0];
}

export async function resolveModemPorts(m: ModemProfile, sysfsRoot = '/sys'): Promise<ResolvedPorts> {
  const out: ResolvedPorts = {};
  const want = m.usb ?? [];
  const base = path.join(sysfsRoot, 'bus/usb/devices');
  if (want.length > 0) {
    for (const dev of await entries(base)) {
      if (dev.includes(':')) continue;
      const vid = await read(path.join(base, dev, 'idVendor'));
      const pid = await read(path.join(base, dev, 'idProduct'));
      if (!want.some((u) => u.vendor.toLowerCase() === vid && u.product.toLowerCase() === pid)) continue;
      const at = async (spec: PortSpec | undefined, kind: 'tty' | 'qmi' | 'net'): Promise<string | undefined> =>
        spec?.usbInterface === undefined ? undefined : findIn(path.join(base, dev, `${dev}:1.${spec.usbInterface}`), kind);
      out.at = await at(m.ports?.at, 'tty');
      out.qmi = await at(m.ports?.qmi, 'qmi');
      out.net = await at(m.ports?.net, 'net');
      break;
    }
  }
  out.at ??= m.ports?.at?.path;
  out.qmi ??= m.ports?.qmi?.path;
  out.net ??= m.ports?.net?.name;
  for (const k of ['at', 'qmi', 'net'] as const) if (out[k] === undefined) delete out[k];
  return out;
}

export interface BoardModemExtras {
  readonly pin?: string;
  readonly username?: string;
  readonly password?: string;
  readonly sysfsRoot?: string;
  /** The simulated board: the simulator's pty links instead of sysfs. */
  readonly links?: { readonly at: string; readonly qmi: string; readonly net?: string };
}

export function managerOptionsFromBoard(m: ModemProfile, x: BoardModemExtras = {}): ModemManagerOptions {
  const ipFamily: IpFamilyChoice = m.apn?.ipType ?? 'ipv4v6';
  const ports = x.links
    ? [x.links.qmi, x.links.at]
    : async (): Promise<string[]> => {
        const r = await resolveModemPorts(m, x.sysfsRoot);
        return [r.qmi, r.at].filter((p): p is string => p !== undefined);
      };
  const net = x.links?.net ?? m.ports?.net?.name ?? (m.simulated ? 'wwan0' : undefined);
  return {
    ports,
    apn: m.apn?.name ?? '',
    ipFamily,
    ...(net ? { netInterface: net } : {}),
    ...(x.pin ? { pin: x.pin } : {}),
    ...(x.username ? { username: x.username, password: x.password ?? '' } : {}),
  };
}

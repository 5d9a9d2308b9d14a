import fs from 'node:fs';
import os from 'node:os';
import type { UplinkProfile } from '../../core/board.js';

/**
 * Uplink state read from the kernel's own files (/sys/class/net): up/down, addresses, byte
 * counters. What the web page shows until the paths service (rtnetlink + radios) feeds it.
 */
export interface LitePath {
  name: string;
  access: 'cellular' | 'wlan';
  interface: string;
  state: 'up' | 'down';
  addresses: string[];
  bytesTx: number;
  bytesRx: number;
}

function readNum(file: string): number {
  try {
    return Number(fs.readFileSync(file, 'utf8').trim()) || 0;
  } catch {
    return 0;
  }
}

export function readUplinks(uplinks: readonly UplinkProfile[]): LitePath[] {
  const ifs = os.networkInterfaces();
  return uplinks.map((u) => {
    const base = `/sys/class/net/${u.interface}`;
    let oper = 'down';
    try {
      oper = fs.readFileSync(`${base}/operstate`, 'utf8').trim();
    } catch {
      /* absent */
    }
    const flags = readNum(`${base}/flags`);
    const up = oper === 'up' || (oper === 'unknown' && (flags & 1) === 1);
    return {
      name: u.name,
      access: u.access,
      interface: u.interface,
      state: up ? 'up' : 'down',
      addresses: (ifs[u.interface] ?? []).filter((i) => !i.address.startsWith('fe80')).map((i) => i.address),
      bytesTx: readNum(`${base}/statistics/tx_bytes`),
      bytesRx: readNum(`${base}/statistics/rx_bytes`),
    };
  });
}

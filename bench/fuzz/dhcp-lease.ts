import { pathToFileURL } from 'node:url';
import { DuocellError } from '../../src/core/errors.js';
import { maskToPrefix, parseLeaseLine } from '../../src/drivers/modem/dhcp-lease.js';
import { checkPassthrough } from '../../src/drivers/modem/at-passthrough.js';
import { dataActive } from '../../src/drivers/modem/at-data.js';

/**
 * Fuzz the pure pieces of the AT-only data path: the DHCP lease-line parser (what udhcpc's
 * script prints), the netmask reader, the pass-through checker and the data-session query
 * reader. Real lines, mutated (byte flips, field drops, splices) and noise, ~2 % of 10,000
 * characters. Each must return or throw a DuocellError with a listed code; a lease value has a
 * valid address, prefix 1..32 and finite numbers. Anything else is a bug (thrown).
 */

const SEEDS = [
  'duocell-dhcp|bound|10.21.0.2|255.255.255.0|10.21.0.1|10.21.0.1|1500|3600|usb0',
  'duocell-dhcp|renew|192.168.225.33|255.255.255.0|192.168.225.1|192.168.225.1 8.8.8.8|1430|7200|usb0',
  'duocell-dhcp|deconfig||||||usb0',
  'duocell-dhcp|leasefail||||||usb0',
  'duocell-dhcp|nak||||||usb0',
  'udhcpc: started, v1.35.0',
  'udhcpc: broadcasting discover',
];
const AT = ['AT+CSQ', 'ATI', 'AT+CFUN=0', 'AT+CPIN="1234"', 'AT+CGACT?', 'AT+QENG="servingcell"', 'ATE1', 'AT+CEREG=0', 'AT+COPS?'];
const QUERIES = ['+QNETDEVCTL: 1,1,1,1', '+CGACT: 1,1', '+CGACT: 2,0', '+QNETDEVCTL: 0,1,1,0'];

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

function mutate(s: string, r: () => number): string {
  const k = Math.floor(r() * 6);
  const b = [...s];
  if (k === 0 && b.length) b[Math.floor(r() * b.length)] = String.fromCharCode(Math.floor(r() * 256));
  else if (k === 1) return s.split('|').filter(() => r() > 0.2).join('|');
  else if (k === 2) return s + '|' + s;
  else if (k === 3) return s.replace(/\d+/g, () => String(Math.floor(r() * 1e6)));
  else if (k === 4) return Array.from({ length: Math.floor(r() * 40) }, () => String.fromCharCode(Math.floor(r() * 128))).join('');
  else if (k === 5) return s.slice(0, Math.floor(r() * s.length));
  return b.join('');
}

const IPV4 = /^(\d{1,3}\.){3}\d{1,3}$/;

export async function fuzz(iterations: number, seed = 1): Promise<{ iterations: number; counts: Record<string, number> }> {
  const r = rng(seed);
  const counts: Record<string, number> = {};
  const inc = (k: string): void => void (counts[k] = (counts[k] ?? 0) + 1);
  for (let i = 0; i < iterations; i++) {
    const long = r() < 0.02;
    const base = SEEDS[Math.floor(r() * SEEDS.length)]!;
    const line = long ? `duocell-dhcp|bound|${'9'.repeat(10_000)}` : r() < 0.15 ? base : mutate(base, r);
    if (long) inc('long-line');
    try {
      const v = parseLeaseLine(line);
      if (v === undefined) inc('ignored');
      else if (v.event === 'bound' || v.event === 'renew') {
        const l = v.lease;
        if (!IPV4.test(l.address) || !(l.prefixLength >= 1 && l.prefixLength <= 32)) throw new Error(`bad lease value ${JSON.stringify(l)}`);
        for (const n of [l.mtu, l.leaseSeconds]) if (n !== undefined && !Number.isFinite(n)) throw new Error('non-finite number');
        inc('ok:lease');
      } else inc(`ok:${v.event}`);
    } catch (e) {
      if (!(e instanceof DuocellError) || e.code !== 'DC_MODEM_DHCP') throw e;
      inc('DC_MODEM_DHCP');
    }
    const m = maskToPrefix(mutate('255.255.255.0', r));
    if (m !== undefined && !(m >= 0 && m <= 32)) throw new Error(`mask prefix ${m}`);
    const cmd = r() < 0.02 ? `AT+${'X'.repeat(10_000)}` : mutate(AT[Math.floor(r() * AT.length)]!, r);
    try {
      checkPassthrough(cmd);
      inc('ok:passthrough');
    } catch (e) {
      if (!(e instanceof DuocellError) || e.code !== 'DC_MODEM_AT_REFUSED') throw e;
      inc('DC_MODEM_AT_REFUSED');
    }
    const q = mutate(QUERIES[Math.floor(r() * QUERIES.length)]!, r);
    if (typeof dataActive(r() < 0.5 ? 'quectel' : 'generic', 1, [q]) !== 'boolean') throw new Error('dataActive not boolean');
  }
  return { iterations, counts };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const n = Number(process.argv[2] ?? 100_000);
  const t0 = Date.now();
  const res = await fuzz(n);
  process.stdout.write(`${JSON.stringify({ ...res, ms: Date.now() - t0 })}\n`);
}

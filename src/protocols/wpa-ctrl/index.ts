import { pbkdf2Sync } from 'node:crypto';
import { DuocellError } from '../../core/errors.js';

/**
 * wpa_supplicant, pure: the configuration file duocell writes for its WLAN uplink and the
 * text of its control interface (wpa_supplicant/README and ctrl_iface.c; hostap's
 * doc/ctrl_iface.doxygen).
 *
 * Configuration: the SSID is written in hex and the passphrase as the 256-bit PSK it derives
 * (IEEE 802.11i, PBKDF2-HMAC-SHA1 over the SSID, 4096 rounds), so no text from the profile or
 * the page is ever quoted into the file: nothing can close a string and add a directive.
 *
 * Control interface (datagrams, one per request; the reply in one datagram):
 *   request "STATUS"                 reply  key=value lines
 *   request "INTERFACE_ADD …"        reply  "OK" | "FAIL"
 *   unsolicited (after ATTACH)       "<level>CTRL-EVENT-…" (level 0..4)
 * A global socket (-g) forwards "IFNAME=wlan0 CMD" to that interface.
 */

function invalid(message: string): DuocellError {
  return new DuocellError('DC_WLAN_CONFIG_INVALID', message, { origin: 'local' });
}

function malformed(message: string): DuocellError {
  return new DuocellError('DC_WLAN_CTRL_MALFORMED', message, { origin: 'local' });
}

export interface WlanNetwork {
  /** 1..32 octets of UTF-8. */
  readonly ssid: string;
  /** WPA2-PSK passphrase, 8..63 printable ASCII characters; absent: an open network. */
  readonly passphrase?: string;
}

/** Check a network against 802.11's limits; DC_WLAN_CONFIG_INVALID says which. */
export function checkNetwork(n: WlanNetwork): void {
  if (typeof n.ssid !== 'string') throw invalid('SSID: expected a string');
  const len = Buffer.byteLength(n.ssid, 'utf8');
  if (len < 1 || len > 32) throw invalid(`SSID: ${len} octets, expected 1..32`);
  if (n.passphrase !== undefined) {
    if (typeof n.passphrase !== 'string') throw invalid('passphrase: expected a string');
    if (!/^[\x20-\x7e]{8,63}$/.test(n.passphrase)) throw invalid(`passphrase: ${n.passphrase.length} characters; expected 8..63 printable ASCII characters`);
  }
}

/** The 256-bit PSK of a WPA2 passphrase (IEEE 802.11-2020 J.4: PBKDF2-SHA1, SSID as salt, 4096 rounds). */
export function derivePsk(ssid: string, passphrase: string): Buffer {
  return pbkdf2Sync(Buffer.from(passphrase, 'ascii'), Buffer.from(ssid, 'utf8'), 4096, 32, 'sha1');
}

/** wpa_supplicant.conf for one station network. `psk` may be given (derived once, cached by the caller). */
export function encodeConfig(n: WlanNetwork, opts: { country?: string; psk?: Buffer } = {}): string {
  checkNetwork(n);
  if (opts.country !== undefined && !/^[A-Z]{2}$/.test(opts.country)) throw invalid(`country: ${JSON.stringify(opts.country)} is not a two-letter code`);
  const lines = [
    '# Written by duocell from the board profile; changes here are overwritten.',
    'update_config=0',
    'ap_scan=1',
    ...(opts.country === undefined ? [] : [`country=${opts.country}`]),
    'network={',
    `\tssid=${Buffer.from(n.ssid, 'utf8').toString('hex')}`,
    '\tscan_ssid=1',
  ];
  if (n.passphrase === undefined) {
    lines.push('\tkey_mgmt=NONE');
  } else {
    const psk = opts.psk ?? derivePsk(n.ssid, n.passphrase);
    if (psk.length !== 32) throw invalid('psk: expected 32 octets');
    lines.push('\tkey_mgmt=WPA-PSK', '\tproto=RSN', '\tpairwise=CCMP', `\tpsk=${psk.toString('hex')}`);
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// Control interface

/** Interface names as the kernel allows them (and nothing a tab- or space-split could misread). */
const IFNAME = /^[A-Za-z0-9_.:@-]{1,15}$/;

export const request = {
  /** Global socket: add an interface with a configuration file, driver nl80211 (tab-separated fields). */
  interfaceAdd(ifname: string, confPath: string): string {
    if (!IFNAME.test(ifname)) throw invalid(`interface name ${JSON.stringify(ifname)}`);
    if (!/^\/[\x21-\x7e]+$/.test(confPath)) throw invalid(`configuration path ${JSON.stringify(confPath)}`);
    return `INTERFACE_ADD ${ifname}\t${confPath}\tnl80211`;
  },
  interfaceRemove(ifname: string): string {
    if (!IFNAME.test(ifname)) throw invalid(`interface name ${JSON.stringify(ifname)}`);
    return `INTERFACE_REMOVE ${ifname}`;
  },
  /** A command for one interface through the global socket. */
  forIface(ifname: string, cmd: 'STATUS' | 'RECONFIGURE' | 'RECONNECT' | 'DISCONNECT' | 'PING'): string {
    if (!IFNAME.test(ifname)) throw invalid(`interface name ${JSON.stringify(ifname)}`);
    return `IFNAME=${ifname} ${cmd}`;
  },
};

/** An unsolicited message ("<3>CTRL-EVENT-CONNECTED …"), or undefined for a reply. */
export function parseUnsolicited(text: string): { level: number; text: string } | undefined {
  const m = /^<([0-9])>/.exec(text);
  if (m === null) return undefined;
  return { level: Number(m[1]), text: text.slice(m[0].length) };
}

/** "OK" / "FAIL" / "UNKNOWN COMMAND" replies: true for OK, else DC_WLAN_CTRL_FAILED with the reply. */
export function expectOk(reply: string, what: string): void {
  const r = reply.trimEnd();
  if (r === 'OK') return;
  throw new DuocellError('DC_WLAN_CTRL_FAILED', `wpa_supplicant refused ${what}: ${JSON.stringify(r.slice(0, 80))}`, { origin: 'device', reply: r.slice(0, 200) });
}

export interface SupplicantStatus {
  /** wpa_state: DISCONNECTED, SCANNING, ASSOCIATING, 4WAY_HANDSHAKE, COMPLETED, … */
  readonly wpaState: string;
  readonly ssid?: string;
  readonly bssid?: string;
  readonly frequencyMhz?: number;
  readonly keyMgmt?: string;
  readonly address?: string;
}

/** The STATUS reply (key=value per line). A reply without wpa_state is malformed. */
export function parseStatus(reply: string): SupplicantStatus {
  if (reply.length > 65536) throw malformed(`STATUS reply of ${reply.length} characters`);
  const kv = new Map<string, string>();
  for (const line of reply.split('\n')) {
    if (line === '') continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw malformed(`STATUS line without key=value: ${JSON.stringify(line.slice(0, 60))}`);
    kv.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const wpaState = kv.get('wpa_state');
  if (wpaState === undefined || !/^[A-Z0-9_]+$/.test(wpaState)) throw malformed('STATUS reply without a wpa_state');
  const bssid = kv.get('bssid');
  const freq = kv.get('freq');
  const o: Record<string, unknown> = { wpaState };
  if (kv.has('ssid')) o.ssid = kv.get('ssid');
  if (bssid !== undefined && /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(bssid)) o.bssid = bssid.toLowerCase();
  if (freq !== undefined && /^[0-9]{1,6}$/.test(freq)) o.frequencyMhz = Number(freq);
  if (kv.has('key_mgmt')) o.keyMgmt = kv.get('key_mgmt');
  const addr = kv.get('address');
  if (addr !== undefined && /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(addr)) o.address = addr.toLowerCase();
  return o as unknown as SupplicantStatus;
}

/** INTERFACES reply: one interface name per line. */
export function parseInterfaces(reply: string): string[] {
  return reply.split('\n').map((l) => l.trim()).filter((l) => l !== '' && IFNAME.test(l));
}

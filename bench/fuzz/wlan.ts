import { pathToFileURL } from 'node:url';
import { DuocellError } from '../../src/core/errors.js';
import { attr, encodeGenl } from '../../src/protocols/netlink/index.js';
import { Cmd, decodeLinkEvent } from '../../src/protocols/nl80211/index.js';
import { encodeConfig, parseInterfaces, parseStatus, parseUnsolicited } from '../../src/protocols/wpa-ctrl/index.js';
import { prng } from './convert.js';

/**
 * Fuzz the WLAN codecs: nl80211 connection events (well-formed, mutated, noise) and
 * wpa_supplicant control-interface replies (STATUS, INTERFACES, unsolicited), plus the
 * configuration encoder with random SSIDs and passphrases. Checked on every input: a rejection
 * is a DuocellError with a code; a written configuration has exactly one network block, one
 * ssid line in hex and no line that did not come from the encoder. Anything else is thrown.
 */

const int = (r: () => number, n: number): number => Math.floor(r() * n);
const bytes = (r: () => number, n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(r, 256)));
const CMDS = [Cmd.AUTHENTICATE, Cmd.ASSOCIATE, Cmd.DEAUTHENTICATE, Cmd.DISASSOCIATE, Cmd.CONNECT, Cmd.ROAM, Cmd.DISCONNECT, 59, 0];

function event(r: () => number): Buffer {
  const attrs = [];
  if (r() < 0.9) attrs.push(attr.u32(3, int(r, 64)));
  if (r() < 0.5) attrs.push(attr.binary(51, bytes(r, int(r, 40))));
  if (r() < 0.3) attrs.push(attr.u16(54, int(r, 65536)));
  if (r() < 0.3) attrs.push(attr.u16(72, int(r, 65536)));
  if (r() < 0.2) attrs.push(attr.flag(71));
  if (r() < 0.2) attrs.push(attr.flag(65));
  return encodeGenl(CMDS[int(r, CMDS.length)]!, 1, attrs);
}

const STATUS_LINES = ['bssid=02:00:00:00:01:00', 'freq=2437', 'ssid=rig', 'wpa_state=COMPLETED', 'wpa_state=SCANNING', 'address=02:00:00:00:00:00', 'key_mgmt=WPA2-PSK', 'id=0', 'uuid=x=y', '', 'FAIL'];

function text(r: () => number): string {
  const k = r();
  if (k < 0.5) return Array.from({ length: int(r, 8) }, () => STATUS_LINES[int(r, STATUS_LINES.length)]).join('\n');
  if (k < 0.7) return `<${int(r, 12)}>CTRL-EVENT-${bytes(r, int(r, 20)).toString('latin1')}`;
  if (k < 0.8) return 'x'.repeat(int(r, 70_000));
  return bytes(r, int(r, 200)).toString('latin1');
}

function mutate(r: () => number, b: Buffer): Buffer {
  const c = Buffer.from(b);
  for (let n = 1 + int(r, 4); n > 0 && c.length > 0; n--) c[int(r, c.length)] = int(r, 256);
  return r() < 0.3 ? c.subarray(0, int(r, c.length + 1)) : c;
}

export async function fuzz(iterations: number, seed: number): Promise<{ iterations: number; rejected: Record<string, number> }> {
  const r = prng(seed);
  const rejected: Record<string, number> = {};
  const count = (k: string): void => void (rejected[k] = (rejected[k] ?? 0) + 1);
  const guard = (what: string, f: () => void): void => {
    try {
      f();
      count(`ok:${what}`);
    } catch (e) {
      if (!(e instanceof DuocellError)) throw new Error(`${what}: not a DuocellError: ${String(e)}`);
      count(e.code);
    }
  };
  for (let i = 0; i < iterations; i++) {
    const ev = r() < 0.5 ? event(r) : r() < 0.7 ? mutate(r, event(r)) : bytes(r, int(r, 64));
    guard('event', () => {
      const e = decodeLinkEvent(ev);
      if (e !== undefined && (!Number.isInteger(e.ifindex) || (e.reasonCode !== undefined && (e.reasonCode < 0 || e.reasonCode > 65535)))) throw new Error('event out of range');
    });
    const t = text(r);
    guard('status', () => void parseStatus(t));
    guard('interfaces', () => {
      if (parseInterfaces(t).some((n) => /[\s\t]/.test(n))) throw new Error('interface name with a space');
    });
    guard('unsolicited', () => void parseUnsolicited(t));
    const ssid = bytes(r, 1 + int(r, 40)).toString(r() < 0.5 ? 'latin1' : 'utf8');
    const pass = r() < 0.2 ? undefined : bytes(r, int(r, 70)).toString('latin1');
    guard('config', () => {
      const c = encodeConfig({ ssid, ...(pass === undefined ? {} : { passphrase: pass }) }, { psk: Buffer.alloc(32, 1) });
      const lines = c.trimEnd().split('\n');
      const okLine = /^(# Written by duocell.*|update_config=0|ap_scan=1|network=\{|\tssid=[0-9a-f]+|\tscan_ssid=1|\tkey_mgmt=(NONE|WPA-PSK)|\tproto=RSN|\tpairwise=CCMP|\tpsk=[0-9a-f]{64}|\})$/;
      if (!lines.every((l) => okLine.test(l)) || lines.filter((l) => l.startsWith('\tssid=')).length !== 1) throw new Error(`configuration with a foreign line: ${JSON.stringify(c)}`);
    });
    if (i % 5000 === 4999) await new Promise((res) => setImmediate(res));
  }
  return { iterations, rejected };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const n = Number(process.argv[2] ?? 100_000);
  const t0 = Date.now();
  const res = await fuzz(n, Number(process.argv[3] ?? 1));
  console.log(JSON.stringify({ ...res, ms: Date.now() - t0 }));
}

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuocellError } from './errors.js';

/**
 * A board profile says what box duocell runs on and how it is wired: which preset, which
 * uplinks (interface + access type), the LAN side, where the web page listens, and the
 * proxy's listeners. Profiles live in board/NAME.json and are validated here at start-up.
 */

export type Preset = 'cell' | 'concentrator';
export type AccessType = 'cellular' | 'wlan' | 'lan';

export interface UplinkProfile {
  name: string;
  access: 'cellular' | 'wlan';
  interface: string;
}

export interface ListenerProfile {
  /** explicit: plain TCP/MPTCP listener relaying to a fixed target; transparent: TPROXY'd. */
  kind: 'explicit' | 'transparent' | 'convert' | 'socks5';
  host: string;
  port: number;
  mptcp: boolean;
  /** Fixed upstream for `explicit` listeners (host:port). */
  target?: string;
  /** How to reach the server: plain TCP, or MPTCP from the uplinks. */
  upstream?: 'tcp' | 'mptcp';
}

export interface BoardProfile {
  name: string;
  preset: Preset;
  description?: string;
  uplinks: UplinkProfile[];
  lan: { interfaces: string[] };
  web: { listen: Array<{ host: string; port: number }> };
  listeners: ListenerProfile[];
  /** Prefix → access type, to label subflows by their local/remote address. */
  accessNetworks: Array<{ prefix: string; access: AccessType }>;
  /** Everything else a profile may carry (modem ports, LEDs, APN, OTA keys…), kept as is. */
  [key: string]: unknown;
}

function fail(msg: string): never {
  throw new DuocellError('DC_CONFIG_INVALID', msg);
}

function isObj(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function str(o: Record<string, unknown>, k: string, where: string): string {
  const v = o[k];
  if (typeof v !== 'string' || v.length === 0) fail(`${where}.${k}: expected a non-empty string`);
  return v;
}

function port(o: Record<string, unknown>, k: string, where: string): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535) fail(`${where}.${k}: expected a port 0..65535`);
  return v;
}

/** Validate an untrusted profile document. */
export function validateBoard(doc: unknown): BoardProfile {
  if (!isObj(doc)) fail('board: expected a JSON object');
  const name = str(doc, 'name', 'board');
  const preset = doc.preset;
  if (preset !== 'cell' && preset !== 'concentrator') fail('board.preset: expected "cell" or "concentrator"');
  const uplinks = Array.isArray(doc.uplinks) ? doc.uplinks : fail('board.uplinks: expected an array');
  const ul = uplinks.map((u, i) => {
    const w = `board.uplinks[${i}]`;
    if (!isObj(u)) fail(`${w}: expected an object`);
    const access = u.access;
    if (access !== 'cellular' && access !== 'wlan') fail(`${w}.access: expected "cellular" or "wlan"`);
    return { name: str(u, 'name', w), access, interface: str(u, 'interface', w) } as UplinkProfile;
  });
  const lan = isObj(doc.lan) && Array.isArray(doc.lan.interfaces) ? { interfaces: doc.lan.interfaces.map(String) } : { interfaces: [] };
  const webDoc = isObj(doc.web) && Array.isArray(doc.web.listen) ? doc.web.listen : [{ host: '127.0.0.1', port: 8080 }];
  const web = {
    listen: webDoc.map((l: unknown, i: number) => {
      const w = `board.web.listen[${i}]`;
      if (!isObj(l)) fail(`${w}: expected an object`);
      return { host: str(l, 'host', w), port: port(l, 'port', w) };
    }),
  };
  const lsDoc = doc.listeners === undefined ? [] : Array.isArray(doc.listeners) ? doc.listeners : fail('board.listeners: expected an array');
  const listeners = lsDoc.map((l: unknown, i: number) => {
    const w = `board.listeners[${i}]`;
    if (!isObj(l)) fail(`${w}: expected an object`);
    const kind = l.kind;
    if (kind !== 'explicit' && kind !== 'transparent' && kind !== 'convert' && kind !== 'socks5') {
      fail(`${w}.kind: expected explicit|transparent|convert|socks5`);
    }
    const out: ListenerProfile = { kind, host: str(l, 'host', w), port: port(l, 'port', w), mptcp: l.mptcp !== false };
    if (l.target !== undefined) out.target = str(l, 'target', w);
    if (l.upstream !== undefined) {
      if (l.upstream !== 'tcp' && l.upstream !== 'mptcp') fail(`${w}.upstream: expected tcp|mptcp`);
      out.upstream = l.upstream;
    }
    if (kind === 'explicit' && out.target === undefined) fail(`${w}.target: required for explicit listeners`);
    return out;
  });
  const anDoc = Array.isArray(doc.accessNetworks) ? doc.accessNetworks : [];
  const accessNetworks = anDoc.map((a: unknown, i: number) => {
    const w = `board.accessNetworks[${i}]`;
    if (!isObj(a)) fail(`${w}: expected an object`);
    const access = a.access;
    if (access !== 'cellular' && access !== 'wlan' && access !== 'lan') fail(`${w}.access: expected cellular|wlan|lan`);
    return { prefix: str(a, 'prefix', w), access };
  });
  return { ...doc, name, preset, uplinks: ul, lan, web, listeners, accessNetworks } as BoardProfile;
}

/** The board/ folder of this installation. */
export function boardDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const up of ['../../board', '../../../board']) {
    const d = path.resolve(here, up);
    if (fs.existsSync(d)) return d;
  }
  return path.resolve(here, '../../board');
}

/** Load board/NAME.json, or a file path when NAME contains a slash or ends in .json. */
export function loadBoard(nameOrPath: string): BoardProfile {
  const file = nameOrPath.includes('/') || nameOrPath.endsWith('.json') ? nameOrPath : path.join(boardDir(), `${nameOrPath}.json`);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new DuocellError('DC_CONFIG_INVALID', `cannot read board profile ${file}: ${(e as Error).message}`, { cause: e });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new DuocellError('DC_CONFIG_INVALID', `board profile ${file} is not JSON: ${(e as Error).message}`, { cause: e });
  }
  return validateBoard(doc);
}

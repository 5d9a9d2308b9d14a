import { createPublicKey, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuocellError } from './errors.js';
import type { AccessType, NetworkAccess, Preset } from './model.js';
import { compileSchema, dottedPath, toField, type FieldError } from './schema.js';

/**
 * A board profile says what box duocell runs on and how it is wired: which preset, which
 * uplinks (interface + access type), the LAN side, where the web page listens, and the
 * proxy's listeners; on a real box also the modem (USB ids, ports, APN), LEDs, the default
 * policy and the trusted OTA keys. Profiles live in board/NAME.json.
 *
 * Validation at start-up, in two passes:
 *   1. board/schema.json (JSON Schema, the one description of the format; the web page and
 *      docs/board.md use it too), compiled once with ajv (core/schema.ts);
 *   2. what a schema cannot say: unique names, numeric addresses, prefix lengths, keys
 *      that really are Ed25519 keys, USB ids wherever a port is found by USB interface.
 * Every failure is DC_CONFIG_INVALID with the JSON path of the offending field.
 */

export type { Preset } from './model.js';

/** How an uplink is probed: board/schema.json `uplinks[].probe.method` (a test keeps the two in step). */
export const PROBE_METHODS = ['udp-echo', 'icmp'] as const;
export type ProbeMethod = (typeof PROBE_METHODS)[number];

/** board/schema.json `uplinks[].probe`. */
export interface ProbeProfile {
  /** Default `udp-echo`. */
  method?: ProbeMethod;
  address?: string;
  /** udp-echo only (default 7). */
  port?: number;
  enabled?: boolean;
}

export interface UplinkProfile {
  name: string;
  access: AccessType;
  interface: string;
  gateway4?: string;
  gateway6?: string;
  table?: number;
  /** Active probes from this uplink (services/paths/measure.ts) to `address` (default the gateway) by ICMP echo or UDP echo (default, port 7); absent: not probed. */
  probe?: ProbeProfile;
  /** WLAN uplinks: the network to join as a station (wpa_supplicant's configuration is written from it). */
  wlan?: { ssid: string; passphrase?: string; country?: string };
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
  /** Transparent listeners: intercept MPTCP SYNs only (default) or all TCP SYNs to the port. */
  claim?: 'mptcp' | 'all';
  /** TCP Fast Open queue on the listener. */
  fastOpen?: number;
  /** Front-specific settings (Convert cookies, SOCKS5 users, concentrator), checked by the front. */
  options?: Record<string, unknown>;
}

/** On-path interception (services/intercept). */
export interface SteeringProfile {
  enabled?: boolean;
  table?: string;
  mark?: number;
  routeTable?: number;
  mserverTtlS?: number;
  synRate?: number;
  synBurst?: number;
  perSourceMax?: number;
  /** Interception lapses this long after the event loop last renewed it (ms, default 1500; 0 off). */
  livenessMs?: number;
}

/** Concentrator behind a shared address: C flag + ADD_ADDR of the unique address(es) (services/announce/index.ts). */
export interface ExplicitSteeringProfile {
  refuseInitialJoins?: boolean;
  announce: Array<{ address: string; port?: number; interface?: string; id?: number }>;
  subflows?: number;
}

/** How to find one modem port: by USB interface number (survives re-plugs), or a fixed path. */
export interface PortSpec {
  usbInterface?: number;
  path?: string;
  name?: string;
}

export interface ModemProfile {
  model: string;
  simulated?: boolean;
  control?: 'qmi' | 'at';
  usb?: Array<{ vendor: string; product: string; note?: string }>;
  ports?: { at?: PortSpec; qmi?: PortSpec; net?: PortSpec };
  apn?: { name: string; ipType?: 'ipv4' | 'ipv6' | 'ipv4v6'; auth?: 'none' | 'pap' | 'chap' };
}

export interface LedProfile {
  role: 'status' | 'cellular' | 'wlan' | 'error';
  name: string;
  activeLow?: boolean;
}

export interface DefaultPolicy {
  pathRatio?: { cellular?: number; wlan?: number };
  preferredPath?: 'cellular' | 'wlan' | 'none';
  maxSubflows?: number;
  allowUnknownSubscribers?: boolean;
  [key: string]: unknown;
}

export interface OtaProfile {
  trustedKeys: Array<{ id: string; ed25519: string }>;
  url?: string;
}

/** The web page's sockets and first-boot protection (wiring/first-boot.ts). */
export interface WebProfile {
  listen: Array<{ host: string; port: number }>;
  /** First-boot set-up secret: generated per device at first start (default when any listen address is not loopback), or none. */
  setupSecret?: 'generate' | 'none';
  /** Bearer token of /metrics: generated at first start (default when any listen address is not loopback), or none. */
  metricsToken?: 'generate' | 'none';
  /** HTTPS with a per-device self-signed certificate, on this port of every non-loopback listen address. */
  https?: { port: number };
  /** Plain HTTP on non-loopback addresses when HTTPS is on: only a redirect to it (default), or the page itself. */
  plainHttp?: 'redirect' | 'serve';
  /** Where the secret and the certificate fingerprint are shown: a login-banner snippet (agetty), standard output (the simulated board). */
  banner?: { issueFile?: string; stdout?: boolean };
}

export interface BoardProfile {
  name: string;
  preset: Preset;
  description?: string;
  uplinks: UplinkProfile[];
  lan: { interfaces: string[]; addresses?: string[]; dhcpServer?: boolean };
  web: WebProfile;
  listeners: ListenerProfile[];
  /** Prefix → access type, to label subflows by their local/remote address. */
  accessNetworks: Array<{ prefix: string; access: NetworkAccess }>;
  modem?: ModemProfile;
  leds?: LedProfile[];
  policy?: DefaultPolicy;
  ota?: OtaProfile;
  steering?: SteeringProfile;
  /** Per-flow UDP steering for the LAN (services/udp/steering.ts); off unless enabled. */
  udpSteering?: { enabled?: boolean; table?: string; mode?: 'active-standby' | 'priority' | 'smallest-delay' | 'load-balancing'; perSourceFlows?: number; rulePriority?: number };
  explicitSteering?: ExplicitSteeringProfile;
  /** Per-radio address ids for M-UE sessions (wiring/pm.ts radioAnnouncer; opt-in, userspace PM). */
  mueRadioAddresses?: boolean;
  /** MP_JOIN SYNs to explicit MPTCP listeners DNATed to the radio's address (wiring/pm.ts; cell, userspace PM; opt-in). */
  joinDnat?: boolean;
  /** Relay targets the operator allows on purpose (prefixes), over the proxy's target filter. */
  proxyTargets?: { allow?: string[] };
  /** Anything else the schema allows, kept as is. */
  [key: string]: unknown;
}

function fail(msg: string): never {
  throw new DuocellError('DC_CONFIG_INVALID', msg);
}

function isObj(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

// ---- JSON Schema: board/schema.json, compiled with the one schema engine (core/schema.ts) ----

/** A JSON Schema document (board/schema.json or a part of one). */
export type Schema = Record<string, unknown>;

/** Apply `schema` to `v`; returns one message per violation, each prefixed by its path. */
export function checkSchema(schema: Schema, v: unknown, at = 'board'): string[] {
  const check = compileSchema(schema);
  if (check(v)) return [];
  return check.issues().map((i) => `${dottedPath(at, i.path)}: ${i.message}`);
}

let cachedSchema: Schema | undefined;

/** board/schema.json of this installation. */
export function boardSchema(): Schema {
  if (cachedSchema === undefined) {
    const file = path.join(boardDir(), 'schema.json');
    try {
      cachedSchema = JSON.parse(fs.readFileSync(file, 'utf8')) as Schema;
    } catch (e) {
      throw new DuocellError('DC_CONFIG_INVALID', `cannot read the board schema ${file}: ${(e as Error).message}`, { cause: e });
    }
  }
  return cachedSchema;
}

/**
 * Check a listener's `options` against its part of board/schema.json (`$defs`: connectorOptions,
 * convertOptions, socks5Options), for the fronts and the connector that read them: a board
 * profile is checked as a whole at load, a caller that builds a front directly gets the same
 * check. Failure: DC_CONFIG_INVALID naming the field (`what: cookies[0]: …`).
 */
export function checkListenerOptions(def: 'connectorOptions' | 'convertOptions' | 'socks5Options', options: unknown, what: string): void {
  const schema = (boardSchema().$defs as Record<string, Schema> | undefined)?.[def];
  if (schema === undefined) throw new DuocellError('DC_INTERNAL', `board schema: no $defs.${def}`);
  const errs = checkSchema(schema, options, 'options');
  if (errs.length > 0) throw new DuocellError('DC_CONFIG_INVALID', `${what}: ${errs.join('; ')}`, { errors: errs });
}

function failAll(errs: string[], fields?: FieldError[]): never {
  const shown = errs.slice(0, 8).join('; ');
  throw new DuocellError('DC_CONFIG_INVALID', errs.length > 8 ? `${shown}; … ${errs.length - 8} more` : shown, { errors: errs, ...(fields !== undefined ? { fields } : {}) });
}

/** Decode a trusted key (64 hex digits or 44 base64 characters) to its 32 raw bytes. */
export function decodeEd25519(text: string): Buffer {
  const raw = /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64');
  if (raw.length !== 32) fail(`not a 32-byte Ed25519 public key: ${text}`);
  return raw;
}

/** DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): the raw key follows. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** The profile's trusted OTA public keys as Node key objects (for crypto.verify). */
export function trustedOtaKeys(board: Pick<BoardProfile, 'ota'>): Array<{ id: string; key: KeyObject }> {
  return (board.ota?.trustedKeys ?? []).map((k) => ({
    id: k.id,
    key: createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, decodeEd25519(k.ed25519)]), format: 'der', type: 'spki' }),
  }));
}

function checkCidr(text: string, at: string, errs: string[]): void {
  const [addr = '', len = ''] = text.split('/');
  const fam = net.isIP(addr);
  if (fam === 0) errs.push(`${at}: ${JSON.stringify(addr)} is not a numeric address`);
  else if (Number(len) > (fam === 4 ? 32 : 128)) errs.push(`${at}: prefix length ${len} too long for IPv${fam}`);
}

/** What the schema cannot say. */
function checkMeaning(doc: Record<string, unknown>): string[] {
  const b = doc as Partial<BoardProfile>;
  const errs: string[] = [];
  const seen = new Map<string, string>();
  (b.uplinks ?? []).forEach((u, i) => {
    for (const [k, v] of [['name', u.name], ['interface', u.interface]] as const) {
      const key = `${k}:${v}`;
      if (seen.has(key)) errs.push(`board.uplinks[${i}].${k}: ${JSON.stringify(v)} already used by ${seen.get(key)}`);
      else seen.set(key, `board.uplinks[${i}]`);
    }
  });
  (b.uplinks ?? []).forEach((u, i) => {
    const pr = u.probe;
    if (pr === undefined) return;
    if (pr.address !== undefined && net.isIP(pr.address) === 0) errs.push(`board.uplinks[${i}].probe.address: ${JSON.stringify(pr.address)} is not a numeric address`);
    if (pr.method === 'icmp' && pr.port !== undefined) errs.push(`board.uplinks[${i}].probe.port: ICMP echo has no port (only udp-echo does)`);
  });
  if (b.preset === 'cell' && (b.uplinks ?? []).length === 0) errs.push('board.uplinks: a cell needs at least one uplink');
  (b.uplinks ?? []).forEach((u, i) => {
    if (u.wlan === undefined) return;
    if (u.access !== 'wlan') errs.push(`board.uplinks[${i}].wlan: only a WLAN uplink joins a WLAN network`);
    if (typeof u.wlan.ssid === 'string' && Buffer.byteLength(u.wlan.ssid, 'utf8') > 32) errs.push(`board.uplinks[${i}].wlan.ssid: more than 32 octets`);
  });
  (b.web?.listen ?? []).forEach((l, i) => {
    if (net.isIP(l.host) === 0) errs.push(`board.web.listen[${i}].host: ${JSON.stringify(l.host)} is not a numeric address`);
  });
  (b.listeners ?? []).forEach((l, i) => {
    if (net.isIP(l.host) === 0) errs.push(`board.listeners[${i}].host: ${JSON.stringify(l.host)} is not a numeric address`);
    if (l.kind === 'explicit' && l.target === undefined) errs.push(`board.listeners[${i}].target: required for explicit listeners`);
  });
  (b.lan?.addresses ?? []).forEach((a, i) => checkCidr(a, `board.lan.addresses[${i}]`, errs));
  (b.accessNetworks ?? []).forEach((a, i) => checkCidr(a.prefix, `board.accessNetworks[${i}].prefix`, errs));
  const m = b.modem;
  if (m !== undefined && m.simulated !== true) {
    const byUsb = Object.entries(m.ports ?? {}).filter(([, p]) => p?.usbInterface !== undefined);
    if (byUsb.length > 0 && (m.usb ?? []).length === 0) {
      errs.push(`board.modem.usb: required to find ports by USB interface (${byUsb.map(([k]) => k).join(', ')})`);
    }
  }
  if (b.preset === 'cell' && (b.uplinks ?? []).some((u) => u.access === 'cellular') && m === undefined) {
    errs.push('board.modem: required when there is a cellular uplink');
  }
  (b.ota?.trustedKeys ?? []).forEach((k, i) => {
    try {
      trustedOtaKeys({ ota: { trustedKeys: [k] } });
    } catch (e) {
      errs.push(`board.ota.trustedKeys[${i}].ed25519: ${(e as Error).message}`);
    }
  });
  if (b.mueRadioAddresses !== undefined && typeof b.mueRadioAddresses !== 'boolean') errs.push('board.mueRadioAddresses: must be true or false');
  if (b.mueRadioAddresses === true && b.preset !== 'cell') errs.push('board.mueRadioAddresses: only a cell serves M-UEs over its radios');
  if (b.joinDnat !== undefined && typeof b.joinDnat !== 'boolean') errs.push('board.joinDnat: must be true or false');
  if (b.joinDnat === true && b.preset !== 'cell') errs.push('board.joinDnat: only a cell serves M-UEs over its radios');
  if (b.joinDnat === true && b.mueRadioAddresses === true) errs.push('board.joinDnat: not with mueRadioAddresses (the announced joins have their own ids already)');
  const es = b.explicitSteering;
  if (es !== undefined) {
    if (b.preset !== 'concentrator') errs.push('board.explicitSteering: only a concentrator announces its addresses this way');
    const seenEp = new Set<string>();
    const listenPorts = new Set((b.listeners ?? []).map((l) => l.port));
    (es.announce ?? []).forEach((a, i) => {
      if (net.isIP(a.address) === 0) errs.push(`board.explicitSteering.announce[${i}].address: ${JSON.stringify(a.address)} is not a numeric address`);
      const key = a.address.toLowerCase();
      if (seenEp.has(key)) errs.push(`board.explicitSteering.announce[${i}].address: ${a.address} announced twice`);
      seenEp.add(key);
      if (a.port !== undefined && listenPorts.has(a.port)) errs.push(`board.explicitSteering.announce[${i}].port: ${a.port} is a listener's port (the kernel needs it free to take the joins)`);
    });
    const epIds = (es.announce ?? []).flatMap((a) => (a.id === undefined ? [] : [a.id]));
    if (new Set(epIds).size !== epIds.length) errs.push('board.explicitSteering.announce: duplicate id');
  }
  const ids = (b.ota?.trustedKeys ?? []).map((k) => k.id);
  if (new Set(ids).size !== ids.length) errs.push('board.ota.trustedKeys: duplicate id');
  return errs;
}

/** Validate an untrusted profile document; the result carries the defaults filled in. */
export function validateBoard(doc: unknown): BoardProfile {
  if (!isObj(doc)) fail('board: expected a JSON object');
  const check = compileSchema(boardSchema());
  if (!check(doc)) {
    // `errors` in the profile's words; `fields` in the shape of the API's refusals.
    const issues = check.issues();
    failAll(
      issues.map((i) => `${dottedPath('board', i.path)}: ${i.message}`),
      issues.map((i) => toField(i, '')),
    );
  }
  const meaningErrs = checkMeaning(doc);
  if (meaningErrs.length > 0) failAll(meaningErrs);
  // The schema has vouched for every field's type: what is left is filling the defaults.
  const b = doc as Partial<BoardProfile> & Pick<BoardProfile, 'name' | 'preset' | 'uplinks'>;
  const lan = { ...b.lan, interfaces: b.lan?.interfaces ?? [] };
  const web = { ...b.web, listen: b.web?.listen ?? [{ host: '127.0.0.1', port: 8080 }] } as WebProfile;
  const listeners = (b.listeners ?? []).map((l) => ({ ...l, mptcp: l.mptcp !== false }));
  return { ...b, lan, web, listeners, accessNetworks: b.accessNetworks ?? [] } as BoardProfile;
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

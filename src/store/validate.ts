import { DuocellError, type ErrorCode } from '../core/errors.js';
import { canonicalMac, canonicalPrefix } from './net.js';
import {
  PROXY_TYPES,
  STEERING_MODES,
  type NServerLimitSpec,
  type ProxyAppSpec,
  type PolicySpec,
  type ProxySpec,
  type SubscriberSpec,
} from './types.js';

/**
 * Normalisation of values on their way into the store: canonical prefixes and MACs, limits
 * in range, names in a safe alphabet. Everything the web page, the CLI or a bundle writes
 * passes here; a failure is DC_STORE_INVALID (or the code the caller asks for) naming the field.
 */

export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$/;
export const MAX_IDS_PER_SUBSCRIBER = 64;

function bad(code: ErrorCode, where: string, msg: string): never {
  throw new DuocellError(code, `${where}: ${msg}`, { field: where });
}

export function checkName(v: unknown, where: string, code: ErrorCode = 'DC_STORE_INVALID'): string {
  if (typeof v !== 'string' || !NAME_RE.test(v)) bad(code, where, 'expected a name of 1-64 characters [A-Za-z0-9._@+-]');
  return v;
}

function intIn(v: unknown, lo: number, hi: number, where: string, code: ErrorCode): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) bad(code, where, `expected an integer ${lo}..${hi}`);
  return v;
}

function optInt(v: unknown, lo: number, hi: number, where: string, code: ErrorCode): number | null {
  return v === undefined || v === null ? null : intIn(v, lo, hi, where, code);
}

export function checkPrefix(v: unknown, where: string, code: ErrorCode = 'DC_STORE_INVALID'): string {
  const c = typeof v === 'string' ? canonicalPrefix(v) : undefined;
  if (c === undefined) bad(code, where, 'expected an IPv4/IPv6 address or prefix');
  return c;
}

export function checkMac(v: unknown, where: string, code: ErrorCode = 'DC_STORE_INVALID'): string {
  const c = typeof v === 'string' ? canonicalMac(v) : undefined;
  if (c === undefined) bad(code, where, 'expected a MAC address');
  return c;
}

function list<T>(v: unknown, max: number, where: string, code: ErrorCode, each: (x: unknown, w: string) => T): T[] {
  if (!Array.isArray(v)) bad(code, where, 'expected an array');
  if (v.length > max) bad(code, where, `at most ${max} entries`);
  const out = v.map((x, i) => each(x, `${where}[${i}]`));
  return [...new Set(out)];
}

export interface PolicyRow {
  name: string;
  max_sessions_per_ue: number | null;
  max_subflows_per_session: number | null;
  max_sessions_per_nserver: number | null;
  steering_mode: string | null;
  ratio_cellular: number | null;
  ratio_wlan: number | null;
  allowed_networks: string | null;
  intercept_ports: string | null;
}

export function normalizePolicy(p: PolicySpec, code: ErrorCode = 'DC_STORE_INVALID', where = 'policy'): PolicyRow {
  if (typeof p !== 'object' || p === null) bad(code, where, 'expected an object');
  const name = checkName(p.name, `${where}.name`, code);
  let mode: string | null = null;
  if (p.steeringMode !== undefined && p.steeringMode !== null) {
    if (!STEERING_MODES.includes(p.steeringMode)) bad(code, `${where}.steeringMode`, `expected one of ${STEERING_MODES.join('|')}`);
    mode = p.steeringMode;
  }
  let rc: number | null = null;
  let rw: number | null = null;
  if (p.ratio !== undefined && p.ratio !== null) {
    if (typeof p.ratio !== 'object') bad(code, `${where}.ratio`, 'expected {cellular, wlan}');
    rc = intIn(p.ratio.cellular, 0, 100, `${where}.ratio.cellular`, code);
    rw = intIn(p.ratio.wlan, 0, 100, `${where}.ratio.wlan`, code);
    if (rc + rw !== 100) bad(code, `${where}.ratio`, 'cellular + wlan must be 100');
  }
  const nets =
    p.allowedNetworks === undefined || p.allowedNetworks === null
      ? null
      : JSON.stringify(list(p.allowedNetworks, 256, `${where}.allowedNetworks`, code, (x, w) => checkPrefix(x, w, code)));
  const ports =
    p.interceptPorts === undefined || p.interceptPorts === null
      ? null
      : JSON.stringify(list(p.interceptPorts, 256, `${where}.interceptPorts`, code, (x, w) => intIn(x, 1, 65535, w, code)).sort((a, b) => a - b));
  return {
    name,
    max_sessions_per_ue: optInt(p.maxSessionsPerUe, 0, 1_000_000, `${where}.maxSessionsPerUe`, code),
    max_subflows_per_session: optInt(p.maxSubflowsPerSession, 0, 8, `${where}.maxSubflowsPerSession`, code),
    max_sessions_per_nserver: optInt(p.maxSessionsPerNServer, 0, 1_000_000, `${where}.maxSessionsPerNServer`, code),
    steering_mode: mode,
    ratio_cellular: rc,
    ratio_wlan: rw,
    allowed_networks: nets,
    intercept_ports: ports,
  };
}

export function policyFromRow(r: PolicyRow): PolicySpec {
  const p: PolicySpec = { name: r.name };
  if (r.max_sessions_per_ue !== null) p.maxSessionsPerUe = r.max_sessions_per_ue;
  if (r.max_subflows_per_session !== null) p.maxSubflowsPerSession = r.max_subflows_per_session;
  if (r.max_sessions_per_nserver !== null) p.maxSessionsPerNServer = r.max_sessions_per_nserver;
  if (r.allowed_networks !== null) p.allowedNetworks = JSON.parse(r.allowed_networks) as string[];
  if (r.steering_mode !== null) p.steeringMode = r.steering_mode as PolicySpec['steeringMode'];
  if (r.ratio_cellular !== null && r.ratio_wlan !== null) p.ratio = { cellular: r.ratio_cellular, wlan: r.ratio_wlan };
  if (r.intercept_ports !== null) p.interceptPorts = JSON.parse(r.intercept_ports) as number[];
  return p;
}

export interface NormalSubscriber {
  name: string;
  policy: string | null;
  enabled: boolean;
  addresses: string[];
  macs: string[];
  credential: string | null | undefined;
}

export const CREDENTIAL_RE = /^scrypt\$[0-9]{1,7}\$[0-9]{1,3}\$[0-9]{1,3}\$[A-Za-z0-9+/=]{8,88}\$[A-Za-z0-9+/=]{16,172}$/;

export function normalizeSubscriber(s: SubscriberSpec, code: ErrorCode = 'DC_STORE_INVALID', where = 'subscriber'): NormalSubscriber {
  if (typeof s !== 'object' || s === null) bad(code, where, 'expected an object');
  const name = checkName(s.name, `${where}.name`, code);
  const policy = s.policy === undefined || s.policy === null ? null : checkName(s.policy, `${where}.policy`, code);
  if (s.enabled !== undefined && typeof s.enabled !== 'boolean') bad(code, `${where}.enabled`, 'expected a boolean');
  const addresses = s.addresses === undefined ? [] : list(s.addresses, MAX_IDS_PER_SUBSCRIBER, `${where}.addresses`, code, (x, w) => checkPrefix(x, w, code));
  const macs = s.macs === undefined ? [] : list(s.macs, MAX_IDS_PER_SUBSCRIBER, `${where}.macs`, code, (x, w) => checkMac(x, w, code));
  let credential: string | null | undefined;
  if (s.credential === null) credential = null;
  else if (s.credential !== undefined) {
    if (typeof s.credential !== 'string' || !CREDENTIAL_RE.test(s.credential)) bad(code, `${where}.credential`, 'expected an scrypt hash string');
    credential = s.credential;
  }
  return { name, policy, enabled: s.enabled ?? true, addresses, macs, credential };
}

export function normalizeNServerLimit(l: NServerLimitSpec, code: ErrorCode = 'DC_STORE_INVALID', where = 'nserverLimit'): NServerLimitSpec {
  if (typeof l !== 'object' || l === null) bad(code, where, 'expected an object');
  return { prefix: checkPrefix(l.prefix, `${where}.prefix`, code), maxSessions: intIn(l.maxSessions, 0, 1_000_000, `${where}.maxSessions`, code) };
}

export const LOCATION_RE = /^[A-Za-z0-9 ._@+-]{0,64}$/;

/** The default name of a candidate: its endpoint in the name alphabet. */
export function defaultProxyName(address: string, port: number): string {
  return `px-${address.replace(/:/g, '.')}-${port}`;
}

function checkEndpointAddress(v: unknown, where: string, code: ErrorCode): string {
  const a = checkPrefix(v, where, code);
  if (!(a.endsWith('/32') && !a.includes(':')) && !a.endsWith('/128')) bad(code, where, 'expected an address, not a prefix');
  const addr = a.slice(0, a.lastIndexOf('/'));
  // Never reachable as a peer: the unspecified address and multicast.
  if (addr === '0.0.0.0' || addr === '::' || /^(22[4-9]|23\d)\./.test(addr) || /^ff/i.test(addr)) bad(code, where, 'unreachable address (unspecified or multicast)');
  return addr;
}

function normalizeApp(x: unknown, where: string, code: ErrorCode): Required<ProxyAppSpec> {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) bad(code, where, 'expected an object');
  const a = x as Record<string, unknown>;
  for (const k of Object.keys(a)) if (k !== 'name' && k !== 'ports' && k !== 'prefixes') bad(code, `${where}.${k}`, 'unknown field');
  return {
    name: checkName(a.name, `${where}.name`, code),
    ports: a.ports === undefined ? [] : list(a.ports, 64, `${where}.ports`, code, (v, w) => intIn(v, 1, 65535, w, code)),
    prefixes: a.prefixes === undefined ? [] : list(a.prefixes, 256, `${where}.prefixes`, code, (v, w) => checkPrefix(v, w, code)),
  };
}

export function normalizeProxy(p: ProxySpec, code: ErrorCode = 'DC_STORE_INVALID', where = 'proxy'): Required<ProxySpec> {
  if (typeof p !== 'object' || p === null) bad(code, where, 'expected an object');
  const address = checkEndpointAddress(p.address, `${where}.address`, code);
  if (p.protocol !== 'convert' && p.protocol !== 'socks5') bad(code, `${where}.protocol`, 'expected convert|socks5');
  if (p.enabled !== undefined && typeof p.enabled !== 'boolean') bad(code, `${where}.enabled`, 'expected a boolean');
  const port = intIn(p.port, 1, 65535, `${where}.port`, code);
  if (p.type !== undefined && !PROXY_TYPES.includes(p.type)) bad(code, `${where}.type`, `expected one of ${PROXY_TYPES.join('|')}`);
  if (p.location !== undefined && (typeof p.location !== 'string' || !LOCATION_RE.test(p.location))) bad(code, `${where}.location`, 'expected a label of 0-64 characters [A-Za-z0-9 ._@+-]');
  let socks5: string | null = null;
  if (p.socks5 !== undefined && p.socks5 !== null) {
    const m = typeof p.socks5 === 'string' ? /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(p.socks5) : null;
    if (m === null) bad(code, `${where}.socks5`, 'expected "address:port"');
    const sa = checkEndpointAddress(m[1], `${where}.socks5`, code);
    const sp = intIn(Number(m[2]), 1, 65535, `${where}.socks5`, code);
    socks5 = sa.includes(':') ? `[${sa}]:${sp}` : `${sa}:${sp}`;
  }
  const apps = p.apps === undefined ? [] : list(p.apps, 64, `${where}.apps`, code, (v, w) => normalizeApp(v, w, code));
  if (new Set(apps.map((a) => a.name)).size !== apps.length) bad(code, `${where}.apps`, 'duplicate application name');
  return {
    address,
    port,
    protocol: p.protocol,
    priority: p.priority === undefined ? 0 : intIn(p.priority, -1000, 1000, `${where}.priority`, code),
    weight: p.weight === undefined ? 1 : intIn(p.weight, 0, 1000, `${where}.weight`, code),
    enabled: p.enabled ?? true,
    name: p.name === undefined ? defaultProxyName(address, port) : checkName(p.name, `${where}.name`, code),
    location: p.location ?? '',
    type: p.type ?? 'off-path',
    socks5,
    apps,
    policies: p.policies === undefined ? [] : list(p.policies, 64, `${where}.policies`, code, (v, w) => checkName(v, w, code)),
  };
}

/** A candidate list: every item valid, names and endpoints unique. */
export function normalizeProxies(list0: unknown, code: ErrorCode = 'DC_STORE_INVALID', where = 'proxies'): Array<Required<ProxySpec>> {
  if (!Array.isArray(list0)) bad(code, where, 'expected an array');
  if (list0.length > 1000) bad(code, where, 'at most 1000 entries');
  const out = (list0 as ProxySpec[]).map((p, i) => normalizeProxy(p, code, `${where}[${i}]`));
  const names = new Set<string>();
  const eps = new Set<string>();
  for (const p of out) {
    if (names.has(p.name)) bad(code, where, `duplicate name ${p.name}`);
    names.add(p.name);
    const k = `${p.address}|${p.port}`;
    if (eps.has(k)) bad(code, where, `duplicate address and port ${p.address}:${p.port}`);
    eps.add(k);
  }
  return out;
}

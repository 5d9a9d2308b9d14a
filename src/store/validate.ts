import { DuocellError, type ErrorCode } from '../core/errors.js';
import { canonicalMac, canonicalPrefix } from './net.js';
import {
  STEERING_MODES,
  type NServerLimitSpec,
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

export function normalizeProxy(p: ProxySpec, code: ErrorCode = 'DC_STORE_INVALID', where = 'proxy'): Required<ProxySpec> {
  if (typeof p !== 'object' || p === null) bad(code, where, 'expected an object');
  const a = checkPrefix(p.address, `${where}.address`, code);
  if (!(a.endsWith('/32') && !a.includes(':')) && !a.endsWith('/128')) bad(code, `${where}.address`, 'expected an address, not a prefix');
  if (p.protocol !== 'convert' && p.protocol !== 'socks5') bad(code, `${where}.protocol`, 'expected convert|socks5');
  if (p.enabled !== undefined && typeof p.enabled !== 'boolean') bad(code, `${where}.enabled`, 'expected a boolean');
  return {
    address: a.slice(0, a.lastIndexOf('/')),
    port: intIn(p.port, 1, 65535, `${where}.port`, code),
    protocol: p.protocol,
    priority: p.priority === undefined ? 0 : intIn(p.priority, -1000, 1000, `${where}.priority`, code),
    weight: p.weight === undefined ? 1 : intIn(p.weight, 0, 1000, `${where}.weight`, code),
    enabled: p.enabled ?? true,
  };
}

import { DuocellError, type ErrorCode } from '../core/errors.js';
import { compileSchema, dottedPath, toField, type Compiled, type FieldError } from '../core/schema.js';
import { canonicalMac, canonicalPrefix } from './net.js';
import {
  CREDENTIAL_PATTERN,
  LOCATION_PATTERN,
  macSchema,
  NAME_PATTERN,
  nameSchema,
  nserverLimitSchema,
  policySchema,
  prefixSchema,
  proxiesSchema,
  proxySchema,
  subscriberSchema,
  type Schema,
} from './schemas.js';
import type { NServerLimitSpec, PolicySpec, ProxyAppSpec, ProxyAuth, ProxySpec, SubscriberSpec } from './types.js';

/**
 * Values on their way into the store: checked against the store's JSON Schemas (schemas.ts,
 * compiled once), then brought to their canonical form (prefixes, MACs, sorted and unique
 * lists, defaults filled) with the few checks a schema cannot say. Everything the web page,
 * the CLI or a bundle writes passes here; a failure is DC_STORE_INVALID (or the code the
 * caller asks for) with the message `where.field: reason` and `detail.fields` in the API's
 * shape ({path, message}, dotted).
 */

export const NAME_RE = new RegExp(NAME_PATTERN);

/** `proxies[0].address` (the message's form) as `proxies.0.address` (the API's fields). */
const fieldOf = (where: string): string => where.replace(/\[(\d+)\]/g, '.$1');

function refuse(code: ErrorCode, fields: Array<FieldError & { at: string }>): never {
  const more = fields.length > 1 ? ` (and ${fields.length - 1} more)` : '';
  throw new DuocellError(code, `${fields[0]!.at}: ${fields[0]!.message}${more}`, {
    field: fields[0]!.at,
    fields: fields.map(({ path, message }) => ({ path, message })),
  });
}

function bad(code: ErrorCode, where: string, message: string): never {
  refuse(code, [{ at: where, path: fieldOf(where), message }]);
}

const compiled = new Map<Schema, Compiled<unknown>>();

/** What a pattern means, for the reader of a refusal (the engine can only quote it). */
const PATTERN_WORDS = new Map([
  [`does not match ${NAME_PATTERN}`, 'expected a name of 1-64 characters [A-Za-z0-9._@+-]'],
  [`does not match ${CREDENTIAL_PATTERN}`, 'expected an scrypt hash string'],
  [`does not match ${LOCATION_PATTERN}`, 'expected a label of 0-64 characters [A-Za-z0-9 ._@+-]'],
]);

/** `v` against `schema` (compiled on first use, once), or a refusal naming every failing field. */
function check<T>(schema: Schema, v: unknown, code: ErrorCode, where: string): asserts v is T {
  let c = compiled.get(schema);
  if (c === undefined) compiled.set(schema, (c = compileSchema(schema)));
  if (c(v)) return;
  refuse(
    code,
    c.issues().map((i) => {
      const at = dottedPath(where, i.path);
      const message = toField(i).message;
      return { at, path: fieldOf(at), message: PATTERN_WORDS.get(message) ?? message };
    }),
  );
}

export function checkName(v: unknown, where: string, code: ErrorCode = 'DC_STORE_INVALID'): string {
  check<string>(nameSchema, v, code, where);
  return v;
}

export function checkPrefix(v: unknown, where: string, code: ErrorCode = 'DC_STORE_INVALID'): string {
  check<string>(prefixSchema, v, code, where);
  return canonicalPrefix(v)!;
}

export function checkMac(v: unknown, where: string, code: ErrorCode = 'DC_STORE_INVALID'): string {
  check<string>(macSchema, v, code, where);
  return canonicalMac(v)!;
}

/** Canonical, unique, in the order given (`sort` to sort). */
function unique<T>(v: readonly T[] | undefined | null, f: (x: T) => T = (x) => x): T[] {
  return v === undefined || v === null ? [] : [...new Set(v.map(f))];
}

const canonical = (p: string): string => canonicalPrefix(p)!;

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
  check<PolicySpec>(policySchema, p, code, where);
  return policyRowOf(p, code, where);
}

/** A policy already checked against policySchema (here, or as part of a bundle document). */
export function policyRowOf(p: PolicySpec, code: ErrorCode, where: string): PolicyRow {
  const r = p.ratio ?? null;
  if (r !== null && r.cellular + r.wlan !== 100) bad(code, `${where}.ratio`, 'cellular + wlan must be 100');
  const nets = p.allowedNetworks ?? null;
  const ports = p.interceptPorts ?? null;
  return {
    name: p.name,
    max_sessions_per_ue: p.maxSessionsPerUe ?? null,
    max_subflows_per_session: p.maxSubflowsPerSession ?? null,
    max_sessions_per_nserver: p.maxSessionsPerNServer ?? null,
    steering_mode: p.steeringMode ?? null,
    ratio_cellular: r?.cellular ?? null,
    ratio_wlan: r?.wlan ?? null,
    allowed_networks: nets === null ? null : JSON.stringify(unique(nets, canonical)),
    intercept_ports: ports === null ? null : JSON.stringify(unique(ports).sort((a, b) => a - b)),
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

export function normalizeSubscriber(s: SubscriberSpec, code: ErrorCode = 'DC_STORE_INVALID', where = 'subscriber'): NormalSubscriber {
  check<SubscriberSpec>(subscriberSchema, s, code, where);
  return subscriberOf(s);
}

/** A subscriber already checked against subscriberSchema. */
export function subscriberOf(s: SubscriberSpec): NormalSubscriber {
  return {
    name: s.name,
    policy: s.policy ?? null,
    enabled: s.enabled ?? true,
    addresses: unique(s.addresses, canonical),
    macs: unique(s.macs, (m) => canonicalMac(m)!),
    credential: s.credential,
  };
}

export function normalizeNServerLimit(l: NServerLimitSpec, code: ErrorCode = 'DC_STORE_INVALID', where = 'nserverLimit'): NServerLimitSpec {
  check<NServerLimitSpec>(nserverLimitSchema, l, code, where);
  return nserverLimitOf(l);
}

/** A limit already checked against nserverLimitSchema. */
export function nserverLimitOf(l: NServerLimitSpec): NServerLimitSpec {
  return { prefix: canonical(l.prefix), maxSessions: l.maxSessions };
}

/** The default name of a candidate: its endpoint in the name alphabet. */
export function defaultProxyName(address: string, port: number): string {
  return `px-${address.replace(/:/g, '.')}-${port}`;
}

/** A peer's address: not a prefix, not the unspecified address, not multicast. */
function endpointAddress(v: string, where: string, code: ErrorCode): string {
  const a = canonicalPrefix(v);
  if (a === undefined) bad(code, where, 'expected an IPv4/IPv6 address');
  if (!(a.endsWith('/32') && !a.includes(':')) && !a.endsWith('/128')) bad(code, where, 'expected an address, not a prefix');
  const addr = a.slice(0, a.lastIndexOf('/'));
  if (addr === '0.0.0.0' || addr === '::' || /^(22[4-9]|23\d)\./.test(addr) || /^ff/i.test(addr)) bad(code, where, 'unreachable address (unspecified or multicast)');
  return addr;
}

function socks5Endpoint(v: string, where: string, code: ErrorCode): string {
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(v)!; // the schema's pattern
  const a = endpointAddress(m[1]!, where, code);
  const p = Number(m[2]);
  if (p < 1 || p > 65535) bad(code, where, 'expected a port 1..65535');
  return a.includes(':') ? `[${a}]:${p}` : `${a}:${p}`;
}

function proxyAuth(p: ProxySpec, where: string, code: ErrorCode): ProxyAuth {
  const a = p.auth!;
  if (p.protocol !== 'socks5') bad(code, where, 'credentials are for a socks5 candidate');
  if (Buffer.byteLength(a.username, 'utf8') > 255) bad(code, `${where}.username`, 'at most 255 bytes');
  if (a.password !== undefined && Buffer.byteLength(a.password, 'utf8') > 255) bad(code, `${where}.password`, 'at most 255 bytes');
  return a.password === undefined ? { username: a.username } : { username: a.username, password: a.password };
}

function normalizeApp(a: ProxyAppSpec, code: ErrorCode, where: string): ProxyAppSpec & Required<Omit<ProxyAppSpec, 'sni'>> {
  const ports = unique(a.ports);
  // Names compare case-insensitively and without a trailing dot (the pattern allows none).
  const sni = unique(a.sni?.map((n) => n.toLowerCase()));
  if (sni.length > 0 && ports.length === 0) bad(code, `${where}.sni`, 'an application matched by TLS SNI must name its ports (the ClientHello is read only on those)');
  return { name: a.name, ports, prefixes: unique(a.prefixes, canonical), ...(sni.length === 0 ? {} : { sni }) };
}

/** One candidate, already checked against proxySchema. */
function proxyOf(p: ProxySpec, code: ErrorCode, where: string): Required<ProxySpec> {
  const address = endpointAddress(p.address, `${where}.address`, code);
  const apps = unique(p.apps).map((a, i) => normalizeApp(a, code, `${where}.apps[${i}]`));
  if (new Set(apps.map((a) => a.name)).size !== apps.length) bad(code, `${where}.apps`, 'duplicate application name');
  return {
    address,
    port: p.port,
    protocol: p.protocol,
    priority: p.priority ?? 0,
    weight: p.weight ?? 1,
    enabled: p.enabled ?? true,
    name: p.name ?? defaultProxyName(address, p.port),
    location: p.location ?? '',
    type: p.type ?? 'off-path',
    socks5: p.socks5 === undefined || p.socks5 === null ? null : socks5Endpoint(p.socks5, `${where}.socks5`, code),
    auth: p.auth === undefined || p.auth === null ? null : proxyAuth(p, `${where}.auth`, code),
    apps,
    policies: unique(p.policies),
  };
}

export function normalizeProxy(p: ProxySpec, code: ErrorCode = 'DC_STORE_INVALID', where = 'proxy'): Required<ProxySpec> {
  check<ProxySpec>(proxySchema, p, code, where);
  return proxyOf(p, code, where);
}

/** A candidate list: every item valid, names and endpoints unique. */
export function normalizeProxies(list: unknown, code: ErrorCode = 'DC_STORE_INVALID', where = 'proxies'): Array<Required<ProxySpec>> {
  check<ProxySpec[]>(proxiesSchema, list, code, where);
  return proxiesOf(list, code, where);
}

/** A candidate list already checked against proxiesSchema: names and endpoints unique. */
export function proxiesOf(list: ProxySpec[], code: ErrorCode, where: string): Array<Required<ProxySpec>> {
  const out = list.map((p, i) => proxyOf(p, code, `${where}[${i}]`));
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

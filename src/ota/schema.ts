import { canonicalMac, parsePrefix } from '../store/net.js';

/**
 * The bundle document's JSON Schema (draft 2020-12 subset) and a small validator for exactly
 * the keywords it uses: type, properties, required, additionalProperties:false, items,
 * min/maxItems, min/maxLength, pattern, enum, const, minimum/maximum, format (date-time,
 * ip-prefix, mac). Written here rather than pulled in, so that the validator is small enough
 * to fuzz and its messages name the failing path (`/policy/subscribers/12/addresses/0`).
 */

export type Schema = {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean' | 'null' | Array<'string' | 'integer' | 'null' | 'object' | 'array' | 'boolean'>;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: false;
  items?: Schema;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  enum?: readonly unknown[];
  const?: unknown;
  minimum?: number;
  maximum?: number;
  format?: 'date-time' | 'ip-prefix' | 'mac';
  description?: string;
  oneOf?: Schema[];
  $schema?: string;
  $id?: string;
  title?: string;
};

export const BUNDLE_FORMAT = 'duocell-policy-bundle/1';
export const MAX_SUBSCRIBERS = 200_000;

const name: Schema = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$' };
const limit = (max: number): Schema => ({ type: ['integer', 'null'], minimum: 0, maximum: max });
const prefix: Schema = { type: 'string', maxLength: 49, format: 'ip-prefix' };

const policy: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name,
    maxSessionsPerUe: limit(1_000_000),
    maxSubflowsPerSession: limit(8),
    maxSessionsPerNServer: limit(1_000_000),
    allowedNetworks: { type: ['array', 'null'], maxItems: 256, items: prefix },
    steeringMode: { type: ['string', 'null'], enum: ['active-standby', 'priority', 'ratio', null] },
    ratio: {
      type: ['object', 'null'],
      additionalProperties: false,
      required: ['cellular', 'wlan'],
      properties: { cellular: { type: 'integer', minimum: 0, maximum: 100 }, wlan: { type: 'integer', minimum: 0, maximum: 100 } },
    },
    interceptPorts: { type: ['array', 'null'], maxItems: 256, items: { type: 'integer', minimum: 1, maximum: 65535 } },
  },
};

const subscriber: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name,
    policy: { type: ['string', 'null'], pattern: name.pattern! },
    enabled: { type: 'boolean' },
    addresses: { type: 'array', maxItems: 64, items: prefix },
    macs: { type: 'array', maxItems: 64, items: { type: 'string', maxLength: 17, format: 'mac' } },
    credential: { type: ['string', 'null'], maxLength: 300, pattern: '^scrypt\\$' },
  },
};

const nserverLimit: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['prefix', 'maxSessions'],
  properties: { prefix, maxSessions: { type: 'integer', minimum: 0, maximum: 1_000_000 } },
};

const proxy: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['address', 'port', 'protocol'],
  properties: {
    address: prefix,
    port: { type: 'integer', minimum: 1, maximum: 65535 },
    protocol: { type: 'string', enum: ['convert', 'socks5'] },
    priority: { type: 'integer', minimum: -1000, maximum: 1000 },
    weight: { type: 'integer', minimum: 0, maximum: 1000 },
    enabled: { type: 'boolean' },
    // candidate fields (issue 15): checked in full by store/validate.ts normalizeProxy
    name,
    location: { type: 'string', maxLength: 64 },
    type: { type: 'string', enum: ['on-path', 'off-path'] },
    socks5: { type: ['string', 'null'], maxLength: 64 },
    apps: {
      type: 'array',
      maxItems: 64,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: { name, ports: { type: 'array', maxItems: 64, items: { type: 'integer', minimum: 1, maximum: 65535 } }, prefixes: { type: 'array', maxItems: 256, items: prefix } },
      },
    },
    policies: { type: 'array', maxItems: 64, items: name },
  },
};

function policySet(requiredAll: boolean): Schema {
  return {
    type: 'object',
    additionalProperties: false,
    ...(requiredAll ? { required: ['policies', 'subscribers', 'nserverLimits', 'proxies'] } : {}),
    properties: {
      policies: { type: 'array', maxItems: 10_000, items: policy },
      subscribers: { type: 'array', maxItems: MAX_SUBSCRIBERS, items: subscriber },
      nserverLimits: { type: 'array', maxItems: 10_000, items: nserverLimit },
      proxies: { type: 'array', maxItems: 1_000, items: proxy },
    },
  };
}

const names = (max: number): Schema => ({ type: 'array', maxItems: max, items: name });

const common: Record<string, Schema> = {
  format: { const: BUNDLE_FORMAT },
  version: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
  issuedAt: { type: 'string', format: 'date-time', maxLength: 40 },
  expiresAt: { type: 'string', format: 'date-time', maxLength: 40 },
  target: {
    oneOf: [
      { const: 'all' },
      {
        type: 'object',
        additionalProperties: false,
        required: ['cells'],
        properties: { cells: { type: 'array', minItems: 1, maxItems: 100_000, items: { type: 'string', minLength: 1, maxLength: 128 } } },
      },
    ],
  },
  comment: { type: 'string', maxLength: 4096 },
};

export const FULL_SCHEMA: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['format', 'version', 'issuedAt', 'target', 'kind', 'policy'],
  properties: { ...common, kind: { const: 'full' }, policy: policySet(true) },
};

export const DELTA_SCHEMA: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['format', 'version', 'issuedAt', 'target', 'kind', 'base'],
  properties: {
    ...common,
    kind: { const: 'delta' },
    base: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    upsert: policySet(false),
    remove: {
      type: 'object',
      additionalProperties: false,
      properties: {
        policies: names(10_000),
        subscribers: names(MAX_SUBSCRIBERS),
        nserverLimits: { type: 'array', maxItems: 10_000, items: prefix },
        proxies: {
          type: 'array',
          maxItems: 1_000,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['address', 'port'],
            properties: { address: prefix, port: { type: 'integer', minimum: 1, maximum: 65535 } },
          },
        },
      },
    },
  },
};

/** The whole document schema, for docs and for other tools (`duocell ota schema`). */
export const BUNDLE_SCHEMA: Schema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://duocell.invalid/schema/policy-bundle-1.json',
  title: 'duocell policy bundle document',
  oneOf: [FULL_SCHEMA, DELTA_SCHEMA],
};

const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

const patternCache = new Map<string, RegExp>();

/** Validate `v` against `s`; the first problem as `path: message`, or undefined if valid. */
export function validate(v: unknown, s: Schema, path = ''): string | undefined {
  const at = path === '' ? '/' : path;
  if (s.oneOf !== undefined) {
    const errs: string[] = [];
    for (const alt of s.oneOf) {
      const e = validate(v, alt, path);
      if (e === undefined) return undefined;
      errs.push(e);
    }
    return errs.sort((a, b) => b.length - a.length)[0] ?? `${at}: matches no alternative`;
  }
  if (s.const !== undefined && v !== s.const) return `${at}: expected ${JSON.stringify(s.const)}`;
  if (s.type !== undefined) {
    const t = typeOf(v);
    const ok = Array.isArray(s.type) ? s.type.includes(t as never) : s.type === t || (s.type === 'number' && t === 'integer');
    if (!ok) return `${at}: expected ${Array.isArray(s.type) ? s.type.join(' or ') : s.type}, got ${t}`;
  }
  if (s.enum !== undefined && !s.enum.includes(v)) return `${at}: expected one of ${s.enum.map((x) => JSON.stringify(x)).join(', ')}`;
  if (typeof v === 'number') {
    if (s.minimum !== undefined && v < s.minimum) return `${at}: below ${s.minimum}`;
    if (s.maximum !== undefined && v > s.maximum) return `${at}: above ${s.maximum}`;
  } else if (typeof v === 'string') {
    if (s.minLength !== undefined && v.length < s.minLength) return `${at}: shorter than ${s.minLength}`;
    if (s.maxLength !== undefined && v.length > s.maxLength) return `${at}: longer than ${s.maxLength}`;
    if (s.pattern !== undefined) {
      let re = patternCache.get(s.pattern);
      if (re === undefined) patternCache.set(s.pattern, (re = new RegExp(s.pattern, 'u')));
      if (!re.test(v)) return `${at}: does not match ${s.pattern}`;
    }
    if (s.format === 'date-time' && (!DATE_TIME.test(v) || Number.isNaN(Date.parse(v)))) return `${at}: expected an RFC 3339 date-time`;
    if (s.format === 'ip-prefix' && parsePrefix(v) === undefined) return `${at}: expected an IPv4/IPv6 address or prefix`;
    if (s.format === 'mac' && canonicalMac(v) === undefined) return `${at}: expected a MAC address`;
  } else if (Array.isArray(v)) {
    if (s.minItems !== undefined && v.length < s.minItems) return `${at}: fewer than ${s.minItems} items`;
    if (s.maxItems !== undefined && v.length > s.maxItems) return `${at}: more than ${s.maxItems} items`;
    if (s.items !== undefined) {
      for (let i = 0; i < v.length; i++) {
        const e = validate(v[i], s.items, `${path}/${i}`);
        if (e !== undefined) return e;
      }
    }
  } else if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    for (const r of s.required ?? []) if (!Object.prototype.hasOwnProperty.call(o, r)) return `${at}: missing ${r}`;
    for (const k of Object.keys(o)) {
      const ps = s.properties !== undefined && Object.prototype.hasOwnProperty.call(s.properties, k) ? s.properties[k] : undefined;
      if (ps === undefined) {
        if (s.additionalProperties === false) return `${at}: unknown property ${JSON.stringify(k.slice(0, 64))}`;
        continue;
      }
      const e = validate(o[k], ps, `${path}/${k}`);
      if (e !== undefined) return e;
    }
  }
  return undefined;
}

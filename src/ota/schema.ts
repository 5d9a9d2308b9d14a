import { compileSchema, pointerPath, type SchemaIssue } from '../core/schema.js';

/**
 * The bundle document's JSON Schema (draft 2020-12), as data, compiled with the one schema
 * engine (core/schema.ts); its messages name the failing path as a JSON pointer
 * (`/policy/subscribers/12/addresses/0`).
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

/**
 * The first problem of `v` against `s` (compiled once, with the one schema engine), or
 * undefined if valid. One reason is enough for a bundle, and stopping there keeps a
 * 200 000-subscriber document quick.
 */
export function firstIssue(v: unknown, s: Schema): SchemaIssue | undefined {
  const check = compileSchema(s, { firstOnly: true });
  if (check(v)) return undefined;
  const issues = check.issues();
  // An alternative that failed (oneOf): the deepest complaint says the most.
  return issues.reduce((w, i) => (i.path.length > w.path.length ? i : w), issues[0] ?? { path: [], keyword: 'oneOf', message: 'matches no alternative' });
}

/** Validate `v` against `s`: the first problem as `/json/pointer: message`, or undefined if valid. */
export function validate(v: unknown, s: Schema, path = ''): string | undefined {
  const worst = firstIssue(v, s);
  if (worst === undefined) return undefined;
  const at = pointerPath(worst.path);
  return `${path === '' ? at : path + (at === '/' ? '' : at)}: ${worst.message}`;
}

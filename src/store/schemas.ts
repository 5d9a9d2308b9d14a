import { PROXY_TYPES, STEERING_MODES } from './types.js';

/**
 * The JSON Schemas (draft 2020-12) of what the store keeps: one source for the store's own
 * checks (validate.ts) and for the OTA bundle document (ota/schema.ts, which closes the items
 * with `additionalProperties: false`). Compiled once with the one schema engine
 * (core/schema.ts). What a schema cannot say (a ratio summing to 100, an endpoint that is an
 * address and not a prefix, unique names across a list) is checked in validate.ts.
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

/** Names of policies, subscribers, candidates, settings: 1-64 characters, a safe alphabet. */
export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$';
/** `scrypt$N$r$p$salt$hash`: a stored password hash, never a password. */
export const CREDENTIAL_PATTERN = '^scrypt\\$[0-9]{1,7}\\$[0-9]{1,3}\\$[0-9]{1,3}\\$[A-Za-z0-9+/=]{8,88}\\$[A-Za-z0-9+/=]{16,172}$';
/** A candidate's site label. */
export const LOCATION_PATTERN = '^[A-Za-z0-9 ._@+-]{0,64}$';
export const MAX_IDS_PER_SUBSCRIBER = 64;

const int = (minimum: number, maximum: number): Schema => ({ type: 'integer', minimum, maximum });
const limit = (max: number): Schema => ({ type: ['integer', 'null'], minimum: 0, maximum: max });
const list = (items: Schema, maxItems: number): Schema => ({ type: 'array', maxItems, items });
const port = int(1, 65535);

export const nameSchema: Schema = { type: 'string', pattern: NAME_PATTERN };
export const prefixSchema: Schema = { type: 'string', maxLength: 49, format: 'ip-prefix' };
export const macSchema: Schema = { type: 'string', maxLength: 17, format: 'mac' };

export const policySchema: Schema = {
  type: 'object',
  required: ['name'],
  properties: {
    name: nameSchema,
    maxSessionsPerUe: limit(1_000_000),
    maxSubflowsPerSession: limit(8),
    maxSessionsPerNServer: limit(1_000_000),
    allowedNetworks: { ...list(prefixSchema, 256), type: ['array', 'null'] },
    steeringMode: { type: ['string', 'null'], enum: [...STEERING_MODES, null] },
    ratio: {
      type: ['object', 'null'],
      additionalProperties: false,
      required: ['cellular', 'wlan'],
      properties: { cellular: int(0, 100), wlan: int(0, 100) },
    },
    interceptPorts: { ...list(port, 256), type: ['array', 'null'] },
  },
};

export const subscriberSchema: Schema = {
  type: 'object',
  required: ['name'],
  properties: {
    name: nameSchema,
    policy: { type: ['string', 'null'], pattern: NAME_PATTERN },
    enabled: { type: 'boolean' },
    addresses: list(prefixSchema, MAX_IDS_PER_SUBSCRIBER),
    macs: list(macSchema, MAX_IDS_PER_SUBSCRIBER),
    credential: { type: ['string', 'null'], maxLength: 300, pattern: CREDENTIAL_PATTERN },
  },
};

export const nserverLimitSchema: Schema = {
  type: 'object',
  required: ['prefix', 'maxSessions'],
  properties: { prefix: prefixSchema, maxSessions: int(0, 1_000_000) },
};

/** A TLS server name an application is matched by: `video.example` or `*.example.com` (any name under it). */
export const SNI_RULE_PATTERN = '^(\\*\\.)?[A-Za-z0-9_-]{1,63}(\\.[A-Za-z0-9_-]{1,63})*$';
export const sniRuleSchema: Schema = { type: 'string', maxLength: 255, pattern: SNI_RULE_PATTERN };

export const proxyAppSchema: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: { name: nameSchema, ports: list(port, 64), prefixes: list(prefixSchema, 256), sni: list(sniRuleSchema, 64) },
};

export const proxySchema: Schema = {
  type: 'object',
  required: ['address', 'port', 'protocol'],
  properties: {
    address: prefixSchema,
    port,
    protocol: { type: 'string', enum: ['convert', 'socks5'] },
    priority: int(-1000, 1000),
    weight: int(0, 1000),
    enabled: { type: 'boolean' },
    name: nameSchema,
    location: { type: 'string', maxLength: 64, pattern: LOCATION_PATTERN },
    type: { type: 'string', enum: PROXY_TYPES },
    socks5: { type: ['string', 'null'], maxLength: 64, pattern: '^\\[?([^\\]]+?)\\]?:(\\d{1,5})$' },
    // RFC 1929 credentials toward a SOCKS5 candidate; no password = keep the one stored for it.
    auth: {
      type: ['object', 'null'],
      additionalProperties: false,
      required: ['username'],
      properties: { username: { type: 'string', minLength: 1, maxLength: 255 }, password: { type: 'string', minLength: 1, maxLength: 255 } },
    },
    apps: list(proxyAppSchema, 64),
    policies: list(nameSchema, 64),
  },
};

export const proxiesSchema: Schema = list(proxySchema, 1000);

/** `s` with unknown members refused (a bundle's items). */
export function closed(s: Schema): Schema {
  return { ...s, additionalProperties: false };
}

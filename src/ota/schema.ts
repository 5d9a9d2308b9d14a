import { compileSchema, pointerPath, type SchemaIssue } from '../core/schema.js';
import { closed, nameSchema, nserverLimitSchema, policySchema, prefixSchema, proxySchema, subscriberSchema, type Schema } from '../store/schemas.js';

/**
 * The bundle document's JSON Schema (draft 2020-12), as data, compiled with the one schema
 * engine (core/schema.ts); its messages name the failing path as a JSON pointer
 * (`/policy/subscribers/12/addresses/0`).
 */

export type { Schema } from '../store/schemas.js';

export const BUNDLE_FORMAT = 'duocell-policy-bundle/1';
export const MAX_SUBSCRIBERS = 200_000;

const name = nameSchema;
const prefix = prefixSchema;
// the items are the store's own schemas (one source), closed to unknown members
const policy = closed(policySchema);
const subscriber = closed(subscriberSchema);
const nserverLimit = closed(nserverLimitSchema);
const proxy = closed(proxySchema);

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

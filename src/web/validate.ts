import { DuocellError } from '../core/errors.js';
import type { FieldError } from '../core/schema.js';
import type { PolicyDto, SubscriberInput } from './deps.js';

/**
 * What the API schemas (web/schemas.ts, with the formats of core/schema.ts for addresses,
 * prefixes and MACs) cannot say: the two ratio shares summing to 100, a primary path that is
 * allowed, at least one identifier, a name that is not blank. Each failure names its field
 * (dotted path, as the page's inputs are named) so the page can show it beside the input.
 */

export type { FieldError } from '../core/schema.js';

export function validationError(fields: FieldError[]): DuocellError {
  const message = fields.map((f) => `${f.path}: ${f.message}`).join('; ');
  return new DuocellError('DC_HTTP_BAD_REQUEST', message, { fields });
}

export function checkPolicy(p: PolicyDto, at: string, out: FieldError[]): void {
  const r = p.steering.ratio;
  if (r.cellular + r.wlan !== 100) {
    out.push({ path: `${at}.steering.ratio`, message: `the shares must sum to 100 (they sum to ${r.cellular + r.wlan})` });
  }
  if (!p.allowedAccess.includes(p.steering.primary)) {
    out.push({ path: `${at}.steering.primary`, message: `the primary path '${p.steering.primary}' is not among the allowed access types` });
  }
  if (p.steering.mode === 'ratio' && p.allowedAccess.length < 2) {
    const only = p.allowedAccess[0];
    const other = only === 'cellular' ? 'wlan' : 'cellular';
    if (r[other] > 0) out.push({ path: `${at}.steering.ratio.${other}`, message: `'${other}' is not an allowed access type, so its share must be 0` });
  }
}

export function checkSubscriber(s: SubscriberInput): void {
  const out: FieldError[] = [];
  if (s.name.trim() === '') out.push({ path: 'name', message: 'must not be blank' });
  if (s.identifiers.addresses.length === 0 && s.identifiers.macs.length === 0) {
    out.push({ path: 'identifiers.addresses', message: 'give at least one address, prefix or MAC' });
  }
  if (s.policy !== null) checkPolicy(s.policy, 'policy', out);
  if (out.length > 0) throw validationError(out);
}

export function checkPolicyDefaults(p: PolicyDto): void {
  const out: FieldError[] = [];
  checkPolicy(p, 'defaults', out);
  if (out.length > 0) throw validationError(out);
}

/** Fill the optional fields of a validated subscriber body. */
export function normaliseSubscriber(body: Partial<SubscriberInput> & Pick<SubscriberInput, 'name' | 'identifiers'>): SubscriberInput {
  return {
    name: body.name.trim(),
    enabled: body.enabled ?? true,
    identifiers: { addresses: body.identifiers.addresses, macs: body.identifiers.macs ?? [] },
    policy: body.policy ?? null,
  };
}

import { isIP } from 'node:net';
import { DuocellError } from '../core/errors.js';
import type { PolicySpec, SubscriberInput } from './deps.js';

/**
 * Checks that JSON schema cannot express: addresses and prefixes that parse, MAC syntax, the
 * two ratio shares summing to 100, a primary path that is allowed. Each failure names its
 * field (dotted path, as the page's inputs are named) so the page can show it beside the input.
 */

export interface FieldError {
  path: string;
  message: string;
}

export function validationError(fields: FieldError[]): DuocellError {
  const message = fields.map((f) => `${f.path}: ${f.message}`).join('; ');
  return new DuocellError('DC_HTTP_BAD_REQUEST', message, { fields });
}

/** An address (`192.0.2.1`, `2001:db8::1`) or prefix (`192.0.2.0/24`, `2001:db8::/32`). */
export function isAddressOrPrefix(s: string, requirePrefix = false): boolean {
  const slash = s.indexOf('/');
  if (slash === -1) return !requirePrefix && isIP(s) !== 0;
  const addr = s.slice(0, slash);
  const len = s.slice(slash + 1);
  const fam = isIP(addr);
  if (fam === 0 || !/^\d{1,3}$/.test(len)) return false;
  return Number(len) <= (fam === 4 ? 32 : 128);
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

export function checkPolicy(p: PolicySpec, at: string, out: FieldError[]): void {
  p.allowedNetworks.forEach((n, i) => {
    if (!isAddressOrPrefix(n, true)) out.push({ path: `${at}.allowedNetworks.${i}`, message: `'${n}' is not a CIDR prefix (e.g. 192.0.2.0/24)` });
  });
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
  s.identifiers.addresses.forEach((a, i) => {
    if (!isAddressOrPrefix(a)) out.push({ path: `identifiers.addresses.${i}`, message: `'${a}' is not an IP address or prefix` });
  });
  s.identifiers.macs.forEach((m, i) => {
    if (!MAC.test(m)) out.push({ path: `identifiers.macs.${i}`, message: `'${m}' is not a MAC address (aa:bb:cc:dd:ee:ff)` });
  });
  if (s.identifiers.addresses.length === 0 && s.identifiers.macs.length === 0) {
    out.push({ path: 'identifiers.addresses', message: 'give at least one address, prefix or MAC' });
  }
  if (s.policy !== null) checkPolicy(s.policy, 'policy', out);
  if (out.length > 0) throw validationError(out);
}

export function checkPolicyDefaults(p: PolicySpec): void {
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

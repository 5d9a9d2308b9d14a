import { DuocellError } from '../core/errors.js';
import type { NServerLimitSpec, PolicySet, ProxySpec } from './types.js';
import {
  nserverLimitOf,
  normalizeNServerLimit,
  normalizePolicy,
  normalizeProxies,
  normalizeSubscriber,
  policyRowOf,
  proxiesOf,
  subscriberOf,
  type NormalSubscriber,
  type PolicyRow,
} from './validate.js';

/** A policy set after normalisation and consistency checks: ready to write. */
export interface NormalPolicySet {
  policies: PolicyRow[];
  subscribers: NormalSubscriber[];
  nserverLimits: NServerLimitSpec[];
  proxies: Array<Required<ProxySpec>>;
}

export interface PolicyDelta {
  upsert: NormalPolicySet;
  remove: { policies: string[]; subscribers: string[]; nserverLimits: string[]; proxies: Array<{ address: string; port: number }> };
}

/**
 * Checks a whole policy set: every item valid, names unique, references resolvable, identifiers
 * unique. `shapeChecked`: the items have passed the store's schemas already (a bundle document,
 * whose schema is made of them), so only the canonical forms and the checks beyond a schema remain.
 */
export function normalizePolicySet(
  set: PolicySet,
  code: 'DC_STORE_INVALID' | 'DC_OTA_CONTENT_INVALID' = 'DC_STORE_INVALID',
  o: { shapeChecked?: boolean } = {},
): NormalPolicySet {
  const pre = o.shapeChecked === true;
  const policies = set.policies.map((p, i) => (pre ? policyRowOf : normalizePolicy)(p, code, `policies[${i}]`));
  const pnames = new Set<string>();
  for (const p of policies) {
    if (pnames.has(p.name)) throw new DuocellError(code, `policies: duplicate name ${p.name}`);
    pnames.add(p.name);
  }
  pnames.add('default');
  const subscribers = set.subscribers.map((s, i) => (pre ? subscriberOf(s) : normalizeSubscriber(s, code, `subscribers[${i}]`)));
  const snames = new Set<string>();
  const ids = new Map<string, string>();
  for (const s of subscribers) {
    if (snames.has(s.name)) throw new DuocellError(code, `subscribers: duplicate name ${s.name}`);
    snames.add(s.name);
    if (s.policy !== null && !pnames.has(s.policy)) throw new DuocellError(code, `subscriber ${s.name}: unknown policy ${s.policy}`);
    for (const id of [...s.addresses, ...s.macs]) {
      const other = ids.get(id);
      if (other !== undefined) throw new DuocellError(code, `identifier ${id} is claimed by both ${other} and ${s.name}`);
      ids.set(id, s.name);
    }
  }
  const nserverLimits = set.nserverLimits.map((l, i) => (pre ? nserverLimitOf(l) : normalizeNServerLimit(l, code, `nserverLimits[${i}]`)));
  if (new Set(nserverLimits.map((l) => l.prefix)).size !== nserverLimits.length) throw new DuocellError(code, 'nserverLimits: duplicate prefix');
  const proxies = (pre ? proxiesOf : normalizeProxies)(set.proxies, code, 'proxies');
  return { policies, subscribers, nserverLimits, proxies };
}

import { maskWords, parseAddr, parsePrefix, prefixKey } from './net.js';
import {
  BUILTIN_DEFAULTS,
  type EffectivePolicy,
  type PolicySpec,
  type ResolvedDefaults,
} from './types.js';

/**
 * The in-memory index behind Store.resolvePolicy(): every subscriber prefix, per address
 * family, in one hash map per prefix length, searched from the longest length present down.
 * Each entry holds the subscriber's EffectivePolicy computed once (frozen), so a lookup is an
 * address parse and a handful of Map gets. The Store rebuilds it after any change.
 */

export interface IndexInput {
  policies: PolicySpec[];
  /** subscriber name, its policy name (null → default), its canonical prefixes; enabled only. */
  subscribers: Array<{ name: string; policy: string | null; prefixes: string[] }>;
  /** Defaults from the board profile, under the `default` policy. */
  boardDefaults?: Partial<ResolvedDefaults>;
}

interface Family {
  /** prefix lengths present, longest first */
  lens: number[];
  maps: Map<number, Map<string | number, EffectivePolicy>>;
}

export function mergePolicy(base: ResolvedDefaults, p: PolicySpec | undefined): ResolvedDefaults {
  if (p === undefined) return base;
  return {
    maxSessionsPerUe: p.maxSessionsPerUe ?? base.maxSessionsPerUe,
    maxSubflowsPerSession: p.maxSubflowsPerSession ?? base.maxSubflowsPerSession,
    maxSessionsPerNServer: p.maxSessionsPerNServer ?? base.maxSessionsPerNServer,
    allowedNetworks: p.allowedNetworks ?? base.allowedNetworks,
    steeringMode: p.steeringMode ?? base.steeringMode,
    ratio: p.ratio ?? base.ratio,
    interceptPorts: p.interceptPorts ?? base.interceptPorts,
  };
}

function freeze(e: EffectivePolicy): EffectivePolicy {
  Object.freeze(e.allowedNetworks);
  Object.freeze(e.ratio);
  Object.freeze(e.interceptPorts);
  return Object.freeze(e);
}

export class PolicyIndex {
  private readonly v4: Family = { lens: [], maps: new Map() };
  private readonly v6: Family = { lens: [], maps: new Map() };
  readonly fallback: EffectivePolicy;
  readonly size: number;
  /** Every enabled subscriber's policy, by subscriber name (an authenticated client: cookie, SOCKS user). */
  readonly byName = new Map<string, EffectivePolicy>();

  constructor(input: IndexInput) {
    const byName = new Map(input.policies.map((p) => [p.name, p]));
    const base = mergePolicy({ ...BUILTIN_DEFAULTS, ...(input.boardDefaults ?? {}) }, byName.get('default'));
    this.fallback = freeze({ subscriber: null, matched: null, policy: 'default', ...base });
    const perPolicy = new Map<string, ResolvedDefaults>();
    let n = 0;
    for (const s of input.subscribers) {
      const pname = s.policy ?? 'default';
      let eff = perPolicy.get(pname);
      if (eff === undefined) {
        eff = pname === 'default' ? base : mergePolicy(base, byName.get(pname));
        perPolicy.set(pname, eff);
      }
      this.byName.set(s.name, freeze({ subscriber: s.name, matched: null, policy: pname, ...eff }));
      for (const pf of s.prefixes) {
        const p = parsePrefix(pf);
        if (p === undefined) continue;
        const fam = p.family === 4 ? this.v4 : this.v6;
        let m = fam.maps.get(p.len);
        if (m === undefined) {
          m = new Map();
          fam.maps.set(p.len, m);
        }
        const key = p.family === 4 ? p.words[0]! : prefixKey(6, p.words, p.len);
        m.set(key, freeze({ subscriber: s.name, matched: pf, policy: pname, ...eff }));
        n++;
      }
    }
    for (const f of [this.v4, this.v6]) f.lens = [...f.maps.keys()].sort((a, b) => b - a);
    this.size = n;
  }

  /** Longest-prefix match of a numeric address; the defaults when nothing matches or it is not an address. */
  lookup(addr: string): EffectivePolicy {
    const a = parseAddr(addr);
    if (a === undefined) return this.fallback;
    if (a.family === 4) {
      const w = a.words[0]!;
      for (const len of this.v4.lens) {
        const k = len === 0 ? 0 : len === 32 ? w : (w & (~0 << (32 - len))) >>> 0;
        const hit = this.v4.maps.get(len)!.get(k);
        if (hit !== undefined) return hit;
      }
      return this.fallback;
    }
    for (const len of this.v6.lens) {
      const hit = this.v6.maps.get(len)!.get(prefixKey(6, maskWords(a.words.slice(), len), len));
      if (hit !== undefined) return hit;
    }
    return this.fallback;
  }
}

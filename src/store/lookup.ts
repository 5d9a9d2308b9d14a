import type { Statement } from 'better-sqlite3';
import type { Db } from './db.js';
import { parseAddr, parsePrefix, prefixContains, type ParsedPrefix } from './net.js';
import type { NServerLimitsRepo } from './repos/nserver-limits.js';
import type { PoliciesRepo } from './repos/policies.js';
import { PolicyIndex } from './resolver.js';
import type { EffectivePolicy, ResolvedDefaults } from './types.js';

interface IndexRow {
  name: string;
  policy: string | null;
  value: string | null;
}

/**
 * Policy resolution served from memory: the subscriber prefix index and the N-server limits,
 * built on first use, dropped after a change through this Store (drop()) and within
 * `recheckMs` of a change by another process (PRAGMA data_version).
 */
export class Lookup {
  readonly #now: () => number;
  readonly #recheckMs: number;
  readonly #boardDefaults: Partial<ResolvedDefaults>;
  readonly #policies: PoliciesRepo;
  readonly #limits: NServerLimitsRepo;
  readonly #dataVersion: Statement<[], number>;
  // every enabled subscriber, once per prefix (value NULL: one known only by name/credential)
  readonly #rows: Statement<[], IndexRow>;
  #index: PolicyIndex | undefined;
  #nsIndex: Array<{ p: ParsedPrefix; max: number }> | undefined;
  #seenVersion = -1;
  #lastCheck = 0;

  constructor(db: Db, o: { now: () => number; recheckMs: number; boardDefaults: Partial<ResolvedDefaults>; policies: PoliciesRepo; limits: NServerLimitsRepo }) {
    this.#now = o.now;
    this.#recheckMs = o.recheckMs;
    this.#boardDefaults = o.boardDefaults;
    this.#policies = o.policies;
    this.#limits = o.limits;
    this.#dataVersion = db.prepare<[], number>('PRAGMA data_version').pluck();
    this.#rows = db.prepare(`SELECT s.name AS name, p.name AS policy, i.value AS value FROM subscribers s
      LEFT JOIN subscriber_ids i ON i.subscriber_id = s.id AND i.kind = 'prefix' LEFT JOIN policies p ON p.id = s.policy_id
      WHERE s.enabled = 1 ORDER BY s.id`);
  }

  /** Forget what was built (a change through this Store). */
  drop(): void {
    this.#index = undefined;
    this.#nsIndex = undefined;
  }

  /** The subscriber index, rebuilt when stale. */
  index(): PolicyIndex {
    this.#fresh();
    if (this.#index === undefined) this.#index = this.#build();
    return this.#index;
  }

  resolve(addr: string): EffectivePolicy {
    return this.index().lookup(addr);
  }

  /** The longest N-server limit matching `addr`, or null. */
  nserverLimit(addr: string): number | null {
    this.#fresh();
    if (this.#nsIndex === undefined) {
      this.#nsIndex = this.#limits
        .list()
        .map((l) => ({ p: parsePrefix(l.prefix)!, max: l.maxSessions }))
        .sort((a, b) => b.p.len - a.p.len);
    }
    const a = parseAddr(addr);
    if (a !== undefined) for (const e of this.#nsIndex) if (prefixContains(e.p, a)) return e.max;
    return null;
  }

  #fresh(): void {
    const t = this.#now();
    if (t - this.#lastCheck < this.#recheckMs && this.#index !== undefined) return;
    this.#lastCheck = t;
    const dv = this.#dataVersion.get();
    if (dv !== this.#seenVersion) {
      this.#seenVersion = dv ?? -1;
      this.drop();
    }
  }

  #build(): PolicyIndex {
    const subs = new Map<string, { name: string; policy: string | null; prefixes: string[] }>();
    for (const r of this.#rows.iterate()) {
      let s = subs.get(r.name);
      if (s === undefined) subs.set(r.name, (s = { name: r.name, policy: r.policy, prefixes: [] }));
      if (r.value !== null) s.prefixes.push(r.value);
    }
    return new PolicyIndex({ policies: this.#policies.list(), subscribers: [...subs.values()], boardDefaults: this.#boardDefaults });
  }
}

import type { Db } from './db.js';
import { sqliteError } from './db.js';
import type { AuditRepo } from './repos/audit.js';
import type { Origin } from './types.js';

/** Writes the audit row of the change being made, in its transaction. */
export type AuditFn = (action: string, entity: string, key: string | null, detail?: unknown) => void;

/**
 * The one way a repository writes: `fn` runs as one IMMEDIATE transaction with
 * synchronous=FULL (a committed policy change survives a power cut), the audit rows it names
 * are written in the same transaction, and once the outermost transaction commits the change
 * is announced (caches dropped, onChange listeners called, generation bumped). A write nested
 * in another (a bundle applying many) joins the outer transaction and announces nothing itself.
 */
export class Tx {
  readonly #db: Db;
  readonly #audit: AuditRepo;
  readonly #now: () => number;
  readonly #listeners = new Set<() => void>();
  #gen = 0;

  constructor(db: Db, audit: AuditRepo, now: () => number) {
    this.#db = db;
    this.#audit = audit;
    this.#now = now;
  }

  /** A write with no audit row (a generated secret, a cache): still atomic and announced. */
  write<T>(what: string, fn: () => T): T {
    const outer = !this.#db.inTransaction;
    if (outer) this.#db.pragma('synchronous = FULL');
    try {
      const r = this.#db.transaction(fn).immediate();
      if (outer) this.#changed();
      return r;
    } catch (e) {
      throw sqliteError(e, what);
    } finally {
      if (outer) this.#db.pragma('synchronous = NORMAL');
    }
  }

  /** A change made by `origin`: `fn` says what it did through `audit`, in the same transaction. */
  audited<T>(what: string, origin: Origin | string, fn: (audit: AuditFn) => T): T {
    return this.write(what, () => fn((action, entity, key, detail) => this.#audit.insert(this.#now(), origin, action, entity, key, detail)));
  }

  /** A single statement outside any transaction (volatile data, runtime state): only its error is ours. */
  run<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw sqliteError(e, what);
    }
  }

  onChange(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  get generation(): number {
    return this.#gen;
  }

  #changed(): void {
    this.#gen++;
    for (const l of this.#listeners) {
      try {
        l();
      } catch {
        /* a listener's failure is its own */
      }
    }
  }
}

import type { Statement } from 'better-sqlite3';
import { DuocellError } from '../../core/errors.js';
import type { Db } from '../db.js';
import type { Tx } from '../tx.js';
import type { NServerLimitSpec, Origin } from '../types.js';
import { normalizeNServerLimit } from '../validate.js';

/** The operator's box-wide session limits per N-server prefix (table `nserver_limits`). */
export class NServerLimitsRepo {
  readonly #tx: Tx;
  readonly #all: Statement<[], NServerLimitSpec>;
  readonly #set: Statement<[string, number]>;
  readonly #del: Statement<[string]>;
  readonly #delAll: Statement<[]>;

  constructor(db: Db, tx: Tx) {
    this.#tx = tx;
    this.#all = db.prepare('SELECT prefix, max_sessions AS maxSessions FROM nserver_limits ORDER BY prefix');
    this.#set = db.prepare('INSERT INTO nserver_limits (prefix, max_sessions) VALUES (?, ?) ON CONFLICT(prefix) DO UPDATE SET max_sessions = excluded.max_sessions');
    this.#del = db.prepare('DELETE FROM nserver_limits WHERE prefix = ?');
    this.#delAll = db.prepare('DELETE FROM nserver_limits');
  }

  list(): NServerLimitSpec[] {
    return this.#all.all();
  }

  set(spec: NServerLimitSpec, origin: Origin): NServerLimitSpec {
    const l = normalizeNServerLimit(spec);
    return this.#tx.audited('set nserver limit', origin, (audit) => {
      this.put(l);
      audit('set', 'nserver-limit', l.prefix, { maxSessions: l.maxSessions });
      return l;
    });
  }

  remove(prefix: string, origin: Origin): void {
    const l = normalizeNServerLimit({ prefix, maxSessions: 0 });
    this.#tx.audited('remove nserver limit', origin, (audit) => {
      if (this.delete(l.prefix) === 0) throw new DuocellError('DC_STORE_NOT_FOUND', `no limit for ${l.prefix}`);
      audit('remove', 'nserver-limit', l.prefix);
    });
  }

  // ---- raw writes, inside a caller's transaction (bundles) -------------------------------

  put(l: NServerLimitSpec): void {
    this.#set.run(l.prefix, l.maxSessions);
  }

  delete(prefix: string): number {
    return this.#del.run(prefix).changes;
  }

  /** Replace every limit with `list`. */
  replace(list: NServerLimitSpec[]): void {
    this.#delAll.run();
    for (const l of list) this.put(l);
  }
}

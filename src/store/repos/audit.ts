import type { Statement } from 'better-sqlite3';
import type { Db } from '../db.js';
import type { AuditEntry, Origin } from '../types.js';

type AuditRow = Omit<AuditEntry, 'detail'> & { detail: string | null };

/** The audit log: one row per change, written by the transaction helper (tx.ts), never directly. */
export class AuditRepo {
  readonly #insert: Statement<[number, string, string, string, string | null, string | null]>;
  readonly #list: Statement<[number, number], AuditRow>;

  constructor(db: Db) {
    this.#insert = db.prepare('INSERT INTO audit_log (at, origin, action, entity, entity_key, detail) VALUES (?, ?, ?, ?, ?, ?)');
    this.#list = db.prepare('SELECT id, at, origin, action, entity, entity_key AS key, detail FROM audit_log WHERE id < ? ORDER BY id DESC LIMIT ?');
  }

  insert(at: number, origin: Origin | string, action: string, entity: string, key: string | null, detail?: unknown): void {
    this.#insert.run(at, origin, action, entity, key, detail === undefined ? null : JSON.stringify(detail));
  }

  /** Newest first; `before` an id (paging), `limit` 1..10 000 (default 100). */
  list(o: { limit?: number; before?: number } = {}): AuditEntry[] {
    const rows = this.#list.all(o.before ?? Number.MAX_SAFE_INTEGER, Math.max(1, Math.min(o.limit ?? 100, 10_000)));
    return rows.map((r) => ({ ...r, detail: r.detail === null ? null : (JSON.parse(r.detail) as unknown) }));
  }
}

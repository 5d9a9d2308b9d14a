import type { Statement } from 'better-sqlite3';
import type { Db } from '../db.js';
import type { Tx } from '../tx.js';

/** One row of the kernel ledger (migrations/004-kernel-ledger.ts). */
export interface LedgerRow {
  kind: 'sysctl' | 'limits' | 'endpoint' | 'table';
  key: string;
  value: string;
}

type Put = Statement<[LedgerRow['kind'], string, string, number]>;

/** What duocell changed in the kernel (table `kernel_ledger`), so a restart can undo it. */
export class LedgerRepo {
  readonly #tx: Tx;
  readonly #now: () => number;
  readonly #all: Statement<[], LedgerRow>;
  readonly #keepFirst: Put;
  readonly #replace: Put;
  readonly #del: Statement<[LedgerRow['kind'], string]>;

  constructor(db: Db, tx: Tx, now: () => number) {
    this.#tx = tx;
    this.#now = now;
    this.#all = db.prepare('SELECT kind, key, value FROM kernel_ledger ORDER BY recorded_at, kind, key');
    const put = 'INSERT INTO kernel_ledger (kind, key, value, recorded_at) VALUES (?, ?, ?, ?) ON CONFLICT(kind, key)';
    this.#keepFirst = db.prepare(`${put} DO NOTHING`);
    this.#replace = db.prepare(`${put} DO UPDATE SET value = excluded.value`);
    this.#del = db.prepare('DELETE FROM kernel_ledger WHERE kind = ? AND key = ?');
  }

  /** Every ledger row, oldest first. */
  list(): LedgerRow[] {
    return this.#all.all();
  }

  /**
   * Record a row before the kernel change it describes. `keepFirst`: an existing row stays as
   * it is (an original value is the one found before the FIRST change). Synchronous and committed
   * on return (WAL), so a kill right after the kernel change still finds it.
   */
  record(kind: LedgerRow['kind'], key: string, value: string, o: { keepFirst: boolean }): void {
    const st = o.keepFirst ? this.#keepFirst : this.#replace;
    this.#tx.run('record a kernel change', () => st.run(kind, key, value, this.#now()));
  }

  forget(kind: LedgerRow['kind'], key: string): void {
    this.#tx.run('forget a kernel change', () => this.#del.run(kind, key));
  }
}

import type { Statement } from 'better-sqlite3';
import { DuocellError } from '../../core/errors.js';
import type { Db } from '../db.js';
import type { Tx } from '../tx.js';
import type { Origin } from '../types.js';
import { checkName } from '../validate.js';

/** Key-value settings (table `settings`); `runtime.*` keys hold runtime state and are not audited. */
export class SettingsRepo {
  readonly #tx: Tx;
  readonly #get: Statement<[string], string>;
  readonly #set: Statement<[string, string]>;
  readonly #del: Statement<[string]>;

  constructor(db: Db, tx: Tx) {
    this.#tx = tx;
    this.#get = db.prepare<[string], string>('SELECT value FROM settings WHERE key = ?').pluck();
    this.#set = db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
    this.#del = db.prepare('DELETE FROM settings WHERE key = ?');
  }

  get(key: string): string | undefined {
    return this.#get.get(key);
  }

  set(key: string, value: string | null, origin: Origin): void {
    checkName(key, 'setting');
    this.#tx.audited('set setting', origin, (audit) => {
      if (value === null) this.#del.run(key);
      else this.#set.run(key, value);
      // values may be secrets (hashes, session tokens): the audit names the key, never the value
      audit(value === null ? 'remove' : 'set', 'setting', key, value === null ? undefined : { length: value.length });
    });
  }

  /** Runtime state (poll status and the like): a `runtime.*` key, written without an audit row. */
  setRuntime(key: string, value: string): void {
    if (!key.startsWith('runtime.')) throw new DuocellError('DC_STORE_INVALID', 'runtime keys start with runtime.');
    this.#tx.run('set runtime value', () => this.#set.run(key, value));
  }
}

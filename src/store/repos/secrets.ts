import { randomBytes } from 'node:crypto';
import type { Statement } from 'better-sqlite3';
import { hashPassword, verifyPassword, type ScryptParams } from '../credentials.js';
import type { Db } from '../db.js';
import type { Tx } from '../tx.js';
import type { Origin } from '../types.js';
import { checkName } from '../validate.js';

/** Generated secrets (table `secrets`) and local credentials such as the web page's `admin` (table `credentials`). */
export class SecretsRepo {
  readonly #tx: Tx;
  readonly #now: () => number;
  readonly #scrypt: ScryptParams;
  readonly #secretGet: Statement<[string], Buffer>;
  readonly #secretPut: Statement<[string, Buffer, number]>;
  readonly #credGet: Statement<[string], string>;
  readonly #credPut: Statement<[string, string, number]>;

  constructor(db: Db, tx: Tx, now: () => number, scrypt: ScryptParams) {
    this.#tx = tx;
    this.#now = now;
    this.#scrypt = scrypt;
    this.#secretGet = db.prepare<[string], Buffer>('SELECT value FROM secrets WHERE name = ?').pluck();
    this.#secretPut = db.prepare('INSERT OR IGNORE INTO secrets (name, value, created_at) VALUES (?, ?, ?)');
    this.#credGet = db.prepare<[string], string>('SELECT hash FROM credentials WHERE name = ?').pluck();
    this.#credPut = db.prepare('INSERT INTO credentials (name, hash, updated_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET hash = excluded.hash, updated_at = excluded.updated_at');
  }

  /** A random secret (e.g. `web-session` for cookie signing), created on first use. */
  secret(name: string, bytes = 32): Buffer {
    const have = this.#secretGet.get(name);
    if (have !== undefined) return have;
    this.#tx.write('create secret', () => this.#secretPut.run(name, randomBytes(bytes), this.#now()));
    return this.#secretGet.get(name)!;
  }

  /** Set a local credential as an scrypt hash. */
  async setCredential(name: string, password: string, origin: Origin): Promise<void> {
    checkName(name, 'credential');
    const hash = await hashPassword(password, this.#scrypt);
    this.#tx.audited('set credential', origin, (audit) => {
      this.#credPut.run(name, hash, this.#now());
      audit('set-credential', 'credential', name);
    });
  }

  hasCredential(name: string): boolean {
    return this.#credGet.get(name) !== undefined;
  }

  async verifyCredential(name: string, password: string): Promise<boolean> {
    return verifyPassword(password, this.#credGet.get(name));
  }
}

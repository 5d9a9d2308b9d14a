import type { Statement } from 'better-sqlite3';
import { DuocellError } from '../../core/errors.js';
import type { Db } from '../db.js';
import { parseAddr } from '../net.js';
import type { Tx } from '../tx.js';
import type { MServerEntry } from '../types.js';

/** Servers seen to speak MPTCP, each until its TTL runs out (table `mserver_cache`): volatile, no audit, ordinary durability. */
export class MServersRepo {
  readonly #tx: Tx;
  readonly #now: () => number;
  readonly #put: Statement<[string, number, number]>;
  readonly #get: Statement<[string, number], number>;
  readonly #all: Statement<[number], MServerEntry>;
  readonly #purge: Statement<[number]>;
  readonly #del: Statement<[string, number]>;

  constructor(db: Db, tx: Tx, now: () => number) {
    this.#tx = tx;
    this.#now = now;
    this.#put = db.prepare('INSERT INTO mserver_cache (address, port, expires_at) VALUES (?, ?, ?) ON CONFLICT(address, port) DO UPDATE SET expires_at = excluded.expires_at');
    this.#get = db.prepare<[string, number], number>('SELECT expires_at FROM mserver_cache WHERE address = ? AND port = ?').pluck();
    this.#all = db.prepare('SELECT address, port, expires_at AS expiresAt FROM mserver_cache WHERE expires_at > ? ORDER BY address, port');
    this.#purge = db.prepare('DELETE FROM mserver_cache WHERE expires_at <= ?');
    this.#del = db.prepare('DELETE FROM mserver_cache WHERE address = ? AND port = ?');
  }

  remember(address: string, port: number, ttlMs: number): void {
    if (parseAddr(address) === undefined || !Number.isInteger(port) || port < 1 || port > 65535 || !(ttlMs > 0)) {
      throw new DuocellError('DC_STORE_INVALID', 'mserver: expected an address, a port and a positive TTL');
    }
    this.#tx.run('remember mserver', () => this.#put.run(address, port, this.#now() + Math.floor(ttlMs)));
  }

  has(address: string, port: number): boolean {
    const exp = this.#get.get(address, port);
    return exp !== undefined && exp > this.#now();
  }

  forget(address: string, port: number): void {
    this.#del.run(address, port);
  }

  list(): MServerEntry[] {
    return this.#all.all(this.#now());
  }

  purge(): number {
    return this.#purge.run(this.#now()).changes;
  }
}

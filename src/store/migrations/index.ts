import { sql as m001 } from './001-initial.js';
import { sql as m002 } from './002-audit-ota.js';
import { sql as m003 } from './003-proxies-cache.js';
import { sql as m004 } from './004-kernel-ledger.js';
import { sql as m005 } from './005-proxy-candidates.js';
import { sql as m006 } from './006-smallest-delay.js';
import { sql as m007 } from './007-proxy-auth.js';

export interface Migration {
  /** Schema version after this migration (PRAGMA user_version). */
  readonly version: number;
  readonly name: string;
  readonly sql: string;
  /**
   * A table rebuild (new table, copy, drop, rename): run with foreign keys off, as SQLite
   * requires, and checked with PRAGMA foreign_key_check before the commit.
   */
  readonly rebuild?: boolean;
}

/**
 * Every schema migration, in order. Never edit a released one: add NNN-name.ts and list it
 * here. Each runs in its own transaction after a backup of the file.
 */
export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'initial', sql: m001 },
  { version: 2, name: 'audit-ota', sql: m002 },
  { version: 3, name: 'proxies-cache', sql: m003 },
  { version: 4, name: 'kernel-ledger', sql: m004 },
  { version: 5, name: 'proxy-candidates', sql: m005 },
  { version: 6, name: 'smallest-delay', sql: m006, rebuild: true },
  { version: 7, name: 'proxy-auth', sql: m007 },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

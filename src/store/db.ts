import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { DuocellError, type ErrorCode } from '../core/errors.js';
import { logger } from '../core/logger.js';
import { MIGRATIONS, SCHEMA_VERSION, type Migration } from './migrations/index.js';

const log = logger('duocell:store');

export type Db = Database.Database;

export const DB_FILE = 'duocell.db';

/** The state directory: $DUOCELL_STATE_DIR or /var/lib/duocell. */
export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DUOCELL_STATE_DIR !== undefined && env.DUOCELL_STATE_DIR !== '' ? env.DUOCELL_STATE_DIR : '/var/lib/duocell';
}

/** Turn a better-sqlite3 error into a DuocellError with a store code. */
export function sqliteError(e: unknown, what: string, fallback: ErrorCode = 'DC_INTERNAL'): DuocellError {
  if (e instanceof DuocellError) return e;
  const code = (e as { code?: unknown })?.code;
  const msg = `${what}: ${(e as Error)?.message ?? String(e)}`;
  if (typeof code === 'string') {
    if (code.startsWith('SQLITE_CONSTRAINT')) return new DuocellError('DC_STORE_CONSTRAINT', msg, { cause: e, sqlite: code });
    if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') return new DuocellError('DC_STORE_BUSY', msg, { cause: e, sqlite: code });
    if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT' || code === 'SQLITE_CANTOPEN' || code === 'SQLITE_READONLY') {
      return new DuocellError('DC_STORE_OPEN', msg, { cause: e, sqlite: code });
    }
  }
  return new DuocellError(fallback, msg, { cause: e, ...(typeof code === 'string' ? { sqlite: code } : {}) });
}

export interface OpenDbOptions {
  /** Full path of the database file, or ':memory:'. */
  file: string;
  /** Apply migrations only up to this version (tests of the migration chain). */
  targetVersion?: number;
  /** Take a db.backup() before each migration of a non-empty database (default true). */
  backups?: boolean;
  readonly?: boolean;
  /** Milliseconds to wait on a lock held by another process (default 5000). */
  busyTimeoutMs?: number;
}

/**
 * Open (creating if needed) the state database: WAL, foreign keys on, synchronous=NORMAL for
 * ordinary writes (policy writes raise it to FULL, see Store.policyWrite), then migrate.
 */
export async function openDb(o: OpenDbOptions): Promise<Db> {
  if (o.file !== ':memory:' && !o.readonly) {
    try {
      fs.mkdirSync(path.dirname(o.file), { recursive: true, mode: 0o750 });
    } catch (e) {
      throw new DuocellError('DC_STORE_OPEN', `cannot create ${path.dirname(o.file)}: ${(e as Error).message}`, { cause: e });
    }
  }
  let db: Db;
  try {
    db = new Database(o.file, { readonly: o.readonly ?? false, fileMustExist: o.readonly ?? false, timeout: o.busyTimeoutMs ?? 5000 });
  } catch (e) {
    throw sqliteError(e, `cannot open ${o.file}`, 'DC_STORE_OPEN');
  }
  try {
    if (!o.readonly) {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
    }
    db.pragma('foreign_keys = ON');
    // probe: a file that is not SQLite fails here
    db.pragma('schema_version', { simple: true });
    if (!o.readonly) await migrate(db, o.file, o.targetVersion ?? SCHEMA_VERSION, o.backups ?? true);
    else if (userVersion(db) > SCHEMA_VERSION) throw newerError(db);
  } catch (e) {
    db.close();
    throw sqliteError(e, `cannot open ${o.file}`, 'DC_STORE_OPEN');
  }
  return db;
}

export function userVersion(db: Db): number {
  return db.pragma('user_version', { simple: true }) as number;
}

function newerError(db: Db): DuocellError {
  return new DuocellError('DC_STORE_SCHEMA_NEWER', `schema version ${userVersion(db)} is newer than this duocell knows (${SCHEMA_VERSION})`);
}

/**
 * Apply pending migrations one at a time: backup, then the migration and the new
 * user_version in one transaction. A failure leaves the database at the previous version.
 */
export async function migrate(db: Db, file: string, target: number = SCHEMA_VERSION, backups = true): Promise<number[]> {
  const from = userVersion(db);
  if (from > SCHEMA_VERSION) throw newerError(db);
  const applied: number[] = [];
  for (const m of MIGRATIONS) {
    if (m.version <= userVersion(db) || m.version > target) continue;
    if (backups && file !== ':memory:' && userVersion(db) > 0) await backupBefore(db, file, m);
    // PRAGMA foreign_keys is a no-op inside a transaction: a rebuild turns it off around it.
    const fkWasOn = m.rebuild === true && db.pragma('foreign_keys', { simple: true }) === 1;
    if (fkWasOn) db.pragma('foreign_keys = OFF');
    try {
      db.transaction(() => {
        db.exec(m.sql);
        if (m.rebuild) {
          const bad = db.pragma('foreign_key_check') as unknown[];
          if (bad.length > 0) throw new Error(`${bad.length} foreign key violation(s) after the rebuild: ${JSON.stringify(bad.slice(0, 3))}`);
        }
        db.pragma(`user_version = ${m.version}`);
      }).immediate();
    } catch (e) {
      throw new DuocellError('DC_STORE_MIGRATION', `migration ${String(m.version).padStart(3, '0')}-${m.name} failed: ${(e as Error).message}`, {
        cause: e,
        version: m.version,
      });
    } finally {
      if (fkWasOn) db.pragma('foreign_keys = ON');
    }
    log.info({ version: m.version, name: m.name }, 'schema migrated');
    applied.push(m.version);
  }
  return applied;
}

async function backupBefore(db: Db, file: string, m: Migration): Promise<void> {
  const dest = `${file}.bak-v${userVersion(db)}`;
  try {
    await db.backup(dest);
  } catch (e) {
    throw new DuocellError('DC_STORE_MIGRATION', `backup before migration ${m.version} failed: ${(e as Error).message}`, { cause: e });
  }
  log.info({ dest, before: m.version }, 'database backed up before migration');
}

/** The schema as text, normalised, for comparing two databases. */
export function schemaDump(db: Db): string {
  const rows = db
    .prepare(`SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name`)
    .all() as Array<{ type: string; name: string; tbl_name: string; sql: string | null }>;
  return rows.map((r) => `${r.type} ${r.name} ON ${r.tbl_name}: ${(r.sql ?? '').replace(/\s+/g, ' ').trim()}`).join('\n') + `\nuser_version ${userVersion(db)}`;
}

/** The state store: SQLite file, migrations, repositories, policy resolution. */
export { Store, normalizePolicySet, type LedgerRow, type StoreOptions, type NormalPolicySet, type PolicyDelta, type OtaVersionState, type ApplyRecord, type TrustedKeyRow } from './store.js';
export { openDb, migrate, schemaDump, stateDir, userVersion, DB_FILE, type Db } from './db.js';
export { MIGRATIONS, SCHEMA_VERSION } from './migrations/index.js';
export { hashPassword, verifyPassword, cookieDigest, DEFAULT_SCRYPT, type ScryptParams } from './credentials.js';
export { canonicalPrefix, canonicalMac, parseAddr, parsePrefix } from './net.js';
export * from './types.js';
export { normalizePolicy, normalizeSubscriber, normalizeNServerLimit, normalizeProxy, checkName, NAME_RE } from './validate.js';

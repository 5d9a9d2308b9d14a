import path from 'node:path';
import { createHash } from 'node:crypto';
import { DB_FILE, openDb, sqliteError, stateDir, userVersion, type Db } from './db.js';
import { DEFAULT_SCRYPT, type ScryptParams } from './credentials.js';
import { Lookup } from './lookup.js';
import type { NormalPolicySet, PolicyDelta } from './policy-set.js';
import { AuditRepo } from './repos/audit.js';
import { LedgerRepo, type LedgerRow } from './repos/ledger.js';
import { MServersRepo } from './repos/mservers.js';
import { NServerLimitsRepo } from './repos/nserver-limits.js';
import { OtaRepo, type ApplyRecord, type OtaVersionState, type TrustedKeyRow } from './repos/ota.js';
import { PoliciesRepo } from './repos/policies.js';
import { ProxiesRepo, type Proxy } from './repos/proxies.js';
import { SecretsRepo } from './repos/secrets.js';
import { SettingsRepo } from './repos/settings.js';
import { SubscribersRepo } from './repos/subscribers.js';
import { mergePolicy } from './resolver.js';
import { Tx } from './tx.js';
import { normalizeProxies } from './validate.js';
import {
  BUILTIN_DEFAULTS,
  type AuditEntry,
  type EffectivePolicy,
  type MServerEntry,
  type NServerLimitSpec,
  type Origin,
  type PolicySet,
  type PolicySpec,
  type ProxySpec,
  type ResolvedDefaults,
  type SubscriberRecord,
  type SubscriberSpec,
} from './types.js';

export { normalizePolicySet, type NormalPolicySet, type PolicyDelta } from './policy-set.js';
export type { ApplyRecord, OtaVersionState, TrustedKeyRow } from './repos/ota.js';
export type { LedgerRow } from './repos/ledger.js';

/**
 * The state store: one SQLite file behind a façade. Each table group has its repository
 * (repos/*.ts) with its own typed statements; every change goes through the transaction
 * helper (tx.ts), which writes its audit row in the same transaction and announces it; the
 * in-memory policy index (lookup.ts) serves resolvePolicy(). No decisions are taken here:
 * callers (services, ota, web, cli) decide; the store keeps.
 */

export interface StoreOptions {
  /** State directory (default $DUOCELL_STATE_DIR or /var/lib/duocell); the file is duocell.db in it. */
  dir?: string;
  /** Full file path (overrides dir); ':memory:' for a throw-away store. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Defaults from the board profile, between the built-in ones and the `default` policy. */
  boardDefaults?: Partial<ResolvedDefaults>;
  scrypt?: ScryptParams;
  now?: () => number;
  backups?: boolean;
  /** How often (ms) resolvePolicy() checks for commits by other processes (default 250). */
  recheckMs?: number;
}

export class Store {
  readonly file: string;
  readonly #db: Db;
  readonly #tx: Tx;
  readonly #audit: AuditRepo;
  readonly #policies: PoliciesRepo;
  readonly #subscribers: SubscribersRepo;
  readonly #limits: NServerLimitsRepo;
  readonly #proxies: ProxiesRepo;
  readonly #mservers: MServersRepo;
  readonly #settings: SettingsRepo;
  readonly #secrets: SecretsRepo;
  readonly #ledger: LedgerRepo;
  readonly #ota: OtaRepo;
  readonly #lookup: Lookup;

  private constructor(db: Db, file: string, o: StoreOptions) {
    this.file = file;
    this.#db = db;
    const now = o.now ?? Date.now;
    const scrypt = o.scrypt ?? DEFAULT_SCRYPT;
    this.#audit = new AuditRepo(db);
    this.#tx = new Tx(db, this.#audit, now);
    this.#policies = new PoliciesRepo(db, this.#tx, now);
    this.#subscribers = new SubscribersRepo(db, this.#tx, this.#policies, now, scrypt);
    this.#limits = new NServerLimitsRepo(db, this.#tx);
    this.#proxies = new ProxiesRepo(db, this.#tx);
    this.#mservers = new MServersRepo(db, this.#tx, now);
    this.#settings = new SettingsRepo(db, this.#tx);
    this.#secrets = new SecretsRepo(db, this.#tx, now, scrypt);
    this.#ledger = new LedgerRepo(db, this.#tx, now);
    const policyRepos = { policies: this.#policies, subscribers: this.#subscribers, nserverLimits: this.#limits, proxies: this.#proxies };
    this.#ota = new OtaRepo(db, this.#tx, now, policyRepos);
    const lookup = { now, recheckMs: o.recheckMs ?? 250, boardDefaults: o.boardDefaults ?? {}, policies: this.#policies, limits: this.#limits };
    this.#lookup = new Lookup(db, lookup);
    // first listener: the caches are dropped before anyone else hears of the change
    this.#tx.onChange(() => this.#lookup.drop());
  }

  /** Open the store in the state directory (creating and migrating it as needed). */
  static async open(o: StoreOptions = {}): Promise<Store> {
    const file = o.file ?? path.join(o.dir ?? stateDir(o.env), DB_FILE);
    const db = await openDb({ file, backups: o.backups ?? true });
    try {
      return new Store(db, file, o);
    } catch (e) {
      db.close();
      throw sqliteError(e, `cannot prepare ${file}`, 'DC_STORE_OPEN');
    }
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }

  get schemaVersion(): number {
    return userVersion(this.#db);
  }

  /** Called after every committed change made through this Store (not other processes). */
  onChange(fn: () => void): () => void {
    return this.#tx.onChange(fn);
  }

  /** A change counter, bumped by every write through this Store. */
  get generation(): number {
    return this.#tx.generation;
  }

  /** Run `fn` as one durable transaction; writes through this Store inside it join it (bulk seeding). */
  policyWrite<T>(what: string, fn: () => T): T {
    return this.#tx.write(what, fn);
  }

  // ---- policies --------------------------------------------------------------------------

  listPolicies(): PolicySpec[] {
    return this.#policies.list();
  }
  getPolicy(name: string): PolicySpec | undefined {
    return this.#policies.get(name);
  }
  /** Create or replace a policy (all fields; absent ones inherit). */
  setPolicy(spec: PolicySpec, origin: Origin): PolicySpec {
    return this.#policies.set(spec, origin);
  }
  removePolicy(name: string, origin: Origin): void {
    this.#policies.remove(name, origin);
  }

  // ---- subscribers -----------------------------------------------------------------------

  countSubscribers(): number {
    return this.#subscribers.count();
  }
  listSubscribers(o: { limit?: number; offset?: number } = {}): SubscriberRecord[] {
    return this.#subscribers.list(o);
  }
  getSubscriber(name: string): SubscriberRecord | undefined {
    return this.#subscribers.get(name);
  }
  addSubscriber(spec: SubscriberSpec, origin: Origin): SubscriberRecord {
    return this.#subscribers.add(spec, origin);
  }
  /** Change some fields of a subscriber; identifiers given replace the old ones of that kind. */
  updateSubscriber(name: string, patch: Omit<SubscriberSpec, 'name'>, origin: Origin): SubscriberRecord {
    return this.#subscribers.update(name, patch, origin);
  }
  removeSubscriber(name: string, origin: Origin): void {
    this.#subscribers.remove(name, origin);
  }
  /** Set (or, with null, clear) a subscriber's password; stored as an scrypt hash. */
  setSubscriberPassword(name: string, password: string | null, origin: Origin): Promise<void> {
    return this.#subscribers.setPassword(name, password, origin);
  }
  verifySubscriberPassword(name: string, password: string): Promise<boolean> {
    return this.#subscribers.verifyPassword(name, password);
  }
  /** Issue a fresh random cookie (e.g. for the RFC 8803 Cookie TLV); the store keeps only its SHA-256. */
  issueSubscriberCookie(name: string, origin: Origin, bytes = 16): Buffer {
    return this.#subscribers.issueCookie(name, origin, bytes);
  }
  /** The enabled subscriber a cookie belongs to, if any. */
  subscriberByCookie(cookie: Buffer): string | undefined {
    return this.#subscribers.byCookie(cookie);
  }
  subscriberByMac(mac: string): string | undefined {
    return this.#subscribers.byMac(mac);
  }

  // ---- policy resolution -----------------------------------------------------------------

  /**
   * The policy for a new session from client address `addr` (numeric IPv4/IPv6; an IPv4-mapped
   * IPv6 address counts as IPv4): the longest matching subscriber prefix, its policy merged
   * over `default`, the board's defaults and the built-in ones. Served from memory; the index
   * is rebuilt after a change through this Store, and within `recheckMs` of a change made by
   * another process.
   */
  resolvePolicy(addr: string): EffectivePolicy {
    return this.#lookup.resolve(addr);
  }
  /**
   * The policy of the enabled subscriber `name` (a client known by its credential rather than its
   * address: a Convert cookie, a SOCKS user); undefined when there is none.
   */
  resolveSubscriber(name: string): EffectivePolicy | undefined {
    return this.#lookup.index().byName.get(name);
  }
  /** The defaults in force (no subscriber matched). */
  defaultPolicy(): EffectivePolicy {
    return this.#lookup.index().fallback;
  }

  // ---- N-server limits -------------------------------------------------------------------

  listNServerLimits(): NServerLimitSpec[] {
    return this.#limits.list();
  }
  setNServerLimit(spec: NServerLimitSpec, origin: Origin): NServerLimitSpec {
    return this.#limits.set(spec, origin);
  }
  removeNServerLimit(prefix: string, origin: Origin): void {
    this.#limits.remove(prefix, origin);
  }
  /** The operator's box-wide limit for N-server `addr` (the longest matching N-server limit), if any. */
  nserverCap(addr: string): number | undefined {
    return this.#lookup.nserverLimit(addr) ?? undefined;
  }
  /** Maximum concurrent sessions to N-server `addr`: the longest matching limit, else the default policy's. */
  nserverLimit(addr: string): number;
  nserverLimit(addr: string, fallback: null): number | null;
  nserverLimit(addr: string, fallback?: null): number | null {
    const l = this.#lookup.nserverLimit(addr);
    return l !== null || fallback === null ? l : this.defaultPolicy().maxSessionsPerNServer;
  }

  // ---- candidate proxies -----------------------------------------------------------------

  listProxies(): Proxy[] {
    return this.#proxies.list();
  }
  setProxy(spec: ProxySpec, origin: Origin): Proxy {
    return this.#proxies.set(spec, origin);
  }
  /** Replace the whole candidate list (web PUT, CLI). Refused as a whole: the old list stays in force. */
  replaceProxies(list: unknown, origin: Origin): Proxy[] {
    return this.#proxies.replaceAll(list, origin);
  }
  /** Board defaults: written once, into a store that never had a candidate list. */
  seedProxies(list: unknown): boolean {
    if (this.getSetting('proxies.seeded') !== undefined) return false;
    const ps = normalizeProxies(list, 'DC_CONFIG_INVALID', 'board.proxies');
    if (ps.length === 0) return false;
    if (this.listProxies().length === 0) this.replaceProxies(ps, 'system');
    this.setSetting('proxies.seeded', '1', 'system');
    return true;
  }
  removeProxy(address: string, port: number, origin: Origin): void {
    this.#proxies.remove(address, port, origin);
  }

  // ---- M-server cache (volatile: no audit, ordinary durability) ----------------------------

  rememberMServer(address: string, port: number, ttlMs: number): void {
    this.#mservers.remember(address, port, ttlMs);
  }
  isMServer(address: string, port: number): boolean {
    return this.#mservers.has(address, port);
  }
  forgetMServer(address: string, port: number): void {
    this.#mservers.forget(address, port);
  }
  listMServers(): MServerEntry[] {
    return this.#mservers.list();
  }
  purgeMServers(): number {
    return this.#mservers.purge();
  }

  // ---- audit, settings, secrets, admin credentials, kernel ledger --------------------------

  listAudit(o: { limit?: number; before?: number } = {}): AuditEntry[] {
    return this.#audit.list(o);
  }
  getSetting(key: string): string | undefined {
    return this.#settings.get(key);
  }
  setSetting(key: string, value: string | null, origin: Origin): void {
    this.#settings.set(key, value, origin);
  }
  /** Runtime state (poll status and the like): a `runtime.*` key, written without an audit row. */
  setRuntime(key: string, value: string): void {
    this.#settings.setRuntime(key, value);
  }
  /** A random secret kept in the store (e.g. `web-session` for cookie signing), created on first use. */
  secret(name: string, bytes = 32): Buffer {
    return this.#secrets.secret(name, bytes);
  }
  /** Set a local credential (e.g. `admin` of the web page) as an scrypt hash. */
  setCredential(name: string, password: string, origin: Origin): Promise<void> {
    return this.#secrets.setCredential(name, password, origin);
  }
  hasCredential(name: string): boolean {
    return this.#secrets.hasCredential(name);
  }
  verifyCredential(name: string, password: string): Promise<boolean> {
    return this.#secrets.verifyCredential(name, password);
  }
  /** Every kernel ledger row, oldest first (what duocell changed in the kernel; see migrations/004). */
  ledgerList(): LedgerRow[] {
    return this.#ledger.list();
  }
  /** Record a row before the kernel change it describes; `keepFirst` keeps an existing row (the original value). */
  ledgerRecord(kind: LedgerRow['kind'], key: string, value: string, o: { keepFirst: boolean }): void {
    this.#ledger.record(kind, key, value, o);
  }
  ledgerForget(kind: LedgerRow['kind'], key: string): void {
    this.#ledger.forget(kind, key);
  }

  // ---- whole policy sets and trusted keys (OTA) ----------------------------------------------

  listTrustedKeys(): TrustedKeyRow[] {
    return this.#ota.listKeys();
  }
  addTrustedKey(keyId: string, publicKey: string, comment: string | null, origin: Origin): void {
    this.#ota.addKey(keyId, publicKey, comment, origin);
  }
  removeTrustedKey(keyId: string, origin: Origin): void {
    this.#ota.removeKey(keyId, origin);
  }
  otaState(): OtaVersionState {
    return this.#ota.state();
  }
  /** Everything policy-related, as a PolicySet (what a full bundle carries). */
  exportPolicySet(): PolicySet {
    return this.#ota.exportSet();
  }
  /** Apply a verified bundle's content as ONE transaction (see OtaRepo.apply). */
  applyPolicyVersion(rec: ApplyRecord, content: { full: NormalPolicySet } | { delta: PolicyDelta }): OtaVersionState {
    return this.#ota.apply(rec, content);
  }
  /** Return to the version before the last apply (one step). The highest version seen stays refused. */
  rollbackPolicyVersion(): OtaVersionState {
    return this.#ota.rollback();
  }
  /** SHA-256 of the policy content, for tests and for comparing two boxes. */
  policyDigest(): string {
    return createHash('sha256').update(JSON.stringify(this.exportPolicySet())).digest('hex');
  }

  // ---- the database itself ---------------------------------------------------------------

  /** PRAGMA integrity_check: 'ok' or the problems found. */
  integrityCheck(): string {
    return (this.#db.pragma('integrity_check') as Array<{ integrity_check: string }>).map((r) => r.integrity_check).join('; ');
  }
  /** PRAGMA foreign_key_check: how many rows point at nothing (0 in a sound store). */
  foreignKeyViolations(): number {
    return (this.#db.pragma('foreign_key_check') as unknown[]).length;
  }
  /** The connection's journal mode and whether foreign keys are enforced. */
  connectionInfo(): { journalMode: string; foreignKeys: boolean } {
    return { journalMode: String(this.#db.pragma('journal_mode', { simple: true })), foreignKeys: this.#db.pragma('foreign_keys', { simple: true }) === 1 };
  }

  /** The defaults without any policy row (for docs and tests). */
  static get builtinDefaults(): ResolvedDefaults {
    return BUILTIN_DEFAULTS;
  }

  static merge = mergePolicy;
}

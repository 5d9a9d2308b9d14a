import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import type { Statement } from 'better-sqlite3';
import { DuocellError } from '../core/errors.js';
import { DB_FILE, openDb, sqliteError, stateDir, userVersion, type Db } from './db.js';
import { cookieDigest, DEFAULT_SCRYPT, hashPassword, verifyPassword, type ScryptParams } from './credentials.js';
import { parseAddr, parsePrefix, prefixContains, type ParsedPrefix } from './net.js';
import { PolicyIndex, mergePolicy } from './resolver.js';
import {
  checkMac,
  checkName,
  normalizeNServerLimit,
  normalizePolicy,
  normalizeProxies,
  normalizeProxy,
  normalizeSubscriber,
  policyFromRow,
  type NormalSubscriber,
  type PolicyRow,
} from './validate.js';
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

/**
 * The state store: one SQLite file, repositories over prepared statements, an audit row for
 * every change (same transaction), and the in-memory policy index for resolvePolicy().
 * No decisions are taken here: callers (services, ota, web, cli) decide; the store keeps.
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

/** A policy set after normalisation and consistency checks: ready to write. */
export interface NormalPolicySet {
  policies: PolicyRow[];
  subscribers: NormalSubscriber[];
  nserverLimits: NServerLimitSpec[];
  proxies: Array<Required<ProxySpec>>;
}

export interface PolicyDelta {
  upsert: NormalPolicySet;
  remove: { policies: string[]; subscribers: string[]; nserverLimits: string[]; proxies: Array<{ address: string; port: number }> };
}

export interface OtaVersionState {
  currentVersion: number;
  highestVersion: number;
  appliedAt: number | null;
  bundleSha256: string | null;
  previous: { version: number; savedAt: number } | null;
}

export interface ApplyRecord {
  version: number;
  sha256: string;
  kind: 'full' | 'delta';
  base?: number;
}

export interface TrustedKeyRow {
  keyId: string;
  publicKey: string;
  comment: string | null;
  addedAt: number;
}

interface SubRow {
  id: number;
  name: string;
  policy: string | null;
  enabled: number;
  credential: string | null;
  cookie_hash: string | null;
  created_at: number;
  updated_at: number;
}

/** Checks a whole policy set: every item valid, names unique, references resolvable, identifiers unique. */
export function normalizePolicySet(set: PolicySet, code: 'DC_STORE_INVALID' | 'DC_OTA_CONTENT_INVALID' = 'DC_STORE_INVALID'): NormalPolicySet {
  const policies = set.policies.map((p, i) => normalizePolicy(p, code, `policies[${i}]`));
  const pnames = new Set<string>();
  for (const p of policies) {
    if (pnames.has(p.name)) throw new DuocellError(code, `policies: duplicate name ${p.name}`);
    pnames.add(p.name);
  }
  pnames.add('default');
  const subscribers = set.subscribers.map((s, i) => normalizeSubscriber(s, code, `subscribers[${i}]`));
  const snames = new Set<string>();
  const ids = new Map<string, string>();
  for (const s of subscribers) {
    if (snames.has(s.name)) throw new DuocellError(code, `subscribers: duplicate name ${s.name}`);
    snames.add(s.name);
    if (s.policy !== null && !pnames.has(s.policy)) throw new DuocellError(code, `subscriber ${s.name}: unknown policy ${s.policy}`);
    for (const id of [...s.addresses, ...s.macs]) {
      const other = ids.get(id);
      if (other !== undefined) throw new DuocellError(code, `identifier ${id} is claimed by both ${other} and ${s.name}`);
      ids.set(id, s.name);
    }
  }
  const nserverLimits = set.nserverLimits.map((l, i) => normalizeNServerLimit(l, code, `nserverLimits[${i}]`));
  if (new Set(nserverLimits.map((l) => l.prefix)).size !== nserverLimits.length) throw new DuocellError(code, 'nserverLimits: duplicate prefix');
  const proxies = normalizeProxies(set.proxies, code, 'proxies');
  return { policies, subscribers, nserverLimits, proxies };
}

/** One row of the kernel ledger (migrations/004-kernel-ledger.ts). */
export interface LedgerRow {
  kind: 'sysctl' | 'limits' | 'endpoint' | 'table';
  key: string;
  value: string;
}

export class Store {
  readonly file: string;
  private readonly now: () => number;
  private readonly scryptPrm: ScryptParams;
  private readonly boardDefaults: Partial<ResolvedDefaults>;
  private readonly recheckMs: number;
  private index: PolicyIndex | undefined;
  private nsIndex: Array<{ p: ParsedPrefix; max: number }> | undefined;
  private dataVersion = -1;
  private lastCheck = 0;
  private gen = 0;
  private readonly listeners = new Set<() => void>();
  private readonly st: Record<string, Statement>;

  private constructor(readonly db: Db, file: string, o: StoreOptions) {
    this.file = file;
    this.now = o.now ?? Date.now;
    this.scryptPrm = o.scrypt ?? DEFAULT_SCRYPT;
    this.boardDefaults = o.boardDefaults ?? {};
    this.recheckMs = o.recheckMs ?? 250;
    const p = (sql: string): Statement => db.prepare(sql);
    this.st = {
      audit: p('INSERT INTO audit_log (at, origin, action, entity, entity_key, detail) VALUES (?, ?, ?, ?, ?, ?)'),
      dataVersion: p('PRAGMA data_version').pluck(),
      policyAll: p('SELECT * FROM policies ORDER BY name'),
      policyGet: p('SELECT * FROM policies WHERE name = ?'),
      policyId: p('SELECT id FROM policies WHERE name = ?').pluck(),
      policyUpsert: p(`INSERT INTO policies (name, max_sessions_per_ue, max_subflows_per_session, max_sessions_per_nserver, steering_mode,
          ratio_cellular, ratio_wlan, allowed_networks, intercept_ports, updated_at)
        VALUES (@name, @max_sessions_per_ue, @max_subflows_per_session, @max_sessions_per_nserver, @steering_mode,
          @ratio_cellular, @ratio_wlan, @allowed_networks, @intercept_ports, @updated_at)
        ON CONFLICT(name) DO UPDATE SET max_sessions_per_ue = excluded.max_sessions_per_ue,
          max_subflows_per_session = excluded.max_subflows_per_session, max_sessions_per_nserver = excluded.max_sessions_per_nserver,
          steering_mode = excluded.steering_mode, ratio_cellular = excluded.ratio_cellular, ratio_wlan = excluded.ratio_wlan,
          allowed_networks = excluded.allowed_networks, intercept_ports = excluded.intercept_ports, updated_at = excluded.updated_at`),
      policyDel: p('DELETE FROM policies WHERE name = ?'),
      policyUsers: p('SELECT count(*) FROM subscribers s JOIN policies p ON p.id = s.policy_id WHERE p.name = ?').pluck(),
      subAll: p(`SELECT s.*, p.name AS policy FROM subscribers s LEFT JOIN policies p ON p.id = s.policy_id ORDER BY s.name LIMIT ? OFFSET ?`),
      subGet: p(`SELECT s.*, p.name AS policy FROM subscribers s LEFT JOIN policies p ON p.id = s.policy_id WHERE s.name = ?`),
      subCount: p('SELECT count(*) FROM subscribers').pluck(),
      subNames: p('SELECT name FROM subscribers').pluck(),
      subIdsOf: p('SELECT kind, value FROM subscriber_ids WHERE subscriber_id = ? ORDER BY kind, value'),
      subIdsAll: p('SELECT subscriber_id AS sid, kind, value FROM subscriber_ids ORDER BY kind, value'),
      subUpsert: p(`INSERT INTO subscribers (name, policy_id, enabled, credential, created_at, updated_at)
        VALUES (@name, @policy_id, @enabled, @credential, @now, @now)
        ON CONFLICT(name) DO UPDATE SET policy_id = excluded.policy_id, enabled = excluded.enabled,
          credential = CASE WHEN @keep_credential THEN subscribers.credential ELSE excluded.credential END,
          updated_at = excluded.updated_at
        RETURNING id`).pluck(),
      subInsert: p(`INSERT INTO subscribers (name, policy_id, enabled, credential, created_at, updated_at)
        VALUES (@name, @policy_id, @enabled, @credential, @now, @now) RETURNING id`).pluck(),
      subDel: p('DELETE FROM subscribers WHERE name = ?'),
      subDelAll: p('DELETE FROM subscribers'),
      subDelExcept: p('DELETE FROM subscribers WHERE name NOT IN (SELECT value FROM json_each(?))'),
      bulkSubsKeep: p(`INSERT INTO subscribers (name, policy_id, enabled, credential, created_at, updated_at)
        SELECT j.value->>'n', (SELECT id FROM policies WHERE name = j.value->>'p' AND name <> 'default'), j.value->>'e', NULL, @now, @now
        FROM json_each(@rows) j WHERE j.value->>'k' = 1
        ON CONFLICT(name) DO UPDATE SET policy_id = excluded.policy_id, enabled = excluded.enabled, updated_at = excluded.updated_at`),
      bulkSubsSet: p(`INSERT INTO subscribers (name, policy_id, enabled, credential, created_at, updated_at)
        SELECT j.value->>'n', (SELECT id FROM policies WHERE name = j.value->>'p' AND name <> 'default'), j.value->>'e', j.value->>'c', @now, @now
        FROM json_each(@rows) j WHERE j.value->>'k' = 0
        ON CONFLICT(name) DO UPDATE SET policy_id = excluded.policy_id, enabled = excluded.enabled, credential = excluded.credential,
          updated_at = excluded.updated_at`),
      bulkIds: p(`INSERT INTO subscriber_ids (kind, value, subscriber_id)
        SELECT 'prefix', a.value, s.id FROM json_each(@rows) j JOIN subscribers s ON s.name = j.value->>'n' JOIN json_each(j.value, '$.a') a
        UNION ALL
        SELECT 'mac', m.value, s.id FROM json_each(@rows) j JOIN subscribers s ON s.name = j.value->>'n' JOIN json_each(j.value, '$.m') m`),
      bulkIdsDelExcept: p(`DELETE FROM subscriber_ids WHERE (kind, value) NOT IN (
        SELECT 'prefix', a.value FROM json_each(@rows) j JOIN json_each(j.value, '$.a') a
        UNION ALL
        SELECT 'mac', m.value FROM json_each(@rows) j JOIN json_each(j.value, '$.m') m)`),
      bulkIdsRepointPrefix: p(`INSERT INTO subscriber_ids (kind, value, subscriber_id)
        SELECT 'prefix', a.value, s.id FROM json_each(@rows) j JOIN subscribers s ON s.name = j.value->>'n' JOIN json_each(j.value, '$.a') a WHERE true
        ON CONFLICT(kind, value) DO UPDATE SET subscriber_id = excluded.subscriber_id WHERE subscriber_id <> excluded.subscriber_id`),
      bulkIdsRepointMac: p(`INSERT INTO subscriber_ids (kind, value, subscriber_id)
        SELECT 'mac', m.value, s.id FROM json_each(@rows) j JOIN subscribers s ON s.name = j.value->>'n' JOIN json_each(j.value, '$.m') m WHERE true
        ON CONFLICT(kind, value) DO UPDATE SET subscriber_id = excluded.subscriber_id WHERE subscriber_id <> excluded.subscriber_id`),
      subSetCredential: p('UPDATE subscribers SET credential = ?, updated_at = ? WHERE name = ?'),
      subSetCookie: p('UPDATE subscribers SET cookie_hash = ?, updated_at = ? WHERE name = ?'),
      subByCookie: p('SELECT name FROM subscribers WHERE cookie_hash = ? AND enabled = 1').pluck(),
      subByMac: p(`SELECT s.name FROM subscriber_ids i JOIN subscribers s ON s.id = i.subscriber_id WHERE i.kind = 'mac' AND i.value = ?`).pluck(),
      idOwner: p(`SELECT s.name FROM subscriber_ids i JOIN subscribers s ON s.id = i.subscriber_id WHERE i.kind = ? AND i.value = ?`).pluck(),
      idInsert: p('INSERT INTO subscriber_ids (kind, value, subscriber_id) VALUES (?, ?, ?)'),
      idDelOf: p('DELETE FROM subscriber_ids WHERE subscriber_id = ?'),
      idDelAll: p('DELETE FROM subscriber_ids'),
      // every enabled subscriber, once per prefix (value NULL: one known only by name/credential)
      indexRows: p(`SELECT s.name AS name, p.name AS policy, i.value AS value FROM subscribers s
        LEFT JOIN subscriber_ids i ON i.subscriber_id = s.id AND i.kind = 'prefix' LEFT JOIN policies p ON p.id = s.policy_id
        WHERE s.enabled = 1 ORDER BY s.id`),
      nsAll: p('SELECT prefix, max_sessions AS maxSessions FROM nserver_limits ORDER BY prefix'),
      nsSet: p('INSERT INTO nserver_limits (prefix, max_sessions) VALUES (?, ?) ON CONFLICT(prefix) DO UPDATE SET max_sessions = excluded.max_sessions'),
      nsDel: p('DELETE FROM nserver_limits WHERE prefix = ?'),
      nsDelAll: p('DELETE FROM nserver_limits'),
      pxAll: p('SELECT * FROM proxies ORDER BY priority DESC, address, port'),
      pxSet: p(`INSERT INTO proxies (address, port, protocol, priority, weight, enabled, name, location, type, socks5, apps, policies)
        VALUES (@address, @port, @protocol, @priority, @weight, @enabled, @name, @location, @type, @socks5, @apps, @policies)
        ON CONFLICT(address, port) DO UPDATE SET protocol = excluded.protocol, priority = excluded.priority, weight = excluded.weight, enabled = excluded.enabled,
          name = excluded.name, location = excluded.location, type = excluded.type, socks5 = excluded.socks5, apps = excluded.apps, policies = excluded.policies`),
      pxDel: p('DELETE FROM proxies WHERE address = ? AND port = ?'),
      pxDelAll: p('DELETE FROM proxies'),
      mcPut: p('INSERT INTO mserver_cache (address, port, expires_at) VALUES (?, ?, ?) ON CONFLICT(address, port) DO UPDATE SET expires_at = excluded.expires_at'),
      mcGet: p('SELECT expires_at FROM mserver_cache WHERE address = ? AND port = ?').pluck(),
      mcAll: p('SELECT address, port, expires_at AS expiresAt FROM mserver_cache WHERE expires_at > ? ORDER BY address, port'),
      mcPurge: p('DELETE FROM mserver_cache WHERE expires_at <= ?'),
      mcDel: p('DELETE FROM mserver_cache WHERE address = ? AND port = ?'),
      auditList: p('SELECT id, at, origin, action, entity, entity_key AS key, detail FROM audit_log WHERE id < ? ORDER BY id DESC LIMIT ?'),
      settingGet: p('SELECT value FROM settings WHERE key = ?').pluck(),
      settingSet: p('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
      settingDel: p('DELETE FROM settings WHERE key = ?'),
      secretGet: p('SELECT value FROM secrets WHERE name = ?').pluck(),
      secretPut: p('INSERT OR IGNORE INTO secrets (name, value, created_at) VALUES (?, ?, ?)'),
      credGet: p('SELECT hash FROM credentials WHERE name = ?').pluck(),
      credPut: p('INSERT INTO credentials (name, hash, updated_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET hash = excluded.hash, updated_at = excluded.updated_at'),
      otaGet: p('SELECT current_version, highest_version, applied_at, bundle_sha256 FROM ota_state WHERE id = 1'),
      otaSet: p('UPDATE ota_state SET current_version = ?, highest_version = max(highest_version, ?), applied_at = ?, bundle_sha256 = ? WHERE id = 1'),
      prevGet: p('SELECT version, snapshot, saved_at FROM ota_previous WHERE id = 1'),
      prevMeta: p('SELECT version, saved_at FROM ota_previous WHERE id = 1'),
      prevPut: p('INSERT INTO ota_previous (id, version, snapshot, saved_at) VALUES (1, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET version = excluded.version, snapshot = excluded.snapshot, saved_at = excluded.saved_at'),
      prevDel: p('DELETE FROM ota_previous WHERE id = 1'),
      // the whole policy set as one JSON document, built inside SQLite (a PolicySet)
      snapshot: p(`SELECT json_object(
        'policies', (SELECT json_group_array(json_object('name', name, 'maxSessionsPerUe', max_sessions_per_ue,
            'maxSubflowsPerSession', max_subflows_per_session, 'maxSessionsPerNServer', max_sessions_per_nserver,
            'allowedNetworks', json(allowed_networks), 'steeringMode', steering_mode,
            'ratio', CASE WHEN ratio_cellular IS NULL OR ratio_wlan IS NULL THEN NULL ELSE json_object('cellular', ratio_cellular, 'wlan', ratio_wlan) END,
            'interceptPorts', json(intercept_ports))) FROM policies),
        'subscribers', (SELECT json_group_array(json_object('name', s.name, 'policy', p.name,
            'enabled', json(CASE WHEN s.enabled THEN 'true' ELSE 'false' END),
            'addresses', (SELECT json_group_array(value) FROM subscriber_ids WHERE subscriber_id = s.id AND kind = 'prefix'),
            'macs', (SELECT json_group_array(value) FROM subscriber_ids WHERE subscriber_id = s.id AND kind = 'mac'),
            'credential', s.credential))
          FROM subscribers s LEFT JOIN policies p ON p.id = s.policy_id),
        'nserverLimits', (SELECT json_group_array(json_object('prefix', prefix, 'maxSessions', max_sessions)) FROM nserver_limits),
        'proxies', (SELECT json_group_array(json_object('address', address, 'port', port, 'protocol', protocol, 'priority', priority,
            'weight', weight, 'enabled', json(CASE WHEN enabled THEN 'true' ELSE 'false' END),
            'name', name, 'location', location, 'type', type, 'socks5', socks5, 'apps', json(apps), 'policies', json(policies))) FROM proxies))`).pluck(),
      keyAll: p('SELECT key_id AS keyId, public_key AS publicKey, comment, added_at AS addedAt FROM ota_keys ORDER BY key_id'),
      keyPut: p('INSERT INTO ota_keys (key_id, public_key, comment, added_at) VALUES (?, ?, ?, ?) ON CONFLICT(key_id) DO UPDATE SET comment = excluded.comment'),
      keyDel: p('DELETE FROM ota_keys WHERE key_id = ?'),
    };
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
    if (this.db.open) this.db.close();
  }

  get schemaVersion(): number {
    return userVersion(this.db);
  }

  /** Called after every committed change made through this Store (not other processes). */
  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** A change counter, bumped by every write through this Store. */
  get generation(): number {
    return this.gen;
  }

  // ---- writing ---------------------------------------------------------------------------

  /**
   * Run `fn` as one IMMEDIATE transaction with synchronous=FULL (a committed policy change
   * survives a power cut), then invalidate the caches.
   */
  policyWrite<T>(what: string, fn: () => T): T {
    const outer = !this.db.inTransaction;
    if (outer) this.db.pragma('synchronous = FULL');
    try {
      const r = this.db.transaction(fn).immediate();
      if (outer) this.changed();
      return r;
    } catch (e) {
      throw sqliteError(e, what);
    } finally {
      if (outer) this.db.pragma('synchronous = NORMAL');
    }
  }

  private changed(): void {
    this.gen++;
    this.index = undefined;
    this.nsIndex = undefined;
    for (const l of this.listeners) {
      try {
        l();
      } catch {
        /* a listener's failure is its own */
      }
    }
  }

  audit(origin: Origin | string, action: string, entity: string, key: string | null, detail?: unknown): void {
    this.st.audit!.run(this.now(), origin, action, entity, key, detail === undefined ? null : JSON.stringify(detail));
  }

  // ---- policies --------------------------------------------------------------------------

  listPolicies(): PolicySpec[] {
    return (this.st.policyAll!.all() as PolicyRow[]).map(policyFromRow);
  }

  getPolicy(name: string): PolicySpec | undefined {
    const r = this.st.policyGet!.get(name) as PolicyRow | undefined;
    return r === undefined ? undefined : policyFromRow(r);
  }

  /** Create or replace a policy (all fields; absent ones inherit). */
  setPolicy(spec: PolicySpec, origin: Origin): PolicySpec {
    const row = normalizePolicy(spec);
    return this.policyWrite('set policy', () => {
      const before = this.getPolicy(row.name);
      this.st.policyUpsert!.run({ ...row, updated_at: this.now() });
      const after = policyFromRow(row);
      this.audit(origin, before === undefined ? 'create' : 'update', 'policy', row.name, { before, after });
      return after;
    });
  }

  removePolicy(name: string, origin: Origin): void {
    checkName(name, 'policy');
    if (name === 'default') throw new DuocellError('DC_STORE_INVALID', 'the default policy cannot be removed');
    this.policyWrite('remove policy', () => {
      const before = this.getPolicy(name);
      if (before === undefined) throw new DuocellError('DC_STORE_NOT_FOUND', `no policy ${name}`);
      const users = this.st.policyUsers!.get(name) as number;
      if (users > 0) throw new DuocellError('DC_STORE_IN_USE', `policy ${name} is used by ${users} subscriber(s)`);
      this.st.policyDel!.run(name);
      this.audit(origin, 'remove', 'policy', name, { before });
    });
  }

  // ---- subscribers -----------------------------------------------------------------------

  countSubscribers(): number {
    return this.st.subCount!.get() as number;
  }

  private record(r: SubRow, ids: Array<{ kind: string; value: string }>): SubscriberRecord {
    return {
      id: r.id,
      name: r.name,
      policy: r.policy ?? 'default',
      enabled: r.enabled === 1,
      addresses: ids.filter((i) => i.kind === 'prefix').map((i) => i.value),
      macs: ids.filter((i) => i.kind === 'mac').map((i) => i.value),
      hasCredential: r.credential !== null,
      hasCookie: r.cookie_hash !== null,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    };
  }

  listSubscribers(o: { limit?: number; offset?: number } = {}): SubscriberRecord[] {
    const limit = Math.max(0, Math.min(o.limit ?? 1_000_000, 1_000_000));
    const rows = this.st.subAll!.all(limit, Math.max(0, o.offset ?? 0)) as SubRow[];
    const ids = new Map<number, Array<{ kind: string; value: string }>>();
    if (rows.length > 0) {
      const want = new Set(rows.map((r) => r.id));
      for (const i of this.st.subIdsAll!.iterate() as Iterable<{ sid: number; kind: string; value: string }>) {
        if (!want.has(i.sid)) continue;
        let l = ids.get(i.sid);
        if (l === undefined) ids.set(i.sid, (l = []));
        l.push(i);
      }
    }
    return rows.map((r) => this.record(r, ids.get(r.id) ?? []));
  }

  getSubscriber(name: string): SubscriberRecord | undefined {
    const r = this.st.subGet!.get(name) as SubRow | undefined;
    return r === undefined ? undefined : this.record(r, this.st.subIdsOf!.all(r.id) as Array<{ kind: string; value: string }>);
  }

  private policyIdOf(name: string | null): number | null {
    if (name === null) return null;
    const id = this.st.policyId!.get(name) as number | undefined;
    if (id === undefined) throw new DuocellError('DC_STORE_NOT_FOUND', `no policy ${name}`);
    return name === 'default' ? null : id;
  }

  private insertIds(sid: number, s: NormalSubscriber): void {
    for (const [kind, list] of [['prefix', s.addresses], ['mac', s.macs]] as const) {
      for (const v of list) {
        const owner = this.st.idOwner!.get(kind, v) as string | undefined;
        if (owner !== undefined) throw new DuocellError('DC_STORE_CONSTRAINT', `${v} already identifies subscriber ${owner}`);
        this.st.idInsert!.run(kind, v, sid);
      }
    }
  }

  addSubscriber(spec: SubscriberSpec, origin: Origin): SubscriberRecord {
    const s = normalizeSubscriber(spec);
    return this.policyWrite('add subscriber', () => {
      if (this.st.subGet!.get(s.name) !== undefined) throw new DuocellError('DC_STORE_CONSTRAINT', `subscriber ${s.name} exists`);
      const sid = this.st.subInsert!.get({
        name: s.name,
        policy_id: this.policyIdOf(s.policy),
        enabled: s.enabled ? 1 : 0,
        credential: s.credential ?? null,
        now: this.now(),
      }) as number;
      this.insertIds(sid, s);
      const rec = this.getSubscriber(s.name)!;
      this.audit(origin, 'create', 'subscriber', s.name, { policy: rec.policy, addresses: rec.addresses, macs: rec.macs, enabled: rec.enabled });
      return rec;
    });
  }

  /** Change some fields of a subscriber; identifiers given replace the old ones of that kind. */
  updateSubscriber(name: string, patch: Omit<SubscriberSpec, 'name'>, origin: Origin): SubscriberRecord {
    checkName(name, 'subscriber');
    return this.policyWrite('update subscriber', () => {
      const cur = this.getSubscriber(name);
      if (cur === undefined) throw new DuocellError('DC_STORE_NOT_FOUND', `no subscriber ${name}`);
      const s = normalizeSubscriber({
        name,
        policy: patch.policy === undefined ? cur.policy : patch.policy,
        enabled: patch.enabled ?? cur.enabled,
        addresses: patch.addresses ?? cur.addresses,
        macs: patch.macs ?? cur.macs,
        ...(patch.credential !== undefined ? { credential: patch.credential } : {}),
      });
      const sid = this.st.subUpsert!.get({
        name,
        policy_id: this.policyIdOf(s.policy),
        enabled: s.enabled ? 1 : 0,
        credential: s.credential ?? null,
        keep_credential: s.credential === undefined ? 1 : 0,
        now: this.now(),
      }) as number;
      this.st.idDelOf!.run(sid);
      this.insertIds(sid, s);
      const rec = this.getSubscriber(name)!;
      this.audit(origin, 'update', 'subscriber', name, {
        before: { policy: cur.policy, addresses: cur.addresses, macs: cur.macs, enabled: cur.enabled },
        after: { policy: rec.policy, addresses: rec.addresses, macs: rec.macs, enabled: rec.enabled },
      });
      return rec;
    });
  }

  removeSubscriber(name: string, origin: Origin): void {
    checkName(name, 'subscriber');
    this.policyWrite('remove subscriber', () => {
      const cur = this.getSubscriber(name);
      if (cur === undefined) throw new DuocellError('DC_STORE_NOT_FOUND', `no subscriber ${name}`);
      this.st.subDel!.run(name);
      this.audit(origin, 'remove', 'subscriber', name, { policy: cur.policy, addresses: cur.addresses, macs: cur.macs });
    });
  }

  /** Set (or, with null, clear) a subscriber's password; stored as an scrypt hash. */
  async setSubscriberPassword(name: string, password: string | null, origin: Origin): Promise<void> {
    checkName(name, 'subscriber');
    const hash = password === null ? null : await hashPassword(password, this.scryptPrm);
    this.policyWrite('set credential', () => {
      if (this.st.subSetCredential!.run(hash, this.now(), name).changes === 0) throw new DuocellError('DC_STORE_NOT_FOUND', `no subscriber ${name}`);
      this.audit(origin, hash === null ? 'clear-credential' : 'set-credential', 'subscriber', name);
    });
  }

  async verifySubscriberPassword(name: string, password: string): Promise<boolean> {
    const r = typeof name === 'string' ? (this.st.subGet!.get(name) as SubRow | undefined) : undefined;
    if (r === undefined || r.enabled !== 1) {
      await verifyPassword(password, `scrypt$${this.scryptPrm.N}$${this.scryptPrm.r}$${this.scryptPrm.p}$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=`);
      return false; // same work either way: no user enumeration by timing
    }
    return verifyPassword(password, r.credential);
  }

  /** Issue a fresh random cookie (e.g. for the RFC 8803 Cookie TLV); the store keeps only its SHA-256. */
  issueSubscriberCookie(name: string, origin: Origin, bytes = 16): Buffer {
    checkName(name, 'subscriber');
    const cookie = randomBytes(bytes);
    this.policyWrite('issue cookie', () => {
      if (this.st.subSetCookie!.run(cookieDigest(cookie), this.now(), name).changes === 0) throw new DuocellError('DC_STORE_NOT_FOUND', `no subscriber ${name}`);
      this.audit(origin, 'issue-cookie', 'subscriber', name);
    });
    return cookie;
  }

  /** The enabled subscriber a cookie belongs to, if any. */
  subscriberByCookie(cookie: Buffer): string | undefined {
    return this.st.subByCookie!.get(cookieDigest(cookie)) as string | undefined;
  }

  subscriberByMac(mac: string): string | undefined {
    return this.st.subByMac!.get(checkMac(mac, 'mac')) as string | undefined;
  }

  // ---- policy resolution -----------------------------------------------------------------

  private fresh(): void {
    const t = this.now();
    if (t - this.lastCheck < this.recheckMs && this.index !== undefined) return;
    this.lastCheck = t;
    const dv = this.st.dataVersion!.get() as number;
    if (dv !== this.dataVersion) {
      this.dataVersion = dv;
      this.index = undefined;
      this.nsIndex = undefined;
    }
  }

  private buildIndex(): PolicyIndex {
    const subs = new Map<string, { name: string; policy: string | null; prefixes: string[] }>();
    for (const r of this.st.indexRows!.iterate() as Iterable<{ name: string; policy: string | null; value: string | null }>) {
      let s = subs.get(r.name);
      if (s === undefined) subs.set(r.name, (s = { name: r.name, policy: r.policy, prefixes: [] }));
      if (r.value !== null) s.prefixes.push(r.value);
    }
    return new PolicyIndex({ policies: this.listPolicies(), subscribers: [...subs.values()], boardDefaults: this.boardDefaults });
  }

  /**
   * The policy for a new session from client address `addr` (numeric IPv4/IPv6; an IPv4-mapped
   * IPv6 address counts as IPv4): the longest matching subscriber prefix, its policy merged
   * over `default`, the board's defaults and the built-in ones. Served from memory; the index
   * is rebuilt after a change through this Store, and within `recheckMs` of a change made by
   * another process.
   */
  resolvePolicy(addr: string): EffectivePolicy {
    this.fresh();
    if (this.index === undefined) this.index = this.buildIndex();
    return this.index.lookup(addr);
  }

  /**
   * The policy of the enabled subscriber `name` (a client known by its credential rather than its
   * address: a Convert cookie, a SOCKS user); undefined when there is none.
   */
  resolveSubscriber(name: string): EffectivePolicy | undefined {
    this.fresh();
    if (this.index === undefined) this.index = this.buildIndex();
    return this.index.byName.get(name);
  }

  /** The defaults in force (no subscriber matched). */
  defaultPolicy(): EffectivePolicy {
    this.fresh();
    if (this.index === undefined) this.index = this.buildIndex();
    return this.index.fallback;
  }

  // ---- N-server limits -------------------------------------------------------------------

  listNServerLimits(): NServerLimitSpec[] {
    return this.st.nsAll!.all() as NServerLimitSpec[];
  }

  setNServerLimit(spec: NServerLimitSpec, origin: Origin): NServerLimitSpec {
    const l = normalizeNServerLimit(spec);
    return this.policyWrite('set nserver limit', () => {
      this.st.nsSet!.run(l.prefix, l.maxSessions);
      this.audit(origin, 'set', 'nserver-limit', l.prefix, { maxSessions: l.maxSessions });
      return l;
    });
  }

  removeNServerLimit(prefix: string, origin: Origin): void {
    const l = normalizeNServerLimit({ prefix, maxSessions: 0 });
    this.policyWrite('remove nserver limit', () => {
      if (this.st.nsDel!.run(l.prefix).changes === 0) throw new DuocellError('DC_STORE_NOT_FOUND', `no limit for ${l.prefix}`);
      this.audit(origin, 'remove', 'nserver-limit', l.prefix);
    });
  }

  /** The operator's box-wide limit for N-server `addr` (the longest matching N-server limit), if any. */
  nserverCap(addr: string): number | undefined {
    const l = this.nserverLimit(addr, null);
    return l ?? undefined;
  }

  /** Maximum concurrent sessions to N-server `addr`: the longest matching limit, else the default policy's. */
  nserverLimit(addr: string): number;
  nserverLimit(addr: string, fallback: null): number | null;
  nserverLimit(addr: string, fallback?: null): number | null {
    this.fresh();
    if (this.nsIndex === undefined) {
      this.nsIndex = this.listNServerLimits()
        .map((l) => ({ p: parsePrefix(l.prefix)!, max: l.maxSessions }))
        .sort((a, b) => b.p.len - a.p.len);
    }
    const a = parseAddr(addr);
    if (a !== undefined) for (const e of this.nsIndex) if (prefixContains(e.p, a)) return e.max;
    return fallback === null ? null : this.defaultPolicy().maxSessionsPerNServer;
  }

  // ---- candidate proxies -----------------------------------------------------------------

  listProxies(): Array<Required<ProxySpec>> {
    type Row = Omit<Required<ProxySpec>, 'enabled' | 'apps' | 'policies'> & { enabled: number; apps: string; policies: string };
    return (this.st.pxAll!.all() as Row[]).map((r) => ({
      ...r,
      enabled: r.enabled === 1,
      apps: JSON.parse(r.apps) as Required<ProxySpec>['apps'],
      policies: JSON.parse(r.policies) as string[],
    }));
  }

  setProxy(spec: ProxySpec, origin: Origin): Required<ProxySpec> {
    const p = normalizeProxy(spec);
    return this.policyWrite('set proxy', () => {
      const other = this.listProxies().find((o) => o.name === p.name && (o.address !== p.address || o.port !== p.port));
      if (other !== undefined) throw new DuocellError('DC_STORE_CONSTRAINT', `proxy name ${p.name} is taken by ${other.address}:${other.port}`);
      this.st.pxSet!.run(proxyRow(p));
      this.audit(origin, 'set', 'proxy', `${p.address}:${p.port}`, p);
      return p;
    });
  }

  /**
   * Replace the whole candidate list (web PUT, CLI). Refused as a whole (duplicate names,
   * bad fields): the old list stays in force.
   */
  replaceProxies(list: unknown, origin: Origin): Array<Required<ProxySpec>> {
    const ps = normalizeProxies(list);
    return this.policyWrite('replace proxies', () => {
      this.st.pxDelAll!.run();
      for (const p of ps) this.st.pxSet!.run(proxyRow(p));
      this.audit(origin, 'replace', 'proxies', null, { count: ps.length, names: ps.map((p) => p.name) });
      return this.listProxies();
    });
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
    const p = normalizeProxy({ address, port, protocol: 'convert' });
    this.policyWrite('remove proxy', () => {
      if (this.st.pxDel!.run(p.address, p.port).changes === 0) throw new DuocellError('DC_STORE_NOT_FOUND', `no proxy ${p.address}:${p.port}`);
      this.audit(origin, 'remove', 'proxy', `${p.address}:${p.port}`);
    });
  }

  // ---- M-server cache (volatile: no audit, ordinary durability) ----------------------------

  rememberMServer(address: string, port: number, ttlMs: number): void {
    const a = parseAddr(address);
    if (a === undefined || !Number.isInteger(port) || port < 1 || port > 65535 || !(ttlMs > 0)) {
      throw new DuocellError('DC_STORE_INVALID', 'mserver: expected an address, a port and a positive TTL');
    }
    try {
      this.st.mcPut!.run(address, port, this.now() + Math.floor(ttlMs));
    } catch (e) {
      throw sqliteError(e, 'remember mserver');
    }
  }

  isMServer(address: string, port: number): boolean {
    const exp = this.st.mcGet!.get(address, port) as number | undefined;
    return exp !== undefined && exp > this.now();
  }

  forgetMServer(address: string, port: number): void {
    this.st.mcDel!.run(address, port);
  }

  listMServers(): MServerEntry[] {
    return this.st.mcAll!.all(this.now()) as MServerEntry[];
  }

  purgeMServers(): number {
    return this.st.mcPurge!.run(this.now()).changes;
  }

  // ---- audit, settings, secrets, admin credentials -----------------------------------------

  listAudit(o: { limit?: number; before?: number } = {}): AuditEntry[] {
    const rows = this.st.auditList!.all(o.before ?? Number.MAX_SAFE_INTEGER, Math.max(1, Math.min(o.limit ?? 100, 10_000))) as Array<
      Omit<AuditEntry, 'detail'> & { detail: string | null }
    >;
    return rows.map((r) => ({ ...r, detail: r.detail === null ? null : (JSON.parse(r.detail) as unknown) }));
  }

  getSetting(key: string): string | undefined {
    return this.st.settingGet!.get(key) as string | undefined;
  }

  setSetting(key: string, value: string | null, origin: Origin): void {
    checkName(key, 'setting');
    this.policyWrite('set setting', () => {
      if (value === null) this.st.settingDel!.run(key);
      else this.st.settingSet!.run(key, value);
      // values may be secrets (hashes, session tokens): the audit names the key, never the value
      this.audit(origin, value === null ? 'remove' : 'set', 'setting', key, value === null ? undefined : { length: value.length });
    });
  }

  /** Runtime state (poll status and the like): a `runtime.*` key, written without an audit row. */
  setRuntime(key: string, value: string): void {
    if (!key.startsWith('runtime.')) throw new DuocellError('DC_STORE_INVALID', 'runtime keys start with runtime.');
    try {
      this.st.settingSet!.run(key, value);
    } catch (e) {
      throw sqliteError(e, 'set runtime value');
    }
  }

  // ---- kernel ledger (what duocell changed in the kernel; see migrations/004) -------------

  /** Every ledger row, oldest first. */
  ledgerList(): LedgerRow[] {
    return this.db.prepare('SELECT kind, key, value FROM kernel_ledger ORDER BY recorded_at, kind, key').all() as LedgerRow[];
  }

  /**
   * Record a row before the kernel change it describes. `keepFirst`: an existing row stays as
   * it is (an original value is the one found before the FIRST change). Synchronous and committed
   * on return (WAL), so a kill right after the kernel change still finds it.
   */
  ledgerRecord(kind: LedgerRow['kind'], key: string, value: string, o: { keepFirst: boolean }): void {
    try {
      this.db
        .prepare(`INSERT INTO kernel_ledger (kind, key, value, recorded_at) VALUES (?, ?, ?, ?) ${o.keepFirst ? 'ON CONFLICT(kind, key) DO NOTHING' : 'ON CONFLICT(kind, key) DO UPDATE SET value = excluded.value'}`)
        .run(kind, key, value, this.now());
    } catch (e) {
      throw sqliteError(e, 'record a kernel change');
    }
  }

  ledgerForget(kind: LedgerRow['kind'], key: string): void {
    try {
      this.db.prepare('DELETE FROM kernel_ledger WHERE kind = ? AND key = ?').run(kind, key);
    } catch (e) {
      throw sqliteError(e, 'forget a kernel change');
    }
  }

  /** A random secret kept in the store (e.g. `web-session` for cookie signing), created on first use. */
  secret(name: string, bytes = 32): Buffer {
    const have = this.st.secretGet!.get(name) as Buffer | undefined;
    if (have !== undefined) return have;
    this.policyWrite('create secret', () => {
      this.st.secretPut!.run(name, randomBytes(bytes), this.now());
    });
    return this.st.secretGet!.get(name) as Buffer;
  }

  /** Set a local credential (e.g. `admin` of the web page) as an scrypt hash. */
  async setCredential(name: string, password: string, origin: Origin): Promise<void> {
    checkName(name, 'credential');
    const hash = await hashPassword(password, this.scryptPrm);
    this.policyWrite('set credential', () => {
      this.st.credPut!.run(name, hash, this.now());
      this.audit(origin, 'set-credential', 'credential', name);
    });
  }

  hasCredential(name: string): boolean {
    return this.st.credGet!.get(name) !== undefined;
  }

  async verifyCredential(name: string, password: string): Promise<boolean> {
    return verifyPassword(password, this.st.credGet!.get(name) as string | undefined);
  }

  // ---- trusted OTA keys ------------------------------------------------------------------

  listTrustedKeys(): TrustedKeyRow[] {
    return this.st.keyAll!.all() as TrustedKeyRow[];
  }

  addTrustedKey(keyId: string, publicKey: string, comment: string | null, origin: Origin): void {
    this.policyWrite('add trusted key', () => {
      this.st.keyPut!.run(keyId, publicKey, comment, this.now());
      this.audit(origin, 'add', 'ota-key', keyId, { comment });
    });
  }

  removeTrustedKey(keyId: string, origin: Origin): void {
    this.policyWrite('remove trusted key', () => {
      if (this.st.keyDel!.run(keyId).changes === 0) throw new DuocellError('DC_STORE_NOT_FOUND', `no trusted key ${keyId}`);
      this.audit(origin, 'remove', 'ota-key', keyId);
    });
  }

  // ---- whole policy sets (OTA) -------------------------------------------------------------

  otaState(): OtaVersionState {
    const r = this.st.otaGet!.get() as { current_version: number; highest_version: number; applied_at: number | null; bundle_sha256: string | null };
    const p = this.st.prevMeta!.get() as { version: number; saved_at: number } | undefined;
    return {
      currentVersion: r.current_version,
      highestVersion: r.highest_version,
      appliedAt: r.applied_at,
      bundleSha256: r.bundle_sha256,
      previous: p === undefined ? null : { version: p.version, savedAt: p.saved_at },
    };
  }

  /** Everything policy-related, as a PolicySet (what a full bundle carries). */
  exportPolicySet(): PolicySet {
    const subs = this.listSubscribers();
    const cred = new Map(
      (this.db.prepare('SELECT name, credential FROM subscribers WHERE credential IS NOT NULL').all() as Array<{ name: string; credential: string }>).map(
        (r) => [r.name, r.credential],
      ),
    );
    return {
      policies: this.listPolicies(),
      subscribers: subs.map((s) => {
        const o: SubscriberSpec = { name: s.name, policy: s.policy, enabled: s.enabled, addresses: s.addresses, macs: s.macs };
        const c = cred.get(s.name);
        if (c !== undefined) o.credential = c;
        return o;
      }),
      nserverLimits: this.listNServerLimits(),
      proxies: this.listProxies(),
    };
  }

  /**
   * Replace everything with `set`. Identifiers that stay are re-pointed in place rather than
   * deleted and inserted again, and subscribers that go are deleted last, so a bundle that
   * mostly repeats the previous one costs little more than its reading.
   */
  private writeFull(set: NormalPolicySet): void {
    const now = this.now();
    const keep = new Set(set.policies.map((p) => p.name));
    for (const p of set.policies) this.st.policyUpsert!.run({ ...p, updated_at: now });
    if (!keep.has('default')) this.st.policyUpsert!.run({ ...normalizePolicy({ name: 'default' }), updated_at: now });
    if (set.subscribers.length === 0) this.st.idDelAll!.run();
    else this.writeSubscribers(set.subscribers, now, true);
    this.st.subDelExcept!.run(JSON.stringify(set.subscribers.map((s) => s.name)));
    for (const p of this.listPolicies()) if (p.name !== 'default' && !keep.has(p.name)) this.st.policyDel!.run(p.name);
    this.st.nsDelAll!.run();
    for (const l of set.nserverLimits) this.st.nsSet!.run(l.prefix, l.maxSessions);
    this.st.pxDelAll!.run();
    for (const p of set.proxies) this.st.pxSet!.run(proxyRow(p));
  }

  /**
   * Upsert many subscribers and insert their identifiers (the caller has freed those). The rows
   * travel as one JSON array and are expanded by SQLite (json_each): four statements instead of
   * one call per row, which is what keeps a 10,000-subscriber bundle well under a second.
   */
  private writeSubscribers(subs: NormalSubscriber[], now: number, replaceAll = false): void {
    if (subs.length === 0) return;
    for (const name of new Set(subs.map((s) => s.policy ?? 'default'))) this.policyIdOf(name); // DC_STORE_NOT_FOUND
    const rows = JSON.stringify(
      subs.map((s) => ({ n: s.name, p: s.policy, e: s.enabled ? 1 : 0, c: s.credential ?? null, k: s.credential === undefined ? 1 : 0, a: s.addresses, m: s.macs })),
    );
    this.st.bulkSubsKeep!.run({ rows, now });
    this.st.bulkSubsSet!.run({ rows, now });
    if (replaceAll) {
      // the set is complete and its identifiers unique: drop the ones it lacks, re-point the rest
      this.st.bulkIdsDelExcept!.run({ rows });
      this.st.bulkIdsRepointPrefix!.run({ rows });
      this.st.bulkIdsRepointMac!.run({ rows });
    } else {
      this.st.bulkIds!.run({ rows });
    }
  }

  private writeDelta(d: PolicyDelta): void {
    const now = this.now();
    for (const p of d.upsert.policies) this.st.policyUpsert!.run({ ...p, updated_at: now });
    for (const n of d.remove.subscribers) this.st.subDel!.run(n);
    // free the identifiers of every upserted subscriber first, so identifiers may move between them
    for (const s of d.upsert.subscribers) {
      const r = this.st.subGet!.get(s.name) as SubRow | undefined;
      if (r !== undefined) this.st.idDelOf!.run(r.id);
    }
    this.writeSubscribers(d.upsert.subscribers, now);
    for (const n of d.remove.policies) {
      if (n === 'default') continue;
      const users = this.st.policyUsers!.get(n) as number;
      if (users > 0) throw new DuocellError('DC_STORE_IN_USE', `policy ${n} is still used by ${users} subscriber(s)`);
      this.st.policyDel!.run(n);
    }
    for (const l of d.upsert.nserverLimits) this.st.nsSet!.run(l.prefix, l.maxSessions);
    for (const p of d.remove.nserverLimits) this.st.nsDel!.run(p);
    for (const p of d.upsert.proxies) this.st.pxSet!.run(proxyRow(p));
    for (const p of d.remove.proxies) this.st.pxDel!.run(p.address, p.port);
  }

  /**
   * Apply a verified bundle's content as ONE transaction: keep the current state as the
   * previous version (one-step rollback), write the new set, move the version, audit it.
   * A crash at any point leaves exactly the old or exactly the new version.
   */
  applyPolicyVersion(rec: ApplyRecord, content: { full: NormalPolicySet } | { delta: PolicyDelta }): OtaVersionState {
    this.policyWrite('apply bundle', () => {
      const st = this.otaState();
      if (rec.version <= st.highestVersion) {
        throw new DuocellError('DC_OTA_ROLLBACK', `version ${rec.version} is not newer than ${st.highestVersion}`);
      }
      if (rec.kind === 'delta' && rec.base !== st.currentVersion) {
        throw new DuocellError('DC_OTA_BASE_MISMATCH', `delta against ${rec.base}, current version is ${st.currentVersion}`);
      }
      const now = this.now();
      this.st.prevPut!.run(st.currentVersion, this.st.snapshot!.get() as string, now);
      if ('full' in content) this.writeFull(content.full);
      else this.writeDelta(content.delta);
      this.st.otaSet!.run(rec.version, rec.version, now, rec.sha256);
      const counts = 'full' in content
        ? { policies: content.full.policies.length, subscribers: content.full.subscribers.length, nserverLimits: content.full.nserverLimits.length, proxies: content.full.proxies.length }
        : { upserted: content.delta.upsert.subscribers.length, removed: content.delta.remove.subscribers.length };
      this.audit(`ota:${rec.version}`, 'apply', 'bundle', String(rec.version), { kind: rec.kind, base: rec.base, from: st.currentVersion, sha256: rec.sha256, ...counts });
    });
    return this.otaState();
  }

  /** Return to the version before the last apply (one step). The highest version seen stays refused. */
  rollbackPolicyVersion(): OtaVersionState {
    const prev = this.st.prevGet!.get() as { version: number; snapshot: string; saved_at: number } | undefined;
    if (prev === undefined) throw new DuocellError('DC_OTA_NO_PREVIOUS', 'no previous version is kept');
    const set = normalizePolicySet(JSON.parse(prev.snapshot) as PolicySet);
    this.policyWrite('rollback', () => {
      const st = this.otaState();
      this.writeFull(set);
      this.st.otaSet!.run(prev.version, prev.version, this.now(), null);
      this.st.prevDel!.run();
      this.audit('ota:rollback', 'rollback', 'bundle', String(prev.version), { from: st.currentVersion, to: prev.version });
    });
    return this.otaState();
  }

  /** SHA-256 of the policy content, for tests and for comparing two boxes. */
  policyDigest(): string {
    return createHash('sha256').update(JSON.stringify(this.exportPolicySet())).digest('hex');
  }

  /** PRAGMA integrity_check: 'ok' or the problems found. */
  integrityCheck(): string {
    return (this.db.pragma('integrity_check') as Array<{ integrity_check: string }>).map((r) => r.integrity_check).join('; ');
  }

  /** The defaults without any policy row (for docs and tests). */
  static get builtinDefaults(): ResolvedDefaults {
    return BUILTIN_DEFAULTS;
  }

  static merge = mergePolicy;
}

/** A normalised candidate as the proxies table's row. */
function proxyRow(p: Required<ProxySpec>): Record<string, unknown> {
  return { ...p, enabled: p.enabled ? 1 : 0, apps: JSON.stringify(p.apps), policies: JSON.stringify(p.policies) };
}

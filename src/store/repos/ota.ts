import type { Statement } from 'better-sqlite3';
import { DuocellError } from '../../core/errors.js';
import type { Db } from '../db.js';
import { normalizePolicySet, type NormalPolicySet, type PolicyDelta } from '../policy-set.js';
import type { Tx } from '../tx.js';
import type { Origin, PolicySet, SubscriberSpec } from '../types.js';
import { normalizePolicy } from '../validate.js';
import type { NServerLimitsRepo } from './nserver-limits.js';
import type { PoliciesRepo } from './policies.js';
import type { ProxiesRepo } from './proxies.js';
import type { SubscribersRepo } from './subscribers.js';

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

interface StateRow {
  current_version: number;
  highest_version: number;
  applied_at: number | null;
  bundle_sha256: string | null;
}

/** The policy repositories a bundle writes through. */
export interface PolicyRepos {
  policies: PoliciesRepo;
  subscribers: SubscribersRepo;
  nserverLimits: NServerLimitsRepo;
  proxies: ProxiesRepo;
}

/**
 * Whole policy sets (OTA): the version state (table `ota_state`), the one-step rollback
 * snapshot (`ota_previous`) and the trusted bundle keys (`ota_keys`). A bundle is applied
 * as ONE transaction through the policy repositories.
 */
export class OtaRepo {
  readonly #tx: Tx;
  readonly #now: () => number;
  readonly #r: PolicyRepos;
  readonly #get: Statement<[], StateRow>;
  readonly #set: Statement<[number, number, number, string | null]>;
  readonly #prevGet: Statement<[], { version: number; snapshot: string; saved_at: number }>;
  readonly #prevMeta: Statement<[], { version: number; saved_at: number }>;
  readonly #prevPut: Statement<[number, string, number]>;
  readonly #prevDel: Statement<[]>;
  readonly #snapshot: Statement<[], string>;
  readonly #keyAll: Statement<[], TrustedKeyRow>;
  readonly #keyPut: Statement<[string, string, string | null, number]>;
  readonly #keyDel: Statement<[string]>;

  constructor(db: Db, tx: Tx, now: () => number, repos: PolicyRepos) {
    this.#tx = tx;
    this.#now = now;
    this.#r = repos;
    this.#get = db.prepare('SELECT current_version, highest_version, applied_at, bundle_sha256 FROM ota_state WHERE id = 1');
    this.#set = db.prepare('UPDATE ota_state SET current_version = ?, highest_version = max(highest_version, ?), applied_at = ?, bundle_sha256 = ? WHERE id = 1');
    this.#prevGet = db.prepare('SELECT version, snapshot, saved_at FROM ota_previous WHERE id = 1');
    this.#prevMeta = db.prepare('SELECT version, saved_at FROM ota_previous WHERE id = 1');
    this.#prevPut = db.prepare(`INSERT INTO ota_previous (id, version, snapshot, saved_at) VALUES (1, ?, ?, ?)
      ON CONFLICT(id) DO UPDATE SET version = excluded.version, snapshot = excluded.snapshot, saved_at = excluded.saved_at`);
    this.#prevDel = db.prepare('DELETE FROM ota_previous WHERE id = 1');
    this.#snapshot = db.prepare<[], string>(SNAPSHOT_SQL).pluck();
    this.#keyAll = db.prepare('SELECT key_id AS keyId, public_key AS publicKey, comment, added_at AS addedAt FROM ota_keys ORDER BY key_id');
    this.#keyPut = db.prepare('INSERT INTO ota_keys (key_id, public_key, comment, added_at) VALUES (?, ?, ?, ?) ON CONFLICT(key_id) DO UPDATE SET comment = excluded.comment');
    this.#keyDel = db.prepare('DELETE FROM ota_keys WHERE key_id = ?');
  }

  state(): OtaVersionState {
    const r = this.#get.get()!;
    const p = this.#prevMeta.get();
    return {
      currentVersion: r.current_version,
      highestVersion: r.highest_version,
      appliedAt: r.applied_at,
      bundleSha256: r.bundle_sha256,
      previous: p === undefined ? null : { version: p.version, savedAt: p.saved_at },
    };
  }

  /** Everything policy-related, as a PolicySet (what a full bundle carries). */
  exportSet(): PolicySet {
    const cred = this.#r.subscribers.credentials();
    return {
      policies: this.#r.policies.list(),
      subscribers: this.#r.subscribers.list().map((s) => {
        const o: SubscriberSpec = { name: s.name, policy: s.policy, enabled: s.enabled, addresses: s.addresses, macs: s.macs };
        const c = cred.get(s.name);
        if (c !== undefined) o.credential = c;
        return o;
      }),
      nserverLimits: this.#r.nserverLimits.list(),
      proxies: this.#r.proxies.list(),
    };
  }

  /**
   * Apply a verified bundle's content as ONE transaction: keep the current state as the
   * previous version (one-step rollback), write the new set, move the version, audit it.
   * A crash at any point leaves exactly the old or exactly the new version.
   */
  apply(rec: ApplyRecord, content: { full: NormalPolicySet } | { delta: PolicyDelta }): OtaVersionState {
    this.#tx.audited('apply bundle', `ota:${rec.version}`, (audit) => {
      const st = this.state();
      if (rec.version <= st.highestVersion) {
        throw new DuocellError('DC_OTA_ROLLBACK', `version ${rec.version} is not newer than ${st.highestVersion}`);
      }
      if (rec.kind === 'delta' && rec.base !== st.currentVersion) {
        throw new DuocellError('DC_OTA_BASE_MISMATCH', `delta against ${rec.base}, current version is ${st.currentVersion}`);
      }
      const now = this.#now();
      this.#prevPut.run(st.currentVersion, this.#snapshot.get()!, now);
      if ('full' in content) this.#writeFull(content.full);
      else this.#writeDelta(content.delta);
      this.#set.run(rec.version, rec.version, now, rec.sha256);
      const counts = 'full' in content
        ? { policies: content.full.policies.length, subscribers: content.full.subscribers.length, nserverLimits: content.full.nserverLimits.length, proxies: content.full.proxies.length }
        : { upserted: content.delta.upsert.subscribers.length, removed: content.delta.remove.subscribers.length };
      audit('apply', 'bundle', String(rec.version), { kind: rec.kind, base: rec.base, from: st.currentVersion, sha256: rec.sha256, ...counts });
    });
    return this.state();
  }

  /** Return to the version before the last apply (one step). The highest version seen stays refused. */
  rollback(): OtaVersionState {
    const prev = this.#prevGet.get();
    if (prev === undefined) throw new DuocellError('DC_OTA_NO_PREVIOUS', 'no previous version is kept');
    const set = normalizePolicySet(JSON.parse(prev.snapshot) as PolicySet);
    this.#tx.audited('rollback', 'ota:rollback', (audit) => {
      const st = this.state();
      this.#writeFull(set);
      this.#set.run(prev.version, prev.version, this.#now(), null);
      this.#prevDel.run();
      audit('rollback', 'bundle', String(prev.version), { from: st.currentVersion, to: prev.version });
    });
    return this.state();
  }

  listKeys(): TrustedKeyRow[] {
    return this.#keyAll.all();
  }

  addKey(keyId: string, publicKey: string, comment: string | null, origin: Origin): void {
    this.#tx.audited('add trusted key', origin, (audit) => {
      this.#keyPut.run(keyId, publicKey, comment, this.#now());
      audit('add', 'ota-key', keyId, { comment });
    });
  }

  removeKey(keyId: string, origin: Origin): void {
    this.#tx.audited('remove trusted key', origin, (audit) => {
      if (this.#keyDel.run(keyId).changes === 0) throw new DuocellError('DC_STORE_NOT_FOUND', `no trusted key ${keyId}`);
      audit('remove', 'ota-key', keyId);
    });
  }

  /**
   * Replace everything with `set`. Identifiers that stay are re-pointed in place rather than
   * deleted and inserted again, and subscribers that go are deleted last, so a bundle that
   * mostly repeats the previous one costs little more than its reading.
   */
  #writeFull(set: NormalPolicySet): void {
    const { policies, subscribers, nserverLimits, proxies } = this.#r;
    const keep = new Set(set.policies.map((p) => p.name));
    for (const p of set.policies) policies.upsertRow(p);
    if (!keep.has('default')) policies.upsertRow(normalizePolicy({ name: 'default' }));
    if (set.subscribers.length === 0) subscribers.deleteAllIds();
    else subscribers.writeMany(set.subscribers, true);
    subscribers.deleteExcept(set.subscribers.map((s) => s.name));
    for (const p of policies.list()) if (p.name !== 'default' && !keep.has(p.name)) policies.delete(p.name);
    nserverLimits.replace(set.nserverLimits);
    proxies.replace(set.proxies);
  }

  #writeDelta(d: PolicyDelta): void {
    const { policies, subscribers, nserverLimits, proxies } = this.#r;
    for (const p of d.upsert.policies) policies.upsertRow(p);
    for (const n of d.remove.subscribers) subscribers.delete(n);
    // free the identifiers of every upserted subscriber first, so identifiers may move between them
    for (const s of d.upsert.subscribers) subscribers.freeIds(s.name);
    subscribers.writeMany(d.upsert.subscribers);
    for (const n of d.remove.policies) if (n !== 'default') policies.deleteUnused(n);
    for (const l of d.upsert.nserverLimits) nserverLimits.put(l);
    for (const p of d.remove.nserverLimits) nserverLimits.delete(p);
    for (const p of d.upsert.proxies) proxies.put(p);
    for (const p of d.remove.proxies) proxies.delete(p.address, p.port);
  }
}

/** The whole policy set as one JSON document, built inside SQLite (a PolicySet). */
const SNAPSHOT_SQL = `SELECT json_object(
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
      'name', name, 'location', location, 'type', type, 'socks5', socks5, 'apps', json(apps), 'policies', json(policies))) FROM proxies))`;

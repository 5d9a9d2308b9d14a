import { randomBytes } from 'node:crypto';
import type { Statement } from 'better-sqlite3';
import { DuocellError } from '../../core/errors.js';
import { cookieDigest, hashPassword, verifyPassword, type ScryptParams } from '../credentials.js';
import type { Db } from '../db.js';
import type { Tx } from '../tx.js';
import type { Origin, SubscriberRecord, SubscriberSpec } from '../types.js';
import { checkMac, checkName, normalizeSubscriber, type NormalSubscriber } from '../validate.js';
import type { PoliciesRepo } from './policies.js';

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

type IdKind = 'prefix' | 'mac';
interface IdRow {
  kind: IdKind;
  value: string;
}
interface WriteRow {
  name: string;
  policy_id: number | null;
  enabled: number;
  credential: string | null;
  now: number;
}
type Bulk = Statement<[{ rows: string; now?: number }]>;

/** A subscriber's identifiers in the audit log. */
const seen = (r: SubscriberRecord): Record<string, unknown> => ({ policy: r.policy, addresses: r.addresses, macs: r.macs, enabled: r.enabled });

/**
 * Subscribers and their identifiers (tables `subscribers`, `subscriber_ids`), their password
 * hashes and cookie digests. Bulk writes (bundles) travel as one JSON array expanded by SQLite.
 */
export class SubscribersRepo {
  readonly #tx: Tx;
  readonly #policies: PoliciesRepo;
  readonly #now: () => number;
  readonly #scrypt: ScryptParams;
  readonly #all: Statement<[number, number], SubRow>;
  readonly #get: Statement<[string], SubRow>;
  readonly #count: Statement<[], number>;
  readonly #idsOf: Statement<[number], IdRow>;
  readonly #idsAll: Statement<[], IdRow & { sid: number }>;
  readonly #upsert: Statement<[WriteRow & { keep_credential: number }], number>;
  readonly #insert: Statement<[WriteRow], number>;
  readonly #del: Statement<[string]>;
  readonly #delExcept: Statement<[string]>;
  readonly #setCredential: Statement<[string | null, number, string]>;
  readonly #setCookie: Statement<[string, number, string]>;
  readonly #byCookie: Statement<[string], string>;
  readonly #byMac: Statement<[string], string>;
  readonly #idOwner: Statement<[IdKind, string], string>;
  readonly #idInsert: Statement<[IdKind, string, number]>;
  readonly #idDelOf: Statement<[number]>;
  readonly #idDelAll: Statement<[]>;
  readonly #credentials: Statement<[], { name: string; credential: string }>;
  readonly #bulk: Record<'keep' | 'set' | 'ids' | 'idsDelExcept' | 'repointPrefix' | 'repointMac', Bulk>;

  constructor(db: Db, tx: Tx, policies: PoliciesRepo, now: () => number, scrypt: ScryptParams) {
    this.#tx = tx;
    this.#policies = policies;
    this.#now = now;
    this.#scrypt = scrypt;
    const withPolicy = 'SELECT s.*, p.name AS policy FROM subscribers s LEFT JOIN policies p ON p.id = s.policy_id';
    this.#all = db.prepare(`${withPolicy} ORDER BY s.name LIMIT ? OFFSET ?`);
    this.#get = db.prepare(`${withPolicy} WHERE s.name = ?`);
    this.#count = db.prepare<[], number>('SELECT count(*) FROM subscribers').pluck();
    this.#idsOf = db.prepare('SELECT kind, value FROM subscriber_ids WHERE subscriber_id = ? ORDER BY kind, value');
    this.#idsAll = db.prepare('SELECT subscriber_id AS sid, kind, value FROM subscriber_ids ORDER BY kind, value');
    const insert = `INSERT INTO subscribers (name, policy_id, enabled, credential, created_at, updated_at)
      VALUES (@name, @policy_id, @enabled, @credential, @now, @now)`;
    this.#upsert = db
      .prepare<[WriteRow & { keep_credential: number }], number>(`${insert}
        ON CONFLICT(name) DO UPDATE SET policy_id = excluded.policy_id, enabled = excluded.enabled,
          credential = CASE WHEN @keep_credential THEN subscribers.credential ELSE excluded.credential END,
          updated_at = excluded.updated_at
        RETURNING id`)
      .pluck();
    this.#insert = db.prepare<[WriteRow], number>(`${insert} RETURNING id`).pluck();
    this.#del = db.prepare('DELETE FROM subscribers WHERE name = ?');
    this.#delExcept = db.prepare('DELETE FROM subscribers WHERE name NOT IN (SELECT value FROM json_each(?))');
    this.#setCredential = db.prepare('UPDATE subscribers SET credential = ?, updated_at = ? WHERE name = ?');
    this.#setCookie = db.prepare('UPDATE subscribers SET cookie_hash = ?, updated_at = ? WHERE name = ?');
    this.#byCookie = db.prepare<[string], string>('SELECT name FROM subscribers WHERE cookie_hash = ? AND enabled = 1').pluck();
    const owner = 'SELECT s.name FROM subscriber_ids i JOIN subscribers s ON s.id = i.subscriber_id';
    this.#byMac = db.prepare<[string], string>(`${owner} WHERE i.kind = 'mac' AND i.value = ?`).pluck();
    this.#idOwner = db.prepare<[IdKind, string], string>(`${owner} WHERE i.kind = ? AND i.value = ?`).pluck();
    this.#idInsert = db.prepare('INSERT INTO subscriber_ids (kind, value, subscriber_id) VALUES (?, ?, ?)');
    this.#idDelOf = db.prepare('DELETE FROM subscriber_ids WHERE subscriber_id = ?');
    this.#idDelAll = db.prepare('DELETE FROM subscriber_ids');
    this.#credentials = db.prepare('SELECT name, credential FROM subscribers WHERE credential IS NOT NULL');
    this.#bulk = prepareBulk(db);
  }

  count(): number {
    return this.#count.get() ?? 0;
  }

  list(o: { limit?: number; offset?: number } = {}): SubscriberRecord[] {
    const limit = Math.max(0, Math.min(o.limit ?? 1_000_000, 1_000_000));
    const rows = this.#all.all(limit, Math.max(0, o.offset ?? 0));
    const ids = new Map<number, IdRow[]>();
    if (rows.length > 0) {
      const want = new Set(rows.map((r) => r.id));
      for (const i of this.#idsAll.iterate()) {
        if (!want.has(i.sid)) continue;
        let l = ids.get(i.sid);
        if (l === undefined) ids.set(i.sid, (l = []));
        l.push(i);
      }
    }
    return rows.map((r) => record(r, ids.get(r.id) ?? []));
  }

  get(name: string): SubscriberRecord | undefined {
    const r = this.#get.get(name);
    return r === undefined ? undefined : record(r, this.#idsOf.all(r.id));
  }

  /** Every stored credential hash by subscriber name (what a full bundle carries). */
  credentials(): Map<string, string> {
    return new Map(this.#credentials.all().map((r) => [r.name, r.credential]));
  }

  add(spec: SubscriberSpec, origin: Origin): SubscriberRecord {
    const s = normalizeSubscriber(spec);
    return this.#tx.audited('add subscriber', origin, (audit) => {
      if (this.#get.get(s.name) !== undefined) throw new DuocellError('DC_STORE_CONSTRAINT', `subscriber ${s.name} exists`);
      const sid = this.#insert.get(this.#writeRow(s))!;
      this.#insertIds(sid, s);
      const rec = this.get(s.name)!;
      audit('create', 'subscriber', s.name, seen(rec));
      return rec;
    });
  }

  /** Change some fields of a subscriber; identifiers given replace the old ones of that kind. */
  update(name: string, patch: Omit<SubscriberSpec, 'name'>, origin: Origin): SubscriberRecord {
    checkName(name, 'subscriber');
    return this.#tx.audited('update subscriber', origin, (audit) => {
      const cur = this.#mustGet(name);
      const s = normalizeSubscriber({
        name,
        policy: patch.policy === undefined ? cur.policy : patch.policy,
        enabled: patch.enabled ?? cur.enabled,
        addresses: patch.addresses ?? cur.addresses,
        macs: patch.macs ?? cur.macs,
        ...(patch.credential !== undefined ? { credential: patch.credential } : {}),
      });
      const sid = this.#upsert.get({ ...this.#writeRow(s), keep_credential: s.credential === undefined ? 1 : 0 })!;
      this.#idDelOf.run(sid);
      this.#insertIds(sid, s);
      const rec = this.get(name)!;
      audit('update', 'subscriber', name, { before: seen(cur), after: seen(rec) });
      return rec;
    });
  }

  remove(name: string, origin: Origin): void {
    checkName(name, 'subscriber');
    this.#tx.audited('remove subscriber', origin, (audit) => {
      const cur = this.#mustGet(name);
      this.#del.run(name);
      audit('remove', 'subscriber', name, { policy: cur.policy, addresses: cur.addresses, macs: cur.macs });
    });
  }

  /** Set (or, with null, clear) a subscriber's password; stored as an scrypt hash. */
  async setPassword(name: string, password: string | null, origin: Origin): Promise<void> {
    checkName(name, 'subscriber');
    const hash = password === null ? null : await hashPassword(password, this.#scrypt);
    this.#tx.audited('set credential', origin, (audit) => {
      this.#mustChange(this.#setCredential.run(hash, this.#now(), name).changes, name);
      audit(hash === null ? 'clear-credential' : 'set-credential', 'subscriber', name);
    });
  }

  async verifyPassword(name: string, password: string): Promise<boolean> {
    const r = typeof name === 'string' ? this.#get.get(name) : undefined;
    if (r === undefined || r.enabled !== 1) {
      const p = this.#scrypt;
      await verifyPassword(password, `scrypt$${p.N}$${p.r}$${p.p}$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=`);
      return false; // same work either way: no user enumeration by timing
    }
    return verifyPassword(password, r.credential);
  }

  /** Issue a fresh random cookie (e.g. for the RFC 8803 Cookie TLV); the store keeps only its SHA-256. */
  issueCookie(name: string, origin: Origin, bytes = 16): Buffer {
    checkName(name, 'subscriber');
    const cookie = randomBytes(bytes);
    this.#tx.audited('issue cookie', origin, (audit) => {
      this.#mustChange(this.#setCookie.run(cookieDigest(cookie), this.#now(), name).changes, name);
      audit('issue-cookie', 'subscriber', name);
    });
    return cookie;
  }

  /** The enabled subscriber a cookie belongs to, if any. */
  byCookie(cookie: Buffer): string | undefined {
    return this.#byCookie.get(cookieDigest(cookie));
  }

  byMac(mac: string): string | undefined {
    return this.#byMac.get(checkMac(mac, 'mac'));
  }

  // ---- raw writes, inside a caller's transaction (bundles) -------------------------------

  delete(name: string): void {
    this.#del.run(name);
  }

  /** Delete every subscriber not named in `keep`. */
  deleteExcept(keep: string[]): void {
    this.#delExcept.run(JSON.stringify(keep));
  }

  deleteAllIds(): void {
    this.#idDelAll.run();
  }

  /** Free the identifiers of `name` (when it exists), so they may move to another subscriber. */
  freeIds(name: string): void {
    const r = this.#get.get(name);
    if (r !== undefined) this.#idDelOf.run(r.id);
  }

  /**
   * Upsert many subscribers and insert their identifiers (the caller has freed those). The rows
   * travel as one JSON array and are expanded by SQLite (json_each): four statements instead of
   * one call per row, which is what keeps a 10,000-subscriber bundle well under a second.
   * `replaceAll`: the set is complete and its identifiers unique, so identifiers it lacks are
   * dropped and the rest re-pointed in place.
   */
  writeMany(subs: NormalSubscriber[], replaceAll = false): void {
    if (subs.length === 0) return;
    for (const name of new Set(subs.map((s) => s.policy ?? 'default'))) this.#policies.idOf(name); // DC_STORE_NOT_FOUND
    const rows = JSON.stringify(
      subs.map((s) => ({ n: s.name, p: s.policy, e: s.enabled ? 1 : 0, c: s.credential ?? null, k: s.credential === undefined ? 1 : 0, a: s.addresses, m: s.macs })),
    );
    const now = this.#now();
    const b = this.#bulk;
    b.keep.run({ rows, now });
    b.set.run({ rows, now });
    if (replaceAll) {
      b.idsDelExcept.run({ rows });
      b.repointPrefix.run({ rows });
      b.repointMac.run({ rows });
    } else {
      b.ids.run({ rows });
    }
  }

  #writeRow(s: NormalSubscriber): WriteRow {
    return { name: s.name, policy_id: this.#policies.idOf(s.policy), enabled: s.enabled ? 1 : 0, credential: s.credential ?? null, now: this.#now() };
  }

  #mustGet(name: string): SubscriberRecord {
    const cur = this.get(name);
    if (cur === undefined) throw new DuocellError('DC_STORE_NOT_FOUND', `no subscriber ${name}`);
    return cur;
  }

  #mustChange(changes: number, name: string): void {
    if (changes === 0) throw new DuocellError('DC_STORE_NOT_FOUND', `no subscriber ${name}`);
  }

  #insertIds(sid: number, s: NormalSubscriber): void {
    for (const [kind, list] of [['prefix', s.addresses], ['mac', s.macs]] as const) {
      for (const v of list) {
        const owner = this.#idOwner.get(kind, v);
        if (owner !== undefined) throw new DuocellError('DC_STORE_CONSTRAINT', `${v} already identifies subscriber ${owner}`);
        this.#idInsert.run(kind, v, sid);
      }
    }
  }
}

function record(r: SubRow, ids: IdRow[]): SubscriberRecord {
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

/** The bulk statements: rows as one JSON array of {n name, p policy, e enabled, c credential, k keep credential, a addresses, m macs}. */
function prepareBulk(db: Db): Record<'keep' | 'set' | 'ids' | 'idsDelExcept' | 'repointPrefix' | 'repointMac', Bulk> {
  const subs = (keep: 0 | 1): Bulk =>
    db.prepare(`INSERT INTO subscribers (name, policy_id, enabled, credential, created_at, updated_at)
      SELECT j.value->>'n', (SELECT id FROM policies WHERE name = j.value->>'p' AND name <> 'default'), j.value->>'e', ${keep ? 'NULL' : "j.value->>'c'"}, @now, @now
      FROM json_each(@rows) j WHERE j.value->>'k' = ${keep}
      ON CONFLICT(name) DO UPDATE SET policy_id = excluded.policy_id, enabled = excluded.enabled,${keep ? '' : ' credential = excluded.credential,'}
        updated_at = excluded.updated_at`);
  // the identifiers of kind `kind` (JSON member `m`) of every row, with the row's subscriber id
  const ids = (kind: IdKind, member: 'a' | 'm'): string =>
    `SELECT '${kind}', x.value, s.id FROM json_each(@rows) j JOIN subscribers s ON s.name = j.value->>'n' JOIN json_each(j.value, '$.${member}') x`;
  const repoint = (kind: IdKind, member: 'a' | 'm'): Bulk =>
    db.prepare(`INSERT INTO subscriber_ids (kind, value, subscriber_id) ${ids(kind, member)} WHERE true
      ON CONFLICT(kind, value) DO UPDATE SET subscriber_id = excluded.subscriber_id WHERE subscriber_id <> excluded.subscriber_id`);
  return {
    keep: subs(1),
    set: subs(0),
    ids: db.prepare(`INSERT INTO subscriber_ids (kind, value, subscriber_id) ${ids('prefix', 'a')} UNION ALL ${ids('mac', 'm')}`),
    idsDelExcept: db.prepare(`DELETE FROM subscriber_ids WHERE (kind, value) NOT IN (
      SELECT 'prefix', a.value FROM json_each(@rows) j JOIN json_each(j.value, '$.a') a
      UNION ALL
      SELECT 'mac', m.value FROM json_each(@rows) j JOIN json_each(j.value, '$.m') m)`),
    repointPrefix: repoint('prefix', 'a'),
    repointMac: repoint('mac', 'm'),
  };
}

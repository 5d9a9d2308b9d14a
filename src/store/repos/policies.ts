import type { Statement } from 'better-sqlite3';
import { DuocellError } from '../../core/errors.js';
import type { Db } from '../db.js';
import type { Tx } from '../tx.js';
import type { Origin, PolicySpec } from '../types.js';
import { checkName, normalizePolicy, policyFromRow, type PolicyRow } from '../validate.js';

type UpsertRow = PolicyRow & { updated_at: number };

/** Named policies (table `policies`); `default` always exists and is never removed. */
export class PoliciesRepo {
  readonly #tx: Tx;
  readonly #now: () => number;
  readonly #all: Statement<[], PolicyRow>;
  readonly #get: Statement<[string], PolicyRow>;
  readonly #id: Statement<[string], number>;
  readonly #upsert: Statement<[UpsertRow]>;
  readonly #del: Statement<[string]>;
  readonly #users: Statement<[string], number>;

  constructor(db: Db, tx: Tx, now: () => number) {
    this.#tx = tx;
    this.#now = now;
    this.#all = db.prepare('SELECT * FROM policies ORDER BY name');
    this.#get = db.prepare('SELECT * FROM policies WHERE name = ?');
    this.#id = db.prepare<[string], number>('SELECT id FROM policies WHERE name = ?').pluck();
    this.#upsert = db.prepare(`INSERT INTO policies (name, max_sessions_per_ue, max_subflows_per_session, max_sessions_per_nserver, steering_mode,
        ratio_cellular, ratio_wlan, allowed_networks, intercept_ports, updated_at)
      VALUES (@name, @max_sessions_per_ue, @max_subflows_per_session, @max_sessions_per_nserver, @steering_mode,
        @ratio_cellular, @ratio_wlan, @allowed_networks, @intercept_ports, @updated_at)
      ON CONFLICT(name) DO UPDATE SET max_sessions_per_ue = excluded.max_sessions_per_ue,
        max_subflows_per_session = excluded.max_subflows_per_session, max_sessions_per_nserver = excluded.max_sessions_per_nserver,
        steering_mode = excluded.steering_mode, ratio_cellular = excluded.ratio_cellular, ratio_wlan = excluded.ratio_wlan,
        allowed_networks = excluded.allowed_networks, intercept_ports = excluded.intercept_ports, updated_at = excluded.updated_at`);
    this.#del = db.prepare('DELETE FROM policies WHERE name = ?');
    this.#users = db.prepare<[string], number>('SELECT count(*) FROM subscribers s JOIN policies p ON p.id = s.policy_id WHERE p.name = ?').pluck();
  }

  list(): PolicySpec[] {
    return this.#all.all().map(policyFromRow);
  }

  get(name: string): PolicySpec | undefined {
    const r = this.#get.get(name);
    return r === undefined ? undefined : policyFromRow(r);
  }

  /** The row id a subscriber points at: null for `default` (and for no policy); DC_STORE_NOT_FOUND if unknown. */
  idOf(name: string | null): number | null {
    if (name === null) return null;
    const id = this.#id.get(name);
    if (id === undefined) throw new DuocellError('DC_STORE_NOT_FOUND', `no policy ${name}`);
    return name === 'default' ? null : id;
  }

  /** Create or replace a policy (all fields; absent ones inherit). */
  set(spec: PolicySpec, origin: Origin): PolicySpec {
    const row = normalizePolicy(spec);
    return this.#tx.audited('set policy', origin, (audit) => {
      const before = this.get(row.name);
      this.upsertRow(row);
      const after = policyFromRow(row);
      audit(before === undefined ? 'create' : 'update', 'policy', row.name, { before, after });
      return after;
    });
  }

  remove(name: string, origin: Origin): void {
    checkName(name, 'policy');
    if (name === 'default') throw new DuocellError('DC_STORE_INVALID', 'the default policy cannot be removed');
    this.#tx.audited('remove policy', origin, (audit) => {
      const before = this.get(name);
      if (before === undefined) throw new DuocellError('DC_STORE_NOT_FOUND', `no policy ${name}`);
      this.deleteUnused(name, 'is used by');
      audit('remove', 'policy', name, { before });
    });
  }

  // ---- raw writes, inside a caller's transaction (bundles) -------------------------------

  upsertRow(row: PolicyRow): void {
    this.#upsert.run({ ...row, updated_at: this.#now() });
  }

  /** Delete `name` unless a subscriber still uses it (DC_STORE_IN_USE). */
  deleteUnused(name: string, verb = 'is still used by'): void {
    const users = this.#users.get(name) ?? 0;
    if (users > 0) throw new DuocellError('DC_STORE_IN_USE', `policy ${name} ${verb} ${users} subscriber(s)`);
    this.#del.run(name);
  }

  delete(name: string): void {
    this.#del.run(name);
  }
}

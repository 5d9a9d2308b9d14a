import type { Statement } from 'better-sqlite3';
import { DuocellError } from '../../core/errors.js';
import type { Db } from '../db.js';
import type { Tx } from '../tx.js';
import type { Origin, ProxySpec } from '../types.js';
import { normalizeProxies, normalizeProxy } from '../validate.js';

export type Proxy = Required<ProxySpec>;
type ProxyRow = Omit<Proxy, 'enabled' | 'apps' | 'policies' | 'auth'> & { enabled: number; apps: string; policies: string; auth: string | null };

/** Candidate proxies (table `proxies`), keyed by (address, port). */
export class ProxiesRepo {
  readonly #tx: Tx;
  readonly #all: Statement<[], ProxyRow>;
  readonly #set: Statement<[ProxyRow]>;
  readonly #del: Statement<[string, number]>;
  readonly #delAll: Statement<[]>;

  constructor(db: Db, tx: Tx) {
    this.#tx = tx;
    this.#all = db.prepare('SELECT * FROM proxies ORDER BY priority DESC, address, port');
    this.#set = db.prepare(`INSERT INTO proxies (address, port, protocol, priority, weight, enabled, name, location, type, socks5, auth, apps, policies)
      VALUES (@address, @port, @protocol, @priority, @weight, @enabled, @name, @location, @type, @socks5, @auth, @apps, @policies)
      ON CONFLICT(address, port) DO UPDATE SET protocol = excluded.protocol, priority = excluded.priority, weight = excluded.weight, enabled = excluded.enabled,
        name = excluded.name, location = excluded.location, type = excluded.type, socks5 = excluded.socks5, auth = excluded.auth, apps = excluded.apps, policies = excluded.policies`);
    this.#del = db.prepare('DELETE FROM proxies WHERE address = ? AND port = ?');
    this.#delAll = db.prepare('DELETE FROM proxies');
  }

  list(): Proxy[] {
    return this.#all.all().map((r) => ({
      ...r,
      enabled: r.enabled === 1,
      apps: JSON.parse(r.apps) as Proxy['apps'],
      policies: JSON.parse(r.policies) as string[],
      auth: r.auth === null ? null : (JSON.parse(r.auth) as Proxy['auth']),
    }));
  }

  set(spec: ProxySpec, origin: Origin): Proxy {
    const p = normalizeProxy(spec);
    return this.#tx.audited('set proxy', origin, (audit) => {
      const other = this.list().find((o) => o.name === p.name && (o.address !== p.address || o.port !== p.port));
      if (other !== undefined) throw new DuocellError('DC_STORE_CONSTRAINT', `proxy name ${p.name} is taken by ${other.address}:${other.port}`);
      this.put(keepPasswords([p], this.list())[0]!);
      audit('set', 'proxy', `${p.address}:${p.port}`, p);
      return p;
    });
  }

  /**
   * Replace the whole candidate list (web PUT, CLI, board defaults). Refused as a whole
   * (duplicate names, bad fields): the old list stays in force.
   */
  replaceAll(list: unknown, origin: Origin): Proxy[] {
    const ps = normalizeProxies(list);
    return this.#tx.audited('replace proxies', origin, (audit) => {
      this.replace(ps);
      audit('replace', 'proxies', null, { count: ps.length, names: ps.map((p) => p.name) });
      return this.list();
    });
  }

  remove(address: string, port: number, origin: Origin): void {
    const p = normalizeProxy({ address, port, protocol: 'convert' });
    this.#tx.audited('remove proxy', origin, (audit) => {
      if (this.delete(p.address, p.port) === 0) throw new DuocellError('DC_STORE_NOT_FOUND', `no proxy ${p.address}:${p.port}`);
      audit('remove', 'proxy', `${p.address}:${p.port}`);
    });
  }

  // ---- raw writes, inside a caller's transaction (bundles) -------------------------------

  put(p: Proxy): void {
    if (p.auth !== null && p.auth.password === undefined) {
      throw new DuocellError('DC_STORE_INVALID', `proxy ${p.name}: auth.password is required (none is stored for it)`, { fields: [{ path: 'auth.password', message: 'required' }] });
    }
    this.#set.run({ ...p, enabled: p.enabled ? 1 : 0, auth: p.auth === null ? null : JSON.stringify(p.auth), apps: JSON.stringify(p.apps), policies: JSON.stringify(p.policies) });
  }

  delete(address: string, port: number): number {
    return this.#del.run(address, port).changes;
  }

  replace(list: Proxy[]): void {
    const kept = keepPasswords(list, this.list());
    this.#delAll.run();
    for (const p of kept) this.put(p);
  }
}

/**
 * Credentials written back without a password (the API and the page never show it) keep the
 * password stored for the same candidate (by name, else by endpoint) when the username is the same.
 */
export function keepPasswords(list: Proxy[], stored: readonly Proxy[]): Proxy[] {
  return list.map((p) => {
    if (p.auth === null || p.auth.password !== undefined) return p;
    const old = stored.find((o) => o.name === p.name) ?? stored.find((o) => o.address === p.address && o.port === p.port);
    const pw = old?.auth?.username === p.auth.username ? old.auth.password : undefined;
    return pw === undefined ? p : { ...p, auth: { username: p.auth.username, password: pw } };
  });
}

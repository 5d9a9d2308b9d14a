import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Store, MIGRATIONS } from '../../src/store/index.js';
import { normalizeProxies } from '../../src/store/validate.js';
import { OtaService } from '../../src/ota/index.js';
import { isDuocellError } from '../../src/core/errors.js';
import { OPERATOR, synthSet, fullDoc, signed } from './ota-fixtures.js';
import { proxyViews } from '../../src/wiring/proxies.js';
import { socketIo } from '../../src/drivers/sockets/io.js';

/** Candidate proxies in the store (issue 15): migration, validation, board seed, OTA, refusals. */

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-proxy-cand-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (e) {
    return isDuocellError(e) ? e.code : `not a DuocellError: ${String(e)}`;
  }
}

const siteA = {
  name: 'site-a',
  address: '192.0.2.10',
  port: 5124,
  protocol: 'convert' as const,
  location: 'cdn-east',
  type: 'off-path' as const,
  priority: 10,
  weight: 2,
  apps: [{ name: 'video', ports: [443], prefixes: ['198.51.100.7/24'] }],
  policies: ['premium'],
  socks5: '192.0.2.10:1080',
};
const siteB = { name: 'site-b', address: '2001:db8::20', port: 5124, protocol: 'convert' as const, location: 'core' };
const onPath = { name: 'self', address: '127.0.0.1', port: 5124, protocol: 'convert' as const, type: 'on-path' as const, priority: -1 };

t.test('migration 005 names rows of a version-4 database after their endpoint', async (t) => {
  const file = path.join(tmp, 'm4.db');
  const db = new Database(file);
  for (const m of MIGRATIONS.filter((m) => m.version <= 4)) db.exec(m.sql);
  db.pragma('user_version = 4');
  db.prepare("INSERT INTO proxies (address, port, protocol, priority, weight, enabled) VALUES ('192.0.2.1', 5124, 'convert', 3, 1, 1)").run();
  db.close();
  const s = await Store.open({ file });
  t.teardown(() => s.close());
  const [p] = s.listProxies();
  t.match(p, { name: 'px-192.0.2.1-5124', address: '192.0.2.1', priority: 3, type: 'off-path', location: '', socks5: null, apps: [], policies: [] });
});

t.test('replace, normalise, refuse as a whole', async (t) => {
  const s = await Store.open({ dir: path.join(tmp, 'r') });
  t.teardown(() => s.close());
  const r = s.replaceProxies([siteA, siteB, onPath], 'web');
  t.equal(r.length, 3);
  const a = r.find((p) => p.name === 'site-a')!;
  t.same(a.apps, [{ name: 'video', ports: [443], prefixes: ['198.51.100.0/24'] }], 'prefix canonical');
  t.equal(a.socks5, '192.0.2.10:1080');
  t.equal(r.find((p) => p.name === 'site-b')!.type, 'off-path', 'type defaults to off-path');
  // refusals: the old list stays in force
  const before = JSON.stringify(s.listProxies());
  for (const [why, list] of [
    ['duplicate names', [siteA, { ...siteB, name: 'site-a' }]],
    ['duplicate endpoint', [siteA, { ...siteB, name: 'x', address: '192.0.2.10' }]],
    ['unknown type', [{ ...siteA, type: 'sideways' }]],
    ['unreachable address', [{ ...siteA, address: '0.0.0.0' }]],
    ['multicast', [{ ...siteA, address: '239.1.1.1' }]],
    ['prefix as endpoint', [{ ...siteA, address: '192.0.2.0/24' }]],
    ['bad socks5', [{ ...siteA, socks5: 'nowhere' }]],
    ['unknown app field', [{ ...siteA, apps: [{ name: 'v', sni: ['x'] }] }]],
    ['bad app port', [{ ...siteA, apps: [{ name: 'v', ports: [0] }] }]],
    ['not a list', { proxies: [] }],
  ] as const) {
    t.equal(codeOf(() => s.replaceProxies(list, 'web')), 'DC_STORE_INVALID', why);
  }
  t.equal(JSON.stringify(s.listProxies()), before, 'old list in force after every refusal');
  t.equal(codeOf(() => s.setProxy({ ...siteB, name: 'site-a', address: '192.0.2.99' }, 'cli')), 'DC_STORE_CONSTRAINT', 'setProxy keeps names unique');
  // the audit log names the change
  t.ok(s.listAudit({ limit: 10 }).some((e) => e.entity === 'proxies' && e.origin === 'web'), 'audited');
  const v = proxyViews(s);
  t.match(v.find((x) => x.name === 'site-a'), { id: 'site-a', healthy: true, sessions: 0, location: 'cdn-east' });
});

t.test('board defaults are seeded once', async (t) => {
  const s = await Store.open({ dir: path.join(tmp, 'seed') });
  t.teardown(() => s.close());
  t.equal(s.seedProxies([]), false, 'an empty board list seeds nothing');
  t.equal(s.seedProxies([siteB]), true);
  t.same(s.listProxies().map((p) => p.name), ['site-b']);
  s.replaceProxies([], 'web');
  t.equal(s.seedProxies([siteB]), false, 'never again: the operator emptied the list on purpose');
  t.same(s.listProxies(), []);
  t.equal(codeOf(() => normalizeProxies([{ ...siteB, type: 'x' }], 'DC_CONFIG_INVALID')), 'DC_CONFIG_INVALID');
});

t.test('a signed OTA bundle carries the candidate fields', async (t) => {
  const s = await Store.open({ dir: path.join(tmp, 'ota') });
  t.teardown(() => s.close());
  const ota = new OtaService({ store: s, boardKeys: [OPERATOR.publicB64] });
  const set = { ...synthSet(3, 'o'), policies: [...synthSet(3, 'o').policies, { name: 'premium' }], proxies: [siteA, siteB] };
  ota.apply(signed(fullDoc(5, set)), 'cli');
  const a = s.listProxies().find((p) => p.name === 'site-a');
  t.match(a, { location: 'cdn-east', type: 'off-path', weight: 2, policies: ['premium'], apps: [{ name: 'video', ports: [443] }] });
  // a bundle with duplicate candidate names is refused; version 5 stays
  let code = 'ok';
  try {
    ota.apply(signed(fullDoc(6, { ...set, proxies: [siteA, { ...siteB, name: 'site-a' }] })), 'cli');
  } catch (e) {
    code = isDuocellError(e) ? e.code : String(e);
  }
  t.equal(code, 'DC_OTA_CONTENT_INVALID');
  t.same(s.listProxies().map((p) => p.name).sort(), ['site-a', 'site-b']);
  // an unknown field in a candidate is refused by the bundle schema
  code = 'ok';
  try {
    ota.apply(signed(fullDoc(7, { ...set, proxies: [{ ...siteA, colour: 'red' } as never] })), 'cli');
  } catch (e) {
    code = isDuocellError(e) ? e.code : String(e);
  }
  t.match(code, /^DC_OTA_/);
});

t.test('web API: GET/PUT /api/v1/proxies on the real store, a bad list refused with a code', async (t) => {
  const { ProxyEngine } = await import('../../src/services/proxy/index.js');
  const { createWebServer } = await import('../../src/web/server.js');
  const { buildWebDeps } = await import('../../src/wiring/web.js');
  const { validateBoard } = await import('../../src/core/board.js');
  const dir = path.join(tmp, 'web');
  const store = await Store.open({ dir, scrypt: { N: 1024, r: 8, p: 1 } });
  t.teardown(() => store.close());
  const board = validateBoard({ name: 't', preset: 'concentrator', uplinks: [], lan: { interfaces: [] }, web: { listen: [{ host: '127.0.0.1', port: 0 }] }, listeners: [], accessNetworks: [] });
  const deps = buildWebDeps({ board, engine: new ProxyEngine({ io: socketIo }), store, startedAt: new Date(), version: 't' });
  const web = await createWebServer(deps, { listen: [{ host: '127.0.0.1', port: 0 }], auth: { scryptN: 1024 } });
  t.teardown(() => web.close());
  const base = `http://127.0.0.1:${web.addresses()[0]!.port}/api/v1`;
  let cookie = '';
  const call = async (method: string, p: string, body?: unknown, csrf?: string): Promise<{ status: number; json: any }> => {
    const r = await fetch(base + p, {
      method,
      headers: { cookie, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(csrf === undefined ? {} : { 'x-csrf-token': csrf }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const set = r.headers.getSetCookie().map((c) => c.split(';')[0]!);
    if (set.length > 0) cookie = set.join('; ');
    const text = await r.text();
    return { status: r.status, json: text === '' ? undefined : JSON.parse(text) };
  };
  const st = await call('GET', '/auth/state');
  const setup = await call('POST', '/auth/setup', { password: 'a long enough password 1' }, st.json.csrf);
  t.equal(setup.status, 200);
  const csrf = setup.json.csrf as string;
  t.equal((await call('PUT', '/proxies', { proxies: [siteB] })).status, 403, 'no CSRF token: refused');
  const put = await call('PUT', '/proxies', { proxies: [siteA, siteB] }, csrf);
  t.equal(put.status, 200, JSON.stringify(put.json));
  t.same(put.json.map((p: { name: string }) => p.name).sort(), ['site-a', 'site-b']);
  const bad = await call('PUT', '/proxies', { proxies: [siteA, { ...siteB, name: 'site-a' }] }, csrf);
  t.equal(bad.status, 400);
  t.equal(bad.json.error.code, 'DC_STORE_INVALID');
  t.match(bad.json.error.message, /duplicate name site-a/);
  const got = await call('GET', '/proxies');
  t.match(got.json.find((p: { name: string }) => p.name === 'site-a'), { location: 'cdn-east', type: 'off-path', healthy: true, apps: [{ name: 'video', ports: [443] }], policies: ['premium'] });
  t.equal(got.json.length, 2, 'the old list stayed');
});

// The web API backed by the real SQLite store and proxy engine (no namespaces needed).
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store } from '../../src/store/index.js';
import { ProxyEngine } from '../../src/services/proxy/index.js';
import { createWebServer } from '../../src/web/server.js';
import { buildWebDeps } from '../../src/wiring/web.js';
import { validateBoard } from '../../src/core/board.js';
import { OtaService } from '../../src/ota/index.js';
import { OPERATOR, fullDoc, signed, synthSet } from './ota-fixtures.js';
import { socketIo } from '../../src/drivers/sockets/io.js';

t.test('web API on the real store: subscribers and policy round-trip', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-wiring-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const store = await Store.open({ dir, scrypt: { N: 1024, r: 8, p: 1 } });
  t.teardown(() => store.close());
  const engine = new ProxyEngine({ io: socketIo });
  const board = validateBoard({ name: 't', preset: 'concentrator', uplinks: [], lan: { interfaces: [] }, web: { listen: [{ host: '127.0.0.1', port: 0 }] }, listeners: [], accessNetworks: [] });
  const ota = new OtaService({ store, boardKeys: [OPERATOR.publicB64], cellId: 't' });
  const deps = buildWebDeps({ board, engine, store, startedAt: new Date(), version: '0.0.0-test', ota });
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
    const sc = r.headers.getSetCookie().map((c) => c.split(';')[0]);
    if (sc.length > 0) cookie = [...cookie.split('; ').filter((c) => c !== '' && !sc.some((n) => n!.split('=')[0] === c.split('=')[0])), ...sc].join('; ');
    const text = await r.text();
    return { status: r.status, json: text === '' ? undefined : JSON.parse(text) };
  };
  const st = await call('GET', '/auth/state');
  const setup = await call('POST', '/auth/setup', { password: 'a long enough password 1' }, st.json.csrf);
  t.equal(setup.status, 200, 'first-boot set-up');
  const csrf = setup.json.csrf as string;

  const policy = {
    limits: { maxSessions: 2, maxSubflows: 1, maxSessionsPerServer: 10 },
    allowedAccess: ['cellular', 'wlan'],
    allowedNetworks: ['10.12.0.0/24'],
    steering: { mode: 'ratio', primary: 'wlan', ratio: { cellular: 30, wlan: 70 } },
  };
  const created = await call('POST', '/subscribers', { name: 'phone1', enabled: true, identifiers: { addresses: ['10.11.0.2'], macs: [] }, policy }, csrf);
  t.equal(created.status, 201, `subscriber created (${JSON.stringify(created.json)})`);
  const eff = store.resolvePolicy('10.11.0.2');
  t.equal(eff.subscriber, 'phone1', 'the store resolves the new subscriber by address');
  t.equal(eff.maxSessionsPerUe, 2, 'its own limit is in force');
  t.same(eff.ratio, { cellular: 30, wlan: 70 }, 'its ratio is in force');

  const got = await call('GET', '/subscribers/phone1');
  t.same(got.json.policy.steering, policy.steering, 'read back through the API');

  const bad = await call('POST', '/subscribers', { name: 'bad', enabled: true, identifiers: { addresses: ['not-an-address'], macs: [] }, policy: null }, csrf);
  t.ok(bad.status >= 400 && bad.status < 500, `an invalid address is refused (${bad.status} ${bad.json?.error?.code})`);
  t.equal(store.getSubscriber('bad'), undefined, 'and nothing was written');

  const put = await call('PUT', '/policy', { defaults: { ...policy, limits: { maxSessions: 50, maxSubflows: 4, maxSessionsPerServer: 100 }, allowedNetworks: [] } }, csrf);
  t.equal(put.status, 200, 'default policy updated');
  t.equal(store.resolvePolicy('192.0.2.9').maxSessionsPerUe, 50, 'default in force for unknown clients');

  const del = await call('DELETE', '/subscribers/phone1', undefined, csrf);
  t.ok(del.status === 200 || del.status === 204, 'deleted');
  t.equal(store.resolvePolicy('10.11.0.2').subscriber, null, 'no longer resolved');
  t.equal(store.getPolicy('sub.phone1'), undefined, 'its own policy went with it');
  const push = async (body: string): Promise<{ status: number; json: any }> => {
    const r = await fetch(base + '/ota/bundle', { method: 'POST', headers: { cookie, 'x-csrf-token': csrf, 'content-type': 'application/octet-stream' }, body });
    return { status: r.status, json: JSON.parse(await r.text()) };
  };
  const b1 = signed(fullDoc(1, synthSet(3, 'w')));
  const p1 = await push(b1);
  t.equal(p1.status, 200, `a signed bundle is applied through the API (${JSON.stringify(p1.json)})`);
  t.equal(store.otaState().currentVersion, 1, 'version 1 in force');
  t.equal((await call('GET', '/ota')).json.version, 1, 'GET /ota says so');
  const again = await push(b1);
  t.equal(again.status, 422, 'the same version again is refused');
  t.match(again.json.error.code, /^DC_OTA_/, `with an OTA code (${again.json.error.code})`);
  const audit = store.listAudit({ limit: 100 });
  t.ok(audit.some((a) => a.origin === 'web' && a.entity === 'subscriber'), 'changes are audited with origin web');
});

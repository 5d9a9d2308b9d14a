// The HTTP API on a real socket (127.0.0.1, port 0) with fake deps: every route's success and
// error paths, the auth gate, CSRF, the Host guard, and the error format.
import t, { type Test } from 'tap';
import { DuocellError } from '../../src/core/errors.js';
import { CODES } from '../../src/core/codes.js';
import { httpStatus } from '../../src/web/status.js';
import { createWebServer } from '../../src/web/server.js';
import { goodPolicy, startServer, type Res } from './web-helpers.js';

/** Every error body has the one shape, a known code, and the status that code maps to. */
function isError(t: Test, r: Res, code: string, status?: number): void {
  t.equal(r.body?.error?.code, code, `code ${code} (${r.text.slice(0, 200)})`);
  t.type(r.body?.error?.message, 'string');
  t.ok(code in CODES, `${code} is listed in codes.ts`);
  t.equal(r.status, status ?? httpStatus(code), `status for ${code}`);
}

const SESSION_GETS = [
  '/api/v1/paths',
  '/api/v1/throughput',
  '/api/v1/sessions',
  '/api/v1/proxies',
  '/api/v1/modem',
  '/api/v1/wlan',
  '/api/v1/system',
  '/api/v1/ota',
  '/api/v1/subscribers',
  '/api/v1/subscribers/sub-1',
  '/api/v1/policy',
  '/api/v1/log-level',
  '/api/v1/events',
];

t.test('health needs no auth, at /health and /api/v1/health', async (t) => {
  const h = await startServer();
  t.teardown(() => h.close());
  const c = h.client();
  for (const p of ['/health', '/api/v1/health']) {
    const r = await c.get(p);
    t.equal(r.status, 200);
    t.equal(r.body.status, 'ok');
    t.equal(r.body.preset, 'cell');
    t.equal(r.body.checks['path:cellular'], true);
    t.equal(r.headers.get('x-content-type-options'), 'nosniff');
    t.match(r.headers.get('content-security-policy'), /default-src 'self'/);
  }
});

t.test('first boot: every session route refuses with NOT_SET_UP; then set-up logs in', async (t) => {
  const h = await startServer();
  t.teardown(() => h.close());
  const c = h.client();
  for (const p of SESSION_GETS) isError(t, await c.get(p), 'DC_WEB_NOT_SET_UP', 409);
  const st = await c.get('/api/v1/auth/state');
  t.same({ ...st.body, csrf: undefined }, { setUp: false, loggedIn: false, firstBootSecretRequired: false, csrf: undefined });
  t.match(st.headers.get('set-cookie'), /dc_pre=.*HttpOnly.*SameSite=Strict/i);
  c.csrf = st.body.csrf;
  // Without the pre-session token the set-up is refused (CSRF).
  isError(t, await c.req('POST', '/api/v1/auth/setup', { password: 'a-good-password' }, { csrf: false }), 'DC_WEB_CSRF', 403);
  isError(t, await c.req('POST', '/api/v1/auth/setup', { password: 'short' }), 'DC_WEB_WEAK_PASSWORD', 400);
  isError(t, await c.req('POST', '/api/v1/auth/setup', { password: 'aaaaaaaaaaaa' }), 'DC_WEB_WEAK_PASSWORD', 400);
  isError(t, await c.req('POST', '/api/v1/auth/setup', {}), 'DC_HTTP_BAD_REQUEST', 400);
  const r = await c.req('POST', '/api/v1/auth/setup', { password: 'a-good-password' });
  t.equal(r.status, 200);
  t.equal(r.body.loggedIn, true);
  const set = r.headers.get('set-cookie') ?? '';
  t.match(set, /dc_session=/);
  t.match(set, /HttpOnly/);
  t.match(set, /SameSite=Strict/);
  c.csrf = r.body.csrf;
  t.equal((await c.get('/api/v1/paths')).status, 200);
  // A second set-up is refused.
  const other = h.client();
  isError(t, await other.setup('another-password'), 'DC_WEB_ALREADY_SET_UP', 409);
});

t.test('first-boot secret from the board is required when configured', async (t) => {
  const h = await startServer({ firstBootSecret: 'label-7Q2X-91' });
  t.teardown(() => h.close());
  const c = h.client();
  const st = await c.get('/api/v1/auth/state');
  t.equal(st.body.firstBootSecretRequired, true);
  isError(t, await c.setup('a-good-password'), 'DC_WEB_FIRST_BOOT_SECRET', 403);
  isError(t, await c.setup('a-good-password', 'wrong'), 'DC_WEB_FIRST_BOOT_SECRET', 403);
  t.equal((await c.setup('a-good-password', 'label-7Q2X-91')).status, 200);
});

t.test('login: wrong password, rate limit with Retry-After, right password, logout', async (t) => {
  const h = await startServer({ auth: { scryptN: 1024, perClientFailures: 3, windowMs: 60_000 } });
  t.teardown(() => h.close());
  const admin = h.client();
  await admin.setup();
  const c = h.client();
  isError(t, await c.login('not-the-password'), 'DC_WEB_BAD_CREDENTIALS', 401);
  isError(t, await c.login('not-the-password'), 'DC_WEB_BAD_CREDENTIALS', 401);
  isError(t, await c.login('not-the-password'), 'DC_WEB_BAD_CREDENTIALS', 401);
  const limited = await c.login('a-good-password');
  isError(t, limited, 'DC_WEB_RATE_LIMITED', 429);
  t.ok(Number(limited.headers.get('retry-after')) > 0, 'Retry-After given');
  t.ok(limited.body.error.retryAfterS > 0);
  const m = await c.get('/metrics');
  t.match(m.text, /duocell_web_login_failures_total 3/);
  // The admin's session is unaffected.
  t.equal((await admin.get('/api/v1/paths')).status, 200);
});

t.test('logout needs CSRF, ends the session; login opens a new one', async (t) => {
  const h = await startServer();
  t.teardown(() => h.close());
  const admin = h.client();
  await admin.setup();
  // Logout needs the CSRF token, then the session is gone.
  isError(t, await admin.req('POST', '/api/v1/auth/logout', undefined, { csrf: false }), 'DC_WEB_CSRF', 403);
  const out = await admin.req('POST', '/api/v1/auth/logout');
  t.equal(out.status, 200);
  t.equal(out.body.loggedIn, false);
  isError(t, await admin.get('/api/v1/paths'), 'DC_WEB_AUTH_REQUIRED', 401);
  t.equal((await admin.login()).status, 200);
  t.equal((await admin.get('/api/v1/paths')).status, 200);
});

t.test('logged-out access is refused on every session route; a forged cookie too', async (t) => {
  const h = await startServer();
  t.teardown(() => h.close());
  await h.client().setup();
  const c = h.client();
  for (const p of SESSION_GETS) isError(t, await c.get(p), 'DC_WEB_AUTH_REQUIRED', 401);
  c.cookies.set('dc_session', 'forged-token-value');
  isError(t, await c.get('/api/v1/paths'), 'DC_WEB_AUTH_REQUIRED', 401);
  isError(t, await c.req('POST', '/api/v1/subscribers', { name: 'x', identifiers: { addresses: ['192.0.2.1'] } }), 'DC_WEB_AUTH_REQUIRED', 401);
  isError(t, await c.req('PUT', '/api/v1/policy', { defaults: goodPolicy() }), 'DC_WEB_AUTH_REQUIRED', 401);
  isError(t, await c.req('DELETE', '/api/v1/subscribers/sub-1'), 'DC_WEB_AUTH_REQUIRED', 401);
});

t.test('every read route answers a logged-in admin with its schema', async (t) => {
  const h = await startServer();
  t.teardown(() => h.close());
  const c = h.client();
  await c.setup();
  h.deps.tick();
  const paths = await c.get('/api/v1/paths');
  t.equal(paths.status, 200);
  t.same(paths.body.map((p: { access: string }) => p.access).sort(), ['cellular', 'wlan']);
  t.type(paths.body[0].throughput.rxBps, 'number');
  t.type(paths.body[0].signal.bars, 'number');
  t.ok(Array.isArray((await c.get('/api/v1/throughput')).body));
  const sessions = await c.get('/api/v1/sessions');
  t.ok(sessions.body.length > 0);
  t.match(sessions.body[0], { combination: /^[MN]-[MN]$/, subflows: Array, bytes: { up: Number, down: Number } });
  t.match((await c.get('/api/v1/proxies')).body[0], { id: String, protocol: /convert|socks5/, healthy: Boolean });
  t.match((await c.get('/api/v1/modem')).body, { present: true, state: 'connected', rat: 'LTE', sim: 'ready' });
  t.match((await c.get('/api/v1/wlan')).body, { present: true, interface: 'wlan0', ssid: String });
  t.match((await c.get('/api/v1/system')).body, { cpuTempC: 48.5, load: [0.1, 0.2, 0.3], memory: { totalBytes: 4e9 }, disks: [{ mount: '/' }] });
  t.match((await c.get('/api/v1/ota')).body, { version: 3, lastError: null });
  t.match((await c.get('/api/v1/policy')).body, { version: 3, defaults: { steering: { mode: 'ratio' } } });
  t.equal((await c.get('/api/v1/subscribers')).body.length, 2);
  t.match((await c.get('/api/v1/subscribers/sub-1')).body, { id: 'sub-1', name: 'alice-phone' });
  t.match((await c.get('/api/v1/log-level')).body, { level: String });
});

t.test('a box without modem or WLAN answers 503 DC_WEB_UNAVAILABLE', async (t) => {
  const h = await startServer({}, (d) => {
    const { modem: _m, wlan: _w, ...rest } = d;
    return rest;
  });
  t.teardown(() => h.close());
  const c = h.client();
  await c.setup();
  isError(t, await c.get('/api/v1/modem'), 'DC_WEB_UNAVAILABLE', 503);
  isError(t, await c.get('/api/v1/wlan'), 'DC_WEB_UNAVAILABLE', 503);
});

t.test('subscribers: create, read, update, delete, and their refusals', async (t) => {
  const h = await startServer();
  t.teardown(() => h.close());
  const c = h.client();
  await c.setup();
  const body = { name: 'bob-tablet', identifiers: { addresses: ['192.0.2.44', '2001:db8::44/128'], macs: ['02:00:00:00:00:44'] }, policy: goodPolicy() };
  // CSRF-less POST refused, and nothing is created.
  isError(t, await c.req('POST', '/api/v1/subscribers', body, { csrf: false }), 'DC_WEB_CSRF', 403);
  isError(t, await c.req('POST', '/api/v1/subscribers', body, { headers: { 'x-csrf-token': 'wrong' }, csrf: false }), 'DC_WEB_CSRF', 403);
  t.equal((await c.get('/api/v1/subscribers')).body.length, 2);
  const created = await c.req('POST', '/api/v1/subscribers', body);
  t.equal(created.status, 201);
  t.match(created.body, { id: String, name: 'bob-tablet', enabled: true, policy: { steering: { ratio: { cellular: 30, wlan: 70 } } } });
  const id = created.body.id as string;
  // Defaults filled: no MACs and no policy → [] and null.
  const minimal = await c.req('POST', '/api/v1/subscribers', { name: 'min', identifiers: { addresses: ['192.0.2.9'] } });
  t.equal(minimal.status, 201);
  t.same(minimal.body.identifiers.macs, []);
  t.equal(minimal.body.policy, null);
  isError(t, await c.req('POST', '/api/v1/subscribers', body), 'DC_STORE_CONSTRAINT', 409);
  // Update the ratio.
  const upd = { ...body, policy: { ...goodPolicy(), steering: { mode: 'ratio', primary: 'wlan', ratio: { cellular: 60, wlan: 40 } } } };
  const put = await c.req('PUT', `/api/v1/subscribers/${id}`, upd);
  t.equal(put.status, 200);
  t.same(put.body.policy.steering.ratio, { cellular: 60, wlan: 40 });
  t.same((await c.get(`/api/v1/subscribers/${id}`)).body.policy.steering.ratio, { cellular: 60, wlan: 40 });
  // Validation: schema (range) and semantic (sum, prefix, MAC, address), with fields.
  const bad = await c.req('PUT', `/api/v1/subscribers/${id}`, { ...upd, policy: { ...upd.policy, steering: { ...upd.policy.steering, ratio: { cellular: 150, wlan: 40 } } } });
  isError(t, bad, 'DC_HTTP_BAD_REQUEST', 400);
  t.match(bad.body.error.fields, [{ path: 'policy.steering.ratio.cellular', message: /<= 100/ }]);
  const sum = await c.req('PUT', `/api/v1/subscribers/${id}`, { ...upd, policy: { ...upd.policy, steering: { ...upd.policy.steering, ratio: { cellular: 50, wlan: 40 } } } });
  isError(t, sum, 'DC_HTTP_BAD_REQUEST', 400);
  t.match(sum.body.error.fields, [{ path: 'policy.steering.ratio', message: /sum to 100/ }]);
  const idents = await c.req('PUT', `/api/v1/subscribers/${id}`, { ...upd, identifiers: { addresses: ['300.1.1.1', '192.0.2.0/40'], macs: ['zz'] } });
  t.same(idents.body.error.fields.map((f: { path: string }) => f.path), ['identifiers.addresses.0', 'identifiers.addresses.1', 'identifiers.macs.0']);
  const nets = await c.req('PUT', `/api/v1/subscribers/${id}`, { ...upd, policy: { ...upd.policy, allowedNetworks: ['192.0.2.1'] } });
  t.match(nets.body.error.fields, [{ path: 'policy.allowedNetworks.0' }]);
  const unknown = await c.req('PUT', `/api/v1/subscribers/${id}`, { ...upd, colour: 'red' });
  t.match(unknown.body.error.fields, [{ path: 'colour', message: /not a known field/ }]);
  const missing = await c.req('POST', '/api/v1/subscribers', { identifiers: { addresses: [] } });
  t.match(missing.body.error.fields, [{ path: 'name', message: 'is required' }]);
  const none = await c.req('POST', '/api/v1/subscribers', { name: 'nobody', identifiers: { addresses: [] } });
  t.match(none.body.error.fields, [{ path: 'identifiers.addresses' }]);
  // Nothing changed by the refused calls.
  t.same((await c.get(`/api/v1/subscribers/${id}`)).body.policy.steering.ratio, { cellular: 60, wlan: 40 });
  // Not found, bad id.
  isError(t, await c.get('/api/v1/subscribers/sub-999'), 'DC_STORE_NOT_FOUND', 404);
  isError(t, await c.req('PUT', '/api/v1/subscribers/sub-999', upd), 'DC_STORE_NOT_FOUND', 404);
  isError(t, await c.get('/api/v1/subscribers/bad%20id'), 'DC_HTTP_BAD_REQUEST', 400);
  // Delete.
  isError(t, await c.req('DELETE', `/api/v1/subscribers/${id}`, undefined, { csrf: false }), 'DC_WEB_CSRF', 403);
  const del = await c.req('DELETE', `/api/v1/subscribers/${id}`);
  t.equal(del.status, 204);
  isError(t, await c.req('DELETE', `/api/v1/subscribers/${id}`), 'DC_STORE_NOT_FOUND', 404);
});

t.test('policy: get, set, refuse bad values without changing anything', async (t) => {
  const h = await startServer();
  t.teardown(() => h.close());
  const c = h.client();
  await c.setup();
  const p = { ...goodPolicy(), steering: { mode: 'active-standby', primary: 'cellular', ratio: { cellular: 100, wlan: 0 } } };
  const r = await c.req('PUT', '/api/v1/policy', { defaults: p });
  t.equal(r.status, 200);
  t.match(r.body.defaults.steering, { mode: 'active-standby', primary: 'cellular' });
  const bad = await c.req('PUT', '/api/v1/policy', { defaults: { ...p, allowedAccess: ['wlan'] } });
  isError(t, bad, 'DC_HTTP_BAD_REQUEST');
  t.match(bad.body.error.fields, [{ path: 'defaults.steering.primary' }]);
  isError(t, await c.req('PUT', '/api/v1/policy', { defaults: { ...p, steering: { ...p.steering, mode: 'round-robin' } } }), 'DC_HTTP_BAD_REQUEST');
  isError(t, await c.req('PUT', '/api/v1/policy', { defaults: { ...p, limits: { ...p.limits, maxSubflows: '2' } } }), 'DC_HTTP_BAD_REQUEST');
  isError(t, await c.req('PUT', '/api/v1/policy', { defaults: p }, { csrf: false }), 'DC_WEB_CSRF');
  t.match((await c.get('/api/v1/policy')).body.defaults.steering, { mode: 'active-standby', primary: 'cellular' });
});

t.test('OTA bundle push: applied, refused by the OTA layer, empty, too large', async (t) => {
  const h = await startServer({ bundleLimit: 1024 });
  t.teardown(() => h.close());
  const c = h.client();
  await c.setup();
  const ok = await c.req('POST', '/api/v1/ota/bundle', undefined, { raw: JSON.stringify({ version: 7 }), headers: { 'content-type': 'application/octet-stream' } });
  t.equal(ok.status, 200);
  t.match(ok.body, { version: 7, previousVersion: 3, source: 'push' });
  const asJson = await c.req('POST', '/api/v1/ota/bundle', undefined, { raw: JSON.stringify({ version: 8 }), headers: { 'content-type': 'application/json' } });
  t.equal(asJson.status, 200, 'a bundle sent as application/json reaches the OTA layer as bytes');
  isError(t, await c.req('POST', '/api/v1/ota/bundle', undefined, { raw: JSON.stringify({ version: 5 }), headers: { 'content-type': 'application/octet-stream' } }), 'DC_OTA_ROLLBACK', 422);
  isError(t, await c.req('POST', '/api/v1/ota/bundle', undefined, { raw: 'not json', headers: { 'content-type': 'application/octet-stream' } }), 'DC_OTA_MALFORMED', 400);
  isError(t, await c.req('POST', '/api/v1/ota/bundle', undefined, { raw: '', headers: { 'content-type': 'application/octet-stream' } }), 'DC_HTTP_BAD_REQUEST', 400);
  isError(t, await c.req('POST', '/api/v1/ota/bundle', undefined, { raw: Buffer.alloc(4096, 0x20), headers: { 'content-type': 'application/octet-stream' } }), 'DC_WEB_PAYLOAD_TOO_LARGE', 413);
  isError(t, await c.req('POST', '/api/v1/ota/bundle', undefined, { raw: '{"version":9}', headers: { 'content-type': 'application/octet-stream' }, csrf: false }), 'DC_WEB_CSRF', 403);
  t.match((await c.get('/api/v1/ota')).body, { version: 8, lastError: { code: 'DC_OTA_MALFORMED' } });
});

t.test('request format errors: content type, bad JSON, unknown route, big body', async (t) => {
  const h = await startServer();
  t.teardown(() => h.close());
  const c = h.client();
  await c.setup();
  isError(t, await c.req('POST', '/api/v1/subscribers', undefined, { raw: 'name=x', headers: { 'content-type': 'text/plain' } }), 'DC_WEB_UNSUPPORTED_MEDIA', 415);
  isError(t, await c.req('POST', '/api/v1/subscribers', undefined, { raw: '{"name":', headers: { 'content-type': 'application/json' } }), 'DC_HTTP_BAD_REQUEST', 400);
  isError(t, await c.req('PUT', '/api/v1/policy', undefined, { raw: JSON.stringify({ defaults: goodPolicy(), pad: 'x'.repeat(70_000) }), headers: { 'content-type': 'application/json' } }), 'DC_WEB_PAYLOAD_TOO_LARGE', 413);
  isError(t, await c.get('/api/v1/nope'), 'DC_HTTP_NOT_FOUND', 404);
  isError(t, await c.get('/no-such-file.js'), 'DC_HTTP_NOT_FOUND', 404);
});

t.test('a failure inside deps is DC_INTERNAL without its message; a DuocellError keeps its code', async (t) => {
  const h = await startServer({}, (d) => ({
    ...d,
    proxies: () => {
      throw new Error('secret internal detail');
    },
    sessions: () => {
      throw new DuocellError('DC_PROXY_SHUTDOWN');
    },
  }));
  t.teardown(() => h.close());
  const c = h.client();
  await c.setup();
  const r = await c.get('/api/v1/proxies');
  isError(t, r, 'DC_INTERNAL', 500);
  t.notMatch(r.text, /secret internal detail/);
  isError(t, await c.get('/api/v1/sessions'), 'DC_PROXY_SHUTDOWN', 503);
  // /metrics still answers when a source fails.
  t.equal((await c.get('/metrics')).status, 200);
});

t.test('Host guard: IP literals and localhost pass, other names only when allowed', async (t) => {
  const h = await startServer({ allowedHosts: ['duocell.lan'] });
  t.teardown(() => h.close());
  const c = h.client();
  const port = h.server.addresses()[0]!.port;
  const hostReq = (host: string) => new Promise<number>((resolve, reject) => {
    // fetch() forbids setting Host; use node:http.
    import('node:http').then(({ request }) => {
      const r = request({ host: '127.0.0.1', port, path: '/api/v1/auth/state', headers: { host } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      r.on('error', reject);
      r.end();
    }, reject);
  });
  t.equal(await hostReq(`127.0.0.1:${port}`), 200);
  t.equal(await hostReq(`localhost:${port}`), 200);
  t.equal(await hostReq(`[::1]:${port}`), 200);
  t.equal(await hostReq('duocell.lan'), 200);
  t.equal(await hostReq('attacker.example'), 421);
  t.equal(await hostReq('attacker.example:8080'), 421);
  t.equal((await c.get('/health')).status, 200);
});

t.test('log level can be changed at run time', async (t) => {
  const h = await startServer();
  t.teardown(() => h.close());
  const c = h.client();
  await c.setup();
  const before = (await c.get('/api/v1/log-level')).body.level;
  t.teardown(() => c.req('PUT', '/api/v1/log-level', { level: before }));
  t.same((await c.req('PUT', '/api/v1/log-level', { level: 'debug' })).body, { level: 'debug' });
  t.same((await c.get('/api/v1/log-level')).body, { level: 'debug' });
  isError(t, await c.req('PUT', '/api/v1/log-level', { level: 'loud' }), 'DC_HTTP_BAD_REQUEST');
  await c.req('PUT', '/api/v1/log-level', { level: before });
});

t.test('changing the password ends other sessions', async (t) => {
  const h = await startServer();
  t.teardown(() => h.close());
  const a = h.client();
  await a.setup();
  const b = h.client();
  await b.login();
  isError(t, await a.req('PUT', '/api/v1/auth/password', { current: 'wrong-password', password: 'new-password-1' }), 'DC_WEB_BAD_CREDENTIALS');
  isError(t, await a.req('PUT', '/api/v1/auth/password', { current: 'a-good-password', password: 'short' }), 'DC_WEB_WEAK_PASSWORD');
  const r = await a.req('PUT', '/api/v1/auth/password', { current: 'a-good-password', password: 'new-password-1' });
  t.equal(r.status, 200);
  a.csrf = r.body.csrf;
  t.equal((await a.get('/api/v1/paths')).status, 200, 'the changing session continues with a new cookie');
  isError(t, await b.get('/api/v1/paths'), 'DC_WEB_AUTH_REQUIRED');
  isError(t, await b.login('a-good-password'), 'DC_WEB_BAD_CREDENTIALS');
  t.equal((await b.login('new-password-1')).status, 200);
});

t.test('metrics: Prometheus text with the duocell families and process metrics', async (t) => {
  const h = await startServer();
  t.teardown(() => h.close());
  const c = h.client();
  const r = await c.get('/metrics');
  t.equal(r.status, 200);
  t.match(r.headers.get('content-type'), /text\/plain/);
  for (const name of [
    'duocell_path_up{path="cellular",access="cellular",interface="wwan0"} 1',
    'duocell_path_bytes_total{path="wlan",access="wlan",direction="rx"}',
    'duocell_path_throughput_bits_per_second{',
    'duocell_path_rtt_seconds{path="cellular"',
    'duocell_path_probe_rtt_seconds{path="cellular",access="cellular",quantile="0.5"}',
    'duocell_path_probe_rtt_seconds{path="cellular",access="cellular",quantile="0.95"}',
    'duocell_path_jitter_seconds{path="cellular",access="cellular"} 0.0042',
    'duocell_path_loss_ratio{path="cellular",access="cellular"} 0',
    'duocell_path_signal{path="cellular",access="cellular",kind="rsrp"}',
    'duocell_path_signal_bars{path="wlan",access="wlan"} 4',
    'duocell_sessions{combination="M-N"}',
    'duocell_subflows{access="cellular"}',
    'duocell_refusals_total{reason="subflow-limit"}',
    'duocell_ota_policy_version 3',
    'duocell_modem_state{state="connected"} 1',
    'duocell_build_info{version="0.1.0-fake",preset="cell"} 1',
    'process_cpu_user_seconds_total',
    'nodejs_heap_size_total_bytes',
  ]) {
    t.ok(r.text.includes(name), name);
  }
  // Counters follow the deps' running totals across scrapes.
  const grab = (text: string) => Number(/duocell_path_bytes_total\{path="wlan",access="wlan",direction="rx"\} (\d+)/.exec(text)?.[1]);
  const first = grab(r.text);
  h.deps.tick();
  const second = grab((await c.get('/metrics')).text);
  t.ok(second > first, 'the byte counter grew');
  t.equal(second, h.deps.paths().find((p) => p.name === 'wlan')!.bytesRx, 'and equals the path total');
});

t.test('a path going down shows in /paths, /health and /metrics', async (t) => {
  const h = await startServer();
  t.teardown(() => h.close());
  const c = h.client();
  await c.setup();
  h.deps.setPathState('cellular', 'down');
  const paths = (await c.get('/api/v1/paths')).body as Array<{ name: string; state: string }>;
  t.equal(paths.find((p) => p.name === 'cellular')?.state, 'down');
  t.equal(paths.find((p) => p.name === 'wlan')?.state, 'up');
  t.match((await c.get('/health')).body, { status: 'degraded', checks: { 'path:cellular': false } });
  const m = (await c.get('/metrics')).text;
  t.ok(m.includes('duocell_path_up{path="cellular",access="cellular",interface="wwan0"} 0'));
  t.ok(m.includes('duocell_health_check{check="path:cellular"} 0'));
});

t.test('metrics bearer token when configured', async (t) => {
  const h = await startServer({ metricsToken: 's3cret' });
  t.teardown(() => h.close());
  const c = h.client();
  isError(t, await c.get('/metrics'), 'DC_WEB_AUTH_REQUIRED', 401);
  t.equal((await c.req('GET', '/metrics', undefined, { headers: { authorization: 'Bearer s3cret' } })).status, 200);
});

t.test('OpenAPI document lists every route of the contract with its responses', async (t) => {
  const h = await startServer();
  t.teardown(() => h.close());
  const r = await h.client().get('/api/v1/openapi.json');
  t.equal(r.status, 200);
  const doc = r.body;
  t.match(doc.openapi, /^3\./);
  const want: Array<[string, string]> = [
    ['/api/v1/health', 'get'],
    ['/api/v1/paths', 'get'],
    ['/api/v1/sessions', 'get'],
    ['/api/v1/subscribers', 'get'],
    ['/api/v1/subscribers', 'post'],
    ['/api/v1/subscribers/{id}', 'get'],
    ['/api/v1/subscribers/{id}', 'put'],
    ['/api/v1/subscribers/{id}', 'delete'],
    ['/api/v1/policy', 'get'],
    ['/api/v1/policy', 'put'],
    ['/api/v1/proxies', 'get'],
    ['/api/v1/ota', 'get'],
    ['/api/v1/ota/bundle', 'post'],
    ['/api/v1/events', 'get'],
    ['/metrics', 'get'],
  ];
  for (const [p, m] of want) {
    const op = doc.paths?.[p]?.[m];
    t.ok(op, `${m.toUpperCase()} ${p} documented`);
    t.ok(op && Object.keys(op.responses).length > 0, `${m.toUpperCase()} ${p} has responses`);
  }
  t.ok(doc.components.schemas.PolicySpec, 'shared schemas are components');
  t.ok(doc.paths['/api/v1/subscribers'].post.requestBody, 'request bodies documented');
});

t.test('listens on every address given, and only those', async (t) => {
  const deps = (await import('../helpers/fake-deps.js')).createFakeDeps({ tickMs: 0 });
  const s = await createWebServer(deps, { listen: [{ host: '127.0.0.1', port: 0 }, { host: '127.0.0.2', port: 0 }], auth: { scryptN: 1024 } });
  t.teardown(async () => {
    deps.stop();
    await s.close();
  });
  const addrs = s.addresses();
  t.same(addrs.map((a) => a.host), ['127.0.0.1', '127.0.0.2']);
  for (const a of addrs) t.equal((await fetch(`http://${a.host}:${a.port}/health`)).status, 200);
  // Not on another loopback address at the same port.
  await t.rejects(fetch(`http://127.0.0.3:${addrs[0]!.port}/health`));
  await t.rejects(createWebServer(deps, { listen: [] }), { code: 'DC_CONFIG_INVALID' });
  await t.rejects(createWebServer(deps, { listen: [{ host: 'eth0', port: 0 }] }), { code: 'DC_CONFIG_INVALID' });
  await t.rejects(createWebServer(deps, { listen: [{ host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port: addrs[0]!.port }] }), { code: 'DC_CONFIG_INVALID' });
});

t.test('the page is served: index, script, style, with a CSP', async (t) => {
  const h = await startServer();
  t.teardown(() => h.close());
  const c = h.client();
  const idx = await c.get('/');
  t.equal(idx.status, 200);
  t.match(idx.text, /<script type="module" src="\/app.js">/);
  t.match(idx.headers.get('content-security-policy'), /script-src 'self'/);
  t.equal((await c.get('/app.js')).status, 200);
  t.equal((await c.get('/chart.js')).status, 200);
  t.equal((await c.get('/app.css')).status, 200);
});

// Keeps the error codes, their documentation and the API's error responses in step:
// docs/errors.md is exactly what scripts/error-docs.ts renders from src/core/codes.ts; every
// code has a status; and every error the API sends has the documented shape, a listed code and
// that code's status. Every web code is actually produced by some request below.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import http from 'node:http';
import t from 'tap';
import { CODES } from '../../src/core/codes.js';
import { ERRORS_DOC, renderErrorDocs, sections, CODES_SOURCE } from '../../scripts/error-docs.js';
import { ErrorSchema } from '../../src/web/schemas.js';
import { httpStatus } from '../../src/web/status.js';
import { goodPolicy, startServer, type Res } from './web-helpers.js';

t.test('docs/errors.md is generated from codes.ts and up to date', async (t) => {
  const want = renderErrorDocs();
  if (process.env.DUOCELL_WRITE_ERROR_DOCS === '1') writeFileSync(ERRORS_DOC, want);
  t.ok(existsSync(ERRORS_DOC), 'docs/errors.md exists');
  const have = existsSync(ERRORS_DOC) ? readFileSync(ERRORS_DOC, 'utf8') : '';
  t.equal(have, want, 'docs/errors.md is stale: regenerate with `npm run build && node dist/scripts/error-docs.js --write`');
  for (const [code, meaning] of Object.entries(CODES)) {
    t.ok(have.includes(`| \`${code}\` | ${httpStatus(code)} | `), `${code} documented with its status`);
    t.ok(meaning.length > 0, `${code} has a meaning`);
  }
});

t.test('codes.ts: every code in a section, well-formed, with an error status', async (t) => {
  const secs = sections(readFileSync(CODES_SOURCE, 'utf8'));
  const inSections = new Set(secs.flatMap((s) => s.codes));
  const pattern = new RegExp(ErrorSchema.properties.error.properties.code.pattern);
  for (const code of Object.keys(CODES)) {
    t.ok(inSections.has(code), `${code} sits under a section comment`);
    t.match(code, pattern, `${code} matches the Error schema`);
    const s = httpStatus(code);
    t.ok(s >= 400 && s <= 599, `${code} → ${s}`);
  }
  t.equal(httpStatus('DC_SOMETHING_NOT_FOUND'), 404, 'rule: _NOT_FOUND is 404');
  t.equal(httpStatus('DC_OTA_ANYTHING'), 422, 'rule: OTA refusals are 422');
  t.equal(httpStatus('DC_X_TIMEOUT'), 504);
  t.equal(httpStatus('DC_UNHEARD_OF'), 500);
});

t.test('the API answers every error in the documented shape and status; each web code occurs', async (t) => {
  const h = await startServer({ firstBootSecret: 'board-secret', maxEventClients: 1, bundleLimit: 64, auth: { scryptN: 1024, perClientFailures: 2 } }, (d) => ({
    ...d,
    proxies: () => {
      throw new Error('boom');
    },
  }));
  t.teardown(() => h.close());
  const seen = new Map<string, number>();
  const check = (r: Res, what: string): void => {
    const e = r.body?.error;
    t.ok(e && typeof e.code === 'string' && typeof e.message === 'string', `${what}: {error:{code,message}}`);
    if (!e) return;
    t.ok(e.code in CODES, `${what}: ${e.code} listed in codes.ts`);
    t.equal(r.status, httpStatus(e.code), `${what}: status ${r.status} is the one for ${e.code}`);
    const extra = Object.keys(e).filter((k) => !['code', 'message', 'fields', 'retryAfterS'].includes(k));
    t.same(extra, [], `${what}: no undocumented fields`);
    seen.set(e.code, (seen.get(e.code) ?? 0) + 1);
  };
  const c = h.client();
  check(await c.get('/api/v1/paths'), 'before set-up');
  check(await c.setup('a-good-password'), 'no secret');
  const st = await c.get('/api/v1/auth/state');
  c.csrf = st.body.csrf;
  check(await c.req('POST', '/api/v1/auth/setup', { password: 'x', secret: 'board-secret' }), 'weak');
  check(await c.req('POST', '/api/v1/auth/setup', { password: 'a-good-password', secret: 'board-secret' }, { csrf: false }), 'setup csrf');
  t.equal((await c.setup('a-good-password', 'board-secret')).status, 200);
  check(await h.client().setup('a-good-password', 'board-secret'), 'again');
  const anon = h.client();
  check(await anon.get('/api/v1/paths'), 'logged out');
  check(await anon.login('wrong-password'), 'wrong');
  await anon.login('wrong-password');
  check(await anon.login('wrong-password'), 'limited');
  check(await c.req('POST', '/api/v1/subscribers', { name: 'n', identifiers: { addresses: ['192.0.2.1'] } }, { csrf: false }), 'csrf');
  check(await c.req('POST', '/api/v1/subscribers', { name: 'n', identifiers: { addresses: ['nope'] } }), 'invalid');
  check(await c.req('PUT', '/api/v1/policy', { defaults: { ...goodPolicy(), limits: { maxSessions: 0 } } }), 'schema');
  check(await c.req('POST', '/api/v1/subscribers', undefined, { raw: 'x', headers: { 'content-type': 'text/plain' } }), 'media');
  check(await c.req('POST', '/api/v1/ota/bundle', undefined, { raw: Buffer.alloc(100, 1), headers: { 'content-type': 'application/octet-stream' } }), 'large');
  check(await c.req('POST', '/api/v1/ota/bundle', undefined, { raw: '{"version":1}', headers: { 'content-type': 'application/octet-stream' } }), 'rollback');
  check(await c.get('/api/v1/subscribers/sub-404'), 'missing');
  check(await c.get('/api/v1/nothing-here'), 'route');
  check(await c.get('/api/v1/proxies'), 'internal');
  // Host guard.
  const port = h.server.addresses()[0]!.port;
  const hostRes = await new Promise<Res>((resolve, reject) => {
    const r = http.request({ host: '127.0.0.1', port, path: '/api/v1/auth/state', headers: { host: 'rebind.example' } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: new Headers(), body: JSON.parse(text), text }));
    });
    r.on('error', reject);
    r.end();
  });
  check(hostRes, 'host');
  // One event stream allowed: the second is refused as busy.
  const ac = new AbortController();
  const cookie = [...c.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  const first = await fetch(`${h.base}/api/v1/events`, { headers: { cookie }, signal: ac.signal });
  t.equal(first.status, 200);
  t.match(first.headers.get('content-type'), /text\/event-stream/);
  check(await c.get('/api/v1/events'), 'busy');
  ac.abort();
  // Unavailable radio.
  const h2 = await startServer({}, (d) => {
    const { modem: _m, ...rest } = d;
    return rest;
  });
  t.teardown(() => h2.close());
  const c2 = h2.client();
  await c2.setup();
  check(await c2.get('/api/v1/modem'), 'no modem');

  const webCodes = Object.keys(CODES).filter((k) => k.startsWith('DC_WEB_') || k.startsWith('DC_HTTP_'));
  for (const code of webCodes) t.ok(seen.has(code), `${code} is produced by the API`);
});

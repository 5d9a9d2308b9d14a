// One schema engine (src/core/schema.ts): a board profile, a bundle and an API body are refused
// in the same shape ({code, message, fields: [{path, message}]}) with the same dotted path of
// the offending field, and the shared formats agree wherever they are used.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { boardDir, validateBoard } from '../../src/core/board.js';
import { isDuocellError } from '../../src/core/errors.js';
import { addFormats, compileSchema, dottedPath, pointerPath, toField } from '../../src/core/schema.js';
import { parseDocument } from '../../src/ota/index.js';
import { synthSet, fullDoc } from './ota-fixtures.js';
import { goodPolicy, startServer } from './web-helpers.js';

interface Shape {
  code: string;
  message: string;
  fields: Array<{ path: string; message: string }>;
}

function refusal(fn: () => unknown): Shape {
  try {
    fn();
  } catch (e) {
    if (!isDuocellError(e)) throw e;
    return { code: e.code, message: e.message, fields: e.detail.fields as Shape['fields'] };
  }
  throw new Error('accepted');
}

t.test('board, bundle and API body: same error shape, same field path, same words', async (t) => {
  const board = JSON.parse(fs.readFileSync(path.join(boardDir(), 'sim.json'), 'utf8')) as Record<string, unknown>;
  const b = refusal(() => validateBoard({ ...board, colour: 'red' }));
  t.equal(b.code, 'DC_CONFIG_INVALID');
  t.match(b.message, /board\.colour: unknown field/, 'the profile names the field its way');
  t.same(b.fields, [{ path: 'colour', message: 'is not a known field' }]);

  const o = refusal(() => parseDocument(JSON.stringify({ ...fullDoc(3, synthSet(1, 'x')), colour: 'red' })));
  t.equal(o.code, 'DC_OTA_SCHEMA_INVALID');
  t.match(o.message, /document \/colour: unknown field/, 'the bundle names the field as a JSON pointer');
  t.same(o.fields, [{ path: 'colour', message: 'is not a known field' }]);

  const h = await startServer();
  t.teardown(() => h.close());
  const c = h.client();
  await c.setup();
  const w = await c.req('POST', '/api/v1/subscribers', { name: 'n', identifiers: { addresses: ['10.0.0.1'] }, policy: goodPolicy(), colour: 'red' });
  t.equal(w.status, 400);
  t.equal(w.body.error.code, 'DC_HTTP_BAD_REQUEST');
  t.same(w.body.error.fields, [{ path: 'colour', message: 'is not a known field' }]);

  // A nested field: the same dotted path from all three.
  const nb = refusal(() => validateBoard({ ...board, web: { listen: [{ host: '127.0.0.1', port: 70000 }] } }));
  t.same(nb.fields, [{ path: 'web.listen.0.port', message: 'expected <= 65535' }]);
  const set = synthSet(1, 'y');
  const no = refusal(() => parseDocument(JSON.stringify(fullDoc(3, { ...set, proxies: [{ address: '10.0.0.1', port: 70000, protocol: 'convert' }] }))));
  t.same(no.fields, [{ path: 'policy.proxies.0.port', message: 'expected <= 65535' }]);
  const wp = await c.req('PUT', '/api/v1/policy', { defaults: { ...goodPolicy(), limits: { ...goodPolicy().limits, maxSubflows: 9 } } });
  t.same(wp.body.error.fields, [{ path: 'defaults.limits.maxSubflows', message: 'expected <= 8' }]);
});

t.test('the shared formats: one definition for the API, the bundle and anything compiled', async (t) => {
  const s = { type: 'object', properties: { p: { type: 'string', format: 'ip-prefix' }, c: { type: 'string', format: 'cidr' }, m: { type: 'string', format: 'mac' }, d: { type: 'string', format: 'date-time' } } };
  const check = compileSchema(s);
  for (const ok of [{ p: '10.0.0.1' }, { p: '2001:db8::/32' }, { c: '192.0.2.0/24' }, { m: 'AA:bb:cc:dd:ee:ff' }, { m: 'aabbccddeeff' }, { m: 'aa-bb-cc-dd-ee-ff' }, { d: '2026-01-01T00:00:00Z' }]) {
    t.ok(check(ok), JSON.stringify(ok));
  }
  for (const [bad, msg] of [
    [{ p: '300.1.1.1' }, /address or prefix/],
    [{ p: '10.0.0.0/33' }, /address or prefix/],
    [{ p: '010.0.0.1' }, /address or prefix/],
    [{ p: 'fe80::1%eth0' }, /address or prefix/],
    [{ c: '192.0.2.1' }, /CIDR prefix/],
    [{ m: 'zz' }, /MAC/],
    [{ m: 'aa:bb:cc:dd:ee' }, /MAC/],
    [{ d: '2026-13-01T00:00:00Z' }, /date-time/],
  ] as const) {
    t.notOk(check(bad), JSON.stringify(bad));
    t.match(check.issues()[0]?.message, msg, `${JSON.stringify(bad)}: message`);
  }
  const added: string[] = [];
  const fake = { addFormat: (n: string) => (added.push(n), fake) };
  t.equal(addFormats(fake as never), fake, 'returns the instance (an ajv plugin)');
  t.ok(['date-time', 'ip-prefix', 'cidr', 'mac'].every((f) => added.includes(f)), 'addFormats teaches every format');
});

t.test('paths: dotted for the board, a pointer for a bundle, dotted fields for the page', async (t) => {
  const p = ['uplinks', 0, 'a/b~c'];
  t.equal(dottedPath('board', p), 'board.uplinks[0].a/b~c');
  t.equal(pointerPath(p), '/uplinks/0/a~1b~0c');
  t.equal(pointerPath([]), '/');
  t.same(toField({ path: p, keyword: 'maximum', message: 'expected <= 1' }), { path: 'uplinks.0.a/b~c', message: 'expected <= 1' });
  t.same(toField({ path: [], keyword: 'type', message: 'expected an object' }, 'body'), { path: 'body', message: 'expected an object' });
  t.throws(() => compileSchema({ type: 'string', oneOf: [] }), { code: 'DC_INTERNAL' }, 'a schema ajv refuses is our fault');
});

t.test("listener options: the board schema's part for each kind, at load and when a front is built directly", async (t) => {
  const { socks5FrontFromOptions } = await import('../../src/services/proxy/fronts/socks5.js');
  const { convertFrontFromOptions } = await import('../../src/services/proxy/fronts/convert.js');
  const { convertConnectorFromOptions } = await import('../../src/services/proxy/convert-client.js');
  const base = { name: 'c', preset: 'concentrator', uplinks: [] };
  const listener = (kind: string, options: unknown) => ({ ...base, listeners: [{ kind, host: '::', port: 5124, options }] });
  t.doesNotThrow(() => validateBoard(listener('convert', { cookies: ['s', { cookie: 'ab', hex: true }], retryAfterSeconds: 3, concentrator: '10.0.0.1:5124' })));
  t.doesNotThrow(() => validateBoard(listener('socks5', { users: 'store', allowAnonymous: false })));
  for (const [kind, options, field] of [
    ['convert', { retryAfterSeconds: 300 }, 'listeners.0.options.retryAfterSeconds'],
    ['convert', { cookies: [''] }, 'listeners.0.options.cookies.0'],
    ['socks5', { users: [{ username: 'a' }] }, 'listeners.0.options.users.0.password'],
    ['transparent', { concentrator: 5 }, 'listeners.0.options.concentrator'],
    ['explicit', { replyTimeoutMs: 0 }, 'listeners.0.options.replyTimeoutMs'],
  ] as const) {
    const r = refusal(() => validateBoard(listener(kind, options)));
    t.equal(r.code, 'DC_CONFIG_INVALID', `${kind} ${JSON.stringify(options)}`);
    t.ok(r.fields.some((f) => f.path === field), `${kind} ${JSON.stringify(options)}: ${field} named (${JSON.stringify(r.fields)})`);
    t.notOk(r.fields.some((f) => /then/.test(f.message)), 'no if/then summary');
  }
  t.throws(() => socks5FrontFromOptions({ users: [{ username: 'a' }] }), { code: 'DC_CONFIG_INVALID', message: /socks5 listener options: .*options\.users\[0\]\.password: required/ });
  t.throws(() => convertFrontFromOptions({ retryAfterSeconds: 1.5 }), { code: 'DC_CONFIG_INVALID', message: /retryAfterSeconds: expected an integer/ });
  t.throws(() => convertConnectorFromOptions({ concentrator: '10.0.0.1:1', fastOpen: 'yes' }), { code: 'DC_CONFIG_INVALID', message: /fastOpen: expected a boolean/ });
  t.equal(convertConnectorFromOptions({ fastOpen: 'ignored without a concentrator' }), undefined, 'no concentrator: no connector, options not read');
});

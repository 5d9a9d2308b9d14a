import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Store } from '../../src/store/index.js';
import { OtaService } from '../../src/ota/index.js';
import { isDuocellError } from '../../src/core/errors.js';
import { OPERATOR, synthSet, fullDoc, signed } from './ota-fixtures.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-ota-poll-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Served {
  status: number;
  body: string;
  etag: string;
}

async function server(t: { teardown(fn: () => unknown): void }, state: { now: Served; seen: Array<string | undefined> }): Promise<string> {
  const srv = http.createServer((req, res) => {
    state.seen.push(req.headers['if-none-match']);
    const s = state.now;
    if (s.status !== 200) {
      res.writeHead(s.status).end('nope');
      return;
    }
    if (req.headers['if-none-match'] === s.etag) {
      res.writeHead(304, { etag: s.etag }).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', etag: s.etag }).end(s.body);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => srv.close(() => r())));
  return `http://127.0.0.1:${(srv.address() as AddressInfo).port}/bundle.json?token=secret`;
}

t.test('poll with If-None-Match: apply once, then 304s; errors recorded', async (t) => {
  const store = await Store.open({ dir: path.join(tmp, 'a') });
  t.teardown(() => store.close());
  const state = { now: { status: 200, body: signed(fullDoc(3, synthSet(4, 'web'))), etag: '"v3"' }, seen: [] as Array<string | undefined> };
  const url = await server(t, state);
  const ota = new OtaService({ store, boardKeys: [OPERATOR.publicB64], url });
  t.equal(await ota.checkNow(), 'applied');
  t.equal(store.otaState().currentVersion, 3);
  t.equal(await ota.checkNow(), 'not-modified');
  t.same(state.seen, [undefined, '"v3"'], 'second request carried the ETag');
  t.equal(ota.status().lastResult, 'not-modified');
  t.equal(ota.status().etag, '"v3"');

  state.now = { status: 503, body: '', etag: '' };
  try {
    await ota.checkNow();
    t.fail('no error');
  } catch (e) {
    t.ok(isDuocellError(e, 'DC_OTA_FETCH'));
    t.notMatch((e as Error).message, /secret/, 'query string (credentials) not in the message');
  }
  t.equal(ota.status().lastError?.code, 'DC_OTA_FETCH');

  // a refused bundle is recorded and not fetched again while its ETag stays
  state.now = { status: 200, body: signed(fullDoc(2, synthSet(1, 'old'))), etag: '"v2"' };
  try {
    await ota.checkNow();
    t.fail('old bundle applied');
  } catch (e) {
    t.ok(isDuocellError(e, 'DC_OTA_ROLLBACK'));
  }
  t.equal(await ota.checkNow(), 'not-modified');
  t.equal(ota.status().lastResult, 'not-modified');
  t.equal(store.otaState().currentVersion, 3);
});

t.test('poller loop backs off on failures and recovers', async (t) => {
  const store = await Store.open({ dir: path.join(tmp, 'b') });
  t.teardown(() => store.close());
  const state = { now: { status: 500, body: '', etag: '' } as Served, seen: [] as Array<string | undefined> };
  const url = await server(t, state);
  const ota = new OtaService({ store, boardKeys: [OPERATOR.publicB64], url, intervalMs: 5, backoffBaseMs: 2, backoffCapMs: 20, rand: () => 0.5 });
  ota.start();
  t.teardown(() => ota.stop());
  while (state.seen.length < 4) await new Promise((r) => setTimeout(r, 5));
  t.equal(store.otaState().currentVersion, 0);
  t.equal(ota.status().lastError?.code, 'DC_OTA_FETCH');
  state.now = { status: 200, body: signed(fullDoc(1, synthSet(2, 'p'))), etag: '"1"' };
  while (store.otaState().currentVersion !== 1) await new Promise((r) => setTimeout(r, 5));
  t.equal(store.countSubscribers(), 2, 'recovered and applied');
  await ota.stop();
  const n = state.seen.length;
  await new Promise((r) => setTimeout(r, 30));
  t.equal(state.seen.length, n, 'no request after stop()');
});

t.test('only http and https URLs', async (t) => {
  const store = await Store.open({ dir: path.join(tmp, 'c') });
  t.teardown(() => store.close());
  for (const url of ['file:///etc/passwd', 'ftp://x/y', 'not a url', 'javascript:alert(1)', 'data:,x']) {
    try {
      new OtaService({ store, url });
      t.fail(url);
    } catch (e) {
      t.ok(isDuocellError(e, 'DC_CONFIG_INVALID'), `refused ${url}`);
    }
  }
});

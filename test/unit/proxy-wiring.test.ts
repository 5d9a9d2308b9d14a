import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store } from '../../src/store/index.js';
import { validateBoard } from '../../src/core/board.js';
import { startSelection } from '../../src/wiring/proxies.js';
import { anycastProfile, startAnycast } from '../../src/wiring/anycast.js';
import { isDuocellError } from '../../src/core/errors.js';

/** The composition of proxy selection (board defaults → store → selector → listener connector) and of the anycast announcement. */

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-proxy-wiring-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

const board = (extra: Record<string, unknown>) =>
  validateBoard({
    name: 't',
    preset: 'cell',
    uplinks: [{ name: 'wlan', access: 'wlan', interface: 'polwl0', table: 22 }],
    lan: { interfaces: [] },
    web: { listen: [{ host: '127.0.0.1', port: 0 }] },
    listeners: [
      { kind: 'transparent', host: '::', port: 8000, mptcp: true, upstream: 'mptcp', options: { concentrator: '192.0.2.99:5124', cookie: 'c' } },
      { kind: 'explicit', host: '::', port: 9000, mptcp: true, target: '192.0.2.1:80', upstream: 'tcp' },
    ],
    accessNetworks: [],
    ...extra,
  });

t.test('a cell seeds the board candidates, selects for transparent listeners only, edits reload', async (t) => {
  const store = await Store.open({ dir: path.join(tmp, 'a') });
  t.teardown(() => store.close());
  const b = board({ proxies: [{ name: 'site-a', address: '192.0.2.10', port: 5124, protocol: 'convert', priority: 5 }], proxySelection: { intervalMs: 60_000, failAfter: 3 } });
  // probes go nowhere useful here: stop at once, the health is not under test
  const sel = startSelection(b, store, { intervalMs: 60_000, timeoutMs: 50 });
  t.teardown(() => sel.close());
  t.same(store.listProxies().map((p) => p.name), ['site-a'], 'seeded from the board');
  t.throws(() => board({ proxySelection: { intervalMs: 1 } }), { code: 'DC_CONFIG_INVALID' }, 'probe tuning checked by the board schema');
  t.equal(sel.connector(b.listeners[0]!)?.name, 'select', 'the transparent listener selects');
  t.equal(sel.connector(b.listeners[1]!), undefined, 'the explicit one keeps its own connector');
  t.same(sel.sniOutcomes(), {}, 'no SNI front made yet: no outcomes');
  const f1 = sel.front(b.listeners[0]!);
  const f2 = sel.front(b.listeners[0]!);
  f1.counts.set('sni', 2);
  f2.counts.set('sni', 3);
  f2.counts.set('DC_TLS_MALFORMED', 1);
  t.same(sel.sniOutcomes(), { sni: 5, DC_TLS_MALFORMED: 1 }, "/metrics' SNI outcomes: every front's counts, summed");
  t.match(sel.view(), [{ id: 'site-a', name: 'site-a', priority: 5 }]);
  sel.set([{ name: 'site-b', address: '192.0.2.11', port: 5124, protocol: 'convert' }], 'web');
  t.same(sel.selector.list().map((x) => x.candidate.name), ['site-b'], 'the selector follows an edit at once');
  let code = 'ok';
  try {
    sel.set([{ name: 'x', address: '192.0.2.11', port: 5124, protocol: 'convert', type: 'nope' }], 'web');
  } catch (e) {
    code = isDuocellError(e) ? e.code : String(e);
  }
  t.equal(code, 'DC_STORE_INVALID');
  t.same(sel.selector.list().map((x) => x.candidate.name), ['site-b'], 'a refused list changes nothing');
  t.throws(() => board({ proxies: [{ address: '192.0.2.10', port: 5124, protocol: 'convert', type: 'x' }] }), { code: 'DC_CONFIG_INVALID' }, 'the board schema refuses an unknown type');
  const dup = { address: '192.0.2.10', port: 5124, protocol: 'convert', name: 'same' };
  const bad = board({ proxies: [dup, { ...dup, address: '192.0.2.12' }] });
  const store2 = await Store.open({ dir: path.join(tmp, 'b') });
  t.teardown(() => store2.close());
  t.throws(() => startSelection(bad, store2), { code: 'DC_CONFIG_INVALID' }, 'duplicate names in the board defaults: a configuration error at start');
});

t.test('anycast: profile checked, announce at start, withdraw on stop (errors logged, not thrown)', async (t) => {
  t.equal(anycastProfile(board({})), undefined);
  t.same(anycastProfile(board({ anycast: { protocol: 'anycast' } })), { protocol: 'anycast' });
  t.throws(() => anycastProfile(board({ anycast: { protocol: 'bad name; rm' } })), { code: 'DC_CONFIG_INVALID' });
  const calls: string[] = [];
  const stop = await startAnycast({ protocol: 'p' }, { announce: async () => void calls.push('announce'), withdraw: async () => void calls.push('withdraw') });
  t.same(calls, ['announce']);
  await stop();
  t.same(calls, ['announce', 'withdraw']);
  const stop2 = await startAnycast({ protocol: 'p' }, {
    announce: async () => undefined,
    withdraw: async () => {
      throw new Error('socket gone');
    },
  });
  await t.resolves(stop2(), 'a failed withdrawal still lets the engine drain and exit');
  await t.rejects(startAnycast({ protocol: 'p' }, { announce: async () => Promise.reject(Object.assign(new Error('x'), { code: 'DC_BIRD_COMMAND' })), withdraw: async () => undefined }), { code: 'DC_BIRD_COMMAND' }, 'a failed announcement is fatal at start');
});

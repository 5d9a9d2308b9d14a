import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store } from '../../src/store/index.js';
import { normalizeProxies } from '../../src/store/validate.js';
import { OtaService } from '../../src/ota/index.js';
import { isDuocellError } from '../../src/core/errors.js';
import { ProxySelector } from '../../src/services/proxy/selection.js';
import { proxyViews } from '../../src/wiring/proxies.js';
import { SessionSchema } from '../../src/web/schemas.js';
import { OPERATOR, synthSet, fullDoc, signed } from './ota-fixtures.js';

/** Applications matched by TLS SNI (issue 15): the `sni` list of a candidate's app, from the schema to the choice. */

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-proxy-sni-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (e) {
    return isDuocellError(e) ? `${e.code} ${e.message}` : `not a DuocellError: ${String(e)}`;
  }
}

const siteA = {
  name: 'site-a',
  address: '192.0.2.10',
  port: 5124,
  protocol: 'convert' as const,
  priority: 10,
  apps: [{ name: 'video', ports: [443], sni: ['Video.Example', '*.CDN.example'] }],
  policies: ['premium'],
};
const near = { name: 'near', address: '192.0.2.20', port: 5124, protocol: 'convert' as const, priority: 1 };

t.test('the store: sni names normalised, an sni app without ports or a bad name refused', async (t) => {
  const [a] = normalizeProxies([siteA]);
  t.same(a!.apps, [{ name: 'video', ports: [443], prefixes: [], sni: ['video.example', '*.cdn.example'] }], 'lower case; kept only when present');
  t.same(normalizeProxies([{ ...siteA, apps: [{ name: 'web', ports: [80] }] }])[0]!.apps, [{ name: 'web', ports: [80], prefixes: [] }], 'no sni key on an app without names');
  t.match(codeOf(() => normalizeProxies([{ ...siteA, apps: [{ name: 'video', sni: ['video.example'] }] }])), /^DC_STORE_INVALID .*apps\[0\]\.sni.*ports/, 'sni without ports: refused, with the path');
  for (const bad of ['video..example', '*.', 'video.*', 'a.*.example', 'vidéo.example', 'video.example.', '*example.com', '']) {
    t.match(codeOf(() => normalizeProxies([{ ...siteA, apps: [{ name: 'video', ports: [443], sni: [bad] }] }])), /^DC_STORE_INVALID/, `refused: ${JSON.stringify(bad)}`);
  }
  t.match(codeOf(() => normalizeProxies([{ ...siteA, apps: [{ name: 'video', ports: [443], sni: Array.from({ length: 65 }, (_, i) => `n${i}.example`) }] }])), /^DC_STORE_INVALID/, 'at most 64 names');
});

t.test('a signed OTA bundle carries sni (its schema is derived from the store\'s)', async (t) => {
  const s = await Store.open({ dir: path.join(tmp, 'ota') });
  t.teardown(() => s.close());
  const ota = new OtaService({ store: s, boardKeys: [OPERATOR.publicB64] });
  const set = { ...synthSet(2, 'o'), policies: [...synthSet(2, 'o').policies, { name: 'premium' }], proxies: [siteA, near] };
  ota.apply(signed(fullDoc(5, set)), 'cli');
  t.match(s.listProxies().find((p) => p.name === 'site-a')?.apps, [{ name: 'video', sni: ['video.example', '*.cdn.example'] }]);
  t.match(proxyViews(s).find((p) => p.name === 'site-a')?.apps, [{ name: 'video', ports: [443], prefixes: [], sni: ['video.example', '*.cdn.example'] }], 'the API shows the names');
  t.notOk('sni' in (proxyViews(s).find((p) => p.name === 'near')?.apps?.[0] ?? {}), 'and none where there are none');
  let code = 'ok';
  try {
    ota.apply(signed(fullDoc(6, { ...set, proxies: [{ ...siteA, apps: [{ name: 'video', ports: [443], sni: ['bad..name'] }] }, near] })), 'cli');
  } catch (e) {
    code = isDuocellError(e) ? e.code : String(e);
  }
  t.match(code, /^DC_OTA_/, 'a bad name in a bundle is refused');
});

t.test('selection: an sni app matches only a session with one of its names; needsSni per policy and port', async (t) => {
  const list = normalizeProxies([siteA, near, { name: 'other-plan', address: '192.0.2.30', port: 5124, protocol: 'convert', priority: 20, policies: ['basic'], apps: [{ name: 'tv', ports: [8443], sni: ['tv.example'] }] }]);
  const s = new ProxySelector({ candidates: () => list, probe: async () => 1, random: () => 0 });
  const pick = (req: { policy: string | null; port: number; sni?: string }): string | undefined => s.choose({ address: '198.51.100.7', ...req })?.candidate.name;
  t.equal(pick({ policy: 'premium', port: 443, sni: 'video.example' }), 'site-a');
  t.equal(pick({ policy: 'premium', port: 443, sni: 'VIDEO.example' }), 'site-a', 'case-insensitive');
  t.equal(pick({ policy: 'premium', port: 443, sni: 'a.b.cdn.example' }), 'site-a', 'wildcard: any depth');
  t.equal(pick({ policy: 'premium', port: 443, sni: 'cdn.example' }), 'near', 'wildcard: not the bare suffix');
  t.equal(pick({ policy: 'premium', port: 443, sni: 'news.example' }), 'near', 'another name: the default');
  t.equal(pick({ policy: 'premium', port: 443 }), 'near', 'no name (not TLS, no SNI, timed out): the default');
  t.equal(pick({ policy: 'premium', port: 80, sni: 'video.example' }), 'near', 'the name on another port: the default');
  t.equal(pick({ policy: null, port: 443, sni: 'video.example' }), 'near', 'a client without the policy: the default');
  t.equal(s.choose({ policy: 'premium', address: '198.51.100.7', port: 443, sni: 'video.example' })?.app, 'video', 'the matched application is named');
  t.ok(s.sniPort(443) && s.sniPort(8443) && !s.sniPort(80), 'sniPort: the ports any sni app lists');
  t.ok(s.needsSni('premium', 443), 'premium on 443: peek');
  t.notOk(s.needsSni('premium', 8443), 'premium on 8443: the tv rule is basic\'s');
  t.ok(s.needsSni('basic', 8443));
  t.notOk(s.needsSni(null, 443), 'no policy: no rule of its candidates needs SNI');
  t.notOk(s.needsSni('premium', 80));
});

t.test('selection: a list without sni never asks for a peek', async (t) => {
  const s = new ProxySelector({ candidates: () => normalizeProxies([{ ...siteA, apps: [{ name: 'video', ports: [443] }] }, near]), probe: async () => 1 });
  for (const port of [443, 80, 25]) t.notOk(s.sniPort(port) || s.needsSni('premium', port), `port ${port}`);
});

t.test('the sessions API declares sni', async (t) => {
  t.match(SessionSchema.properties, { sni: { type: 'string' }, proxy: { type: 'string' } });
});

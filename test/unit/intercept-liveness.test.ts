// The liveness part of the steering ruleset (issue 16, item 7): pure text, checked by `nft -c` where nft runs.
import t from 'tap';
import { ALIVE_SET, buildRuleset, validateIntercept, type InterceptConfig } from '../../src/services/intercept/ruleset.js';
import { applyRuleset, renewalText } from '../../src/drivers/nft/index.js';
import { Intercept, type InterceptNft } from '../../src/services/intercept/index.js';
import { sh } from '../helpers/hosts.js';

const base: InterceptConfig = { table: 'duocell', lanInterfaces: ['lan0'], ports: [{ port: 8000, claim: 'mptcp' }, { port: 8002, claim: 'all' }], mark: 1, synRate: 10, synBurst: 20, perSourceMax: 5 };

t.test('with livenessMs the intercept chain first lets through every port not in the alive set', async (t) => {
  const text = buildRuleset({ ...base, livenessMs: 1500 });
  t.match(text, /set alive \{ type inet_service; flags timeout; elements = \{ 8000 timeout 1500ms, 8002 timeout 1500ms \}; \}/);
  const chain = text.slice(text.indexOf('chain intercept'));
  const lines = chain.split('\n').map((l) => l.trim());
  t.equal(lines[1], `tcp dport != @${ALIVE_SET} accept`, 'the liveness check is the first rule of the intercept chain');
  t.notMatch(buildRuleset(base), /alive/, 'without livenessMs: no set, no check');
  t.notMatch(buildRuleset({ ...base, livenessMs: 0 }), /alive/, 'livenessMs 0: off');
});

t.test('the renewal (nft fallback text) is add, delete, add in one transaction with a fresh timeout', async (t) => {
  t.equal(
    renewalText('inet', 'duocell', ALIVE_SET, [8000, 8002, 8000], 900),
    'add element inet duocell alive { 8000 timeout 900ms, 8002 timeout 900ms }\ndelete element inet duocell alive { 8000, 8002 }\nadd element inet duocell alive { 8000 timeout 900ms, 8002 timeout 900ms }\n',
  );
  t.throws(() => renewalText('inet', 'duocell', ALIVE_SET, [], 900), { code: 'DC_NFT_APPLY' }, 'nothing to renew without ports');
  t.throws(() => renewalText('inet', 'duo cell', ALIVE_SET, [1], 900), { code: 'DC_NFT_APPLY' }, 'a bad table name');
  t.throws(() => renewalText('inet', 'duocell', ALIVE_SET, [1], 0), { code: 'DC_NFT_APPLY' }, 'a zero timeout');
});

t.test('the service renews every third of livenessMs through renewTimeoutPorts, counts, and says once when it fails and when it works again', async (t) => {
  const calls: string[] = [];
  let failing = false;
  const nft: InterceptNft = {
    async applyRuleset() { calls.push('apply'); },
    async deleteTable() { calls.push('delete'); },
    async ensureLocalDelivery() {},
    async removeLocalDelivery() {},
    async addAddrPortElement() {},
    async renewTimeoutPorts(f, table, set, ports, ms) {
      calls.push(`renew ${f} ${table} ${set} ${ports.join(',')} ${ms}`);
      if (failing) throw Object.assign(new Error('refused'), { code: 'DC_NFT_APPLY' });
    },
    close() { calls.push('close'); },
    async flushSet() {},
    async listSetJson() { return []; },
  };
  const i = new Intercept({ ...base, ports: [...base.ports, { port: 8000, claim: 'all' }], livenessMs: 300, routeTable: 100, mserverTtlS: 60 }, nft);
  await i.start();
  const until = async (f: () => boolean): Promise<void> => { for (let k = 0; k < 400 && !f(); k++) await new Promise((r) => setTimeout(r, 10)); };
  await until(() => i.renewals.ok >= 2);
  t.ok(i.renewals.ok >= 2, `renewed (${i.renewals.ok})`);
  t.equal(calls.find((c) => c.startsWith('renew')), 'renew inet duocell alive 8000,8002 300', 'each port once, the configured timeout');
  t.notOk(calls.slice(1).includes('apply'), 'renewals never apply a ruleset');
  failing = true;
  await until(() => i.renewals.failed >= 2);
  t.ok(i.renewals.failed >= 2, `failures counted (${i.renewals.failed})`);
  failing = false;
  const ok = i.renewals.ok;
  await until(() => i.renewals.ok > ok);
  t.ok(i.renewals.ok > ok, 'renewals work again');
  await i.stop();
  t.ok(calls.includes('close'), 'stop releases the element writer');
  const n = calls.length;
  await new Promise((r) => setTimeout(r, 250));
  t.equal(calls.length, n, 'no renewal after stop');
});

t.test('bad livenessMs values are refused with a code', async (t) => {
  for (const v of [1, 299, 1.5, -1, 3_600_001, Number.NaN]) t.throws(() => validateIntercept({ ...base, livenessMs: v }), { code: 'DC_CONFIG_INVALID' }, String(v));
  for (const v of [0, 300, 1500, 3_600_000]) t.doesNotThrow(() => validateIntercept({ ...base, livenessMs: v }), String(v));
});

const nft = (await sh('nft', ['--version'], { allowFail: true })) !== '' && process.getuid?.() === 0;
t.test('nft accepts the ruleset and the renewal (nft -c, needs root and nft)', { skip: nft ? false : 'needs root and nft' }, async (t) => {
  const cfg = { ...base, table: 'hbcheck', livenessMs: 1500 };
  await t.resolves(applyRuleset(buildRuleset(cfg), true));
  await t.resolves(applyRuleset(buildRuleset(cfg) + renewalText('inet', cfg.table, ALIVE_SET, [8000, 8002], cfg.livenessMs), true), 'ruleset followed by a renewal checks');
});

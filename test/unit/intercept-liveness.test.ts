// The liveness part of the steering ruleset (issue 16, item 7): pure text, checked by `nft -c` where nft runs.
import t from 'tap';
import { ALIVE_SET, buildRuleset, livenessRenewal, validateIntercept, type InterceptConfig } from '../../src/services/intercept/ruleset.js';
import { applyRuleset } from '../../src/drivers/nft/index.js';
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

t.test('the renewal is add, delete, add in one transaction with a fresh timeout', async (t) => {
  t.equal(
    livenessRenewal({ ...base, livenessMs: 900 }),
    'add element inet duocell alive { 8000 timeout 900ms, 8002 timeout 900ms }\ndelete element inet duocell alive { 8000, 8002 }\nadd element inet duocell alive { 8000 timeout 900ms, 8002 timeout 900ms }\n',
  );
  t.throws(() => livenessRenewal({ ...base }), { code: 'DC_CONFIG_INVALID' }, 'nothing to renew without livenessMs');
});

t.test('bad livenessMs values are refused with a code', async (t) => {
  for (const v of [1, 299, 1.5, -1, 3_600_001, Number.NaN]) t.throws(() => validateIntercept({ ...base, livenessMs: v }), { code: 'DC_CONFIG_INVALID' }, String(v));
  for (const v of [0, 300, 1500, 3_600_000]) t.doesNotThrow(() => validateIntercept({ ...base, livenessMs: v }), String(v));
});

const nft = (await sh('nft', ['--version'], { allowFail: true })) !== '' && process.getuid?.() === 0;
t.test('nft accepts the ruleset and the renewal (nft -c, needs root and nft)', { skip: nft ? false : 'needs root and nft' }, async (t) => {
  const cfg = { ...base, table: 'hbcheck', livenessMs: 1500 };
  await t.resolves(applyRuleset(buildRuleset(cfg), true));
  await t.resolves(applyRuleset(buildRuleset(cfg) + livenessRenewal(cfg), true), 'ruleset followed by a renewal checks');
});

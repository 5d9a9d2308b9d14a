import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store } from '../../src/store/index.js';
import { normalizeProxies } from '../../src/store/validate.js';
import { isDuocellError, type DuocellError } from '../../src/core/errors.js';

// The transaction helper (store/tx.ts) behind every repository, and the shape of a refusal.

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-store-tx-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

function refusal(fn: () => unknown): DuocellError {
  try {
    fn();
  } catch (e) {
    if (isDuocellError(e)) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

t.test('a change writes its audit row and is announced once; a refused one leaves neither', async (t) => {
  const s = await Store.open({ dir: path.join(tmp, 'a') });
  t.teardown(() => s.close());
  const heard: number[] = [];
  s.onChange(() => heard.push(s.generation));
  const audits = (): number => s.listAudit({ limit: 10_000 }).length;

  const before = audits();
  s.setPolicy({ name: 'gold', maxSubflowsPerSession: 4 }, 'cli');
  t.equal(audits(), before + 1, 'one audit row');
  t.same(heard, [1], 'one notification, after the commit');
  t.match(s.listAudit({ limit: 1 })[0], { origin: 'cli', action: 'create', entity: 'policy', key: 'gold' });

  s.addSubscriber({ name: 'alice', policy: 'gold', addresses: ['10.0.0.1'] }, 'web');
  t.equal(refusal(() => s.removePolicy('gold', 'cli')).code, 'DC_STORE_IN_USE');
  t.equal(audits(), before + 2, 'the refused removal wrote no audit row');
  t.same(heard, [1, 2], 'and announced nothing');
  t.ok(s.getPolicy('gold'), 'and changed nothing');

  // writes nested in policyWrite join one transaction: one notification at the end
  s.policyWrite('seed', () => {
    s.addSubscriber({ name: 'bob', addresses: ['10.0.0.2'] }, 'cli');
    s.addSubscriber({ name: 'carol', addresses: ['10.0.0.3'] }, 'cli');
  });
  t.same(heard, [1, 2, 3], 'one notification for the whole batch');
  t.equal(audits(), before + 4, 'each change kept its audit row');

  // a batch that fails half way leaves nothing behind, audit rows included
  t.equal(
    refusal(() =>
      s.policyWrite('seed', () => {
        s.addSubscriber({ name: 'dave', addresses: ['10.0.0.4'] }, 'cli');
        s.addSubscriber({ name: 'erin', addresses: ['10.0.0.4'] }, 'cli');
      }),
    ).code,
    'DC_STORE_CONSTRAINT',
  );
  t.equal(s.getSubscriber('dave'), undefined, 'rolled back');
  t.equal(audits(), before + 4, 'no audit row of the rolled-back batch');
  t.same(heard, [1, 2, 3]);
  t.equal(s.resolvePolicy('10.0.0.1').policy, 'gold', 'the policy index follows the changes');
});

t.test('the raw handle is private; the store answers what callers asked it for', async (t) => {
  const s = await Store.open({ dir: path.join(tmp, 'b') });
  t.teardown(() => s.close());
  t.notOk('db' in s, 'no public db');
  t.same(s.connectionInfo(), { journalMode: 'wal', foreignKeys: true });
  t.equal(s.foreignKeyViolations(), 0);
  t.equal(s.integrityCheck(), 'ok');
});

t.test('refusals: a stable code, the path in the message, and fields in the API shape', async (t) => {
  const s = await Store.open({ dir: path.join(tmp, 'c') });
  t.teardown(() => s.close());
  const e1 = refusal(() => s.addSubscriber({ name: 'bob', addresses: ['10.0.0.1', '10.0.0.300'], macs: ['nope'] }, 'cli'));
  t.equal(e1.code, 'DC_STORE_INVALID');
  t.match(e1.message, /^subscriber\.addresses\[1\]: expected an IPv4\/IPv6 address or prefix/);
  t.same(e1.detail.fields, [
    { path: 'subscriber.addresses.1', message: 'expected an IPv4/IPv6 address or prefix' },
    { path: 'subscriber.macs.0', message: 'expected a MAC address (aa:bb:cc:dd:ee:ff)' },
  ]);
  const e2 = refusal(() => s.setPolicy({ name: 'x', ratio: { cellular: 30, wlan: 60 } }, 'cli'));
  t.same(e2.detail.fields, [{ path: 'policy.ratio', message: 'cellular + wlan must be 100' }], 'a check beyond the schema: same shape');
  const e3 = refusal(() => s.setPolicy({ name: 'bad name' }, 'cli'));
  t.same(e3.detail.fields, [{ path: 'policy.name', message: 'expected a name of 1-64 characters [A-Za-z0-9._@+-]' }]);
  const e4 = refusal(() => normalizeProxies([{ address: '192.0.2.1', port: 0, protocol: 'convert' }], 'DC_CONFIG_INVALID', 'board.proxies'));
  t.equal(e4.code, 'DC_CONFIG_INVALID', 'the caller chooses the code');
  t.same(e4.detail.fields, [{ path: 'board.proxies.0.port', message: 'expected >= 1' }]);
  t.equal(e4.message, 'board.proxies[0].port: expected >= 1');
});

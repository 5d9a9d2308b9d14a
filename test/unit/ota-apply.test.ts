import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store } from '../../src/store/index.js';
import { OtaService, BUNDLE_FORMAT, generateKeyPair } from '../../src/ota/index.js';
import { isDuocellError } from '../../src/core/errors.js';
import { OPERATOR, synthSet, fullDoc, signed } from './ota-fixtures.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-ota-app-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

t.test('full, delta, rollback, anti-rollback, audit', async (t) => {
  const store = await Store.open({ dir: path.join(tmp, 'a') });
  t.teardown(() => store.close());
  store.addSubscriber({ name: 'local', addresses: ['192.0.2.9'] }, 'cli');
  const localDigest = store.policyDigest();
  const ota = new OtaService({ store, boardKeys: [OPERATOR.publicB64] });

  const r1 = ota.apply(signed(fullDoc(10, synthSet(50, 'v10'))), 'cli');
  t.same([r1.version, r1.previousVersion, r1.kind, r1.keyId], [10, 0, 'full', OPERATOR.keyId]);
  t.equal(store.countSubscribers(), 50, 'full set replaced the local subscriber');
  t.equal(store.resolvePolicy('10.0.0.3').subscriber, 'v10-3', 'policy index sees the new set');
  t.equal(store.resolvePolicy('10.0.0.3').maxSessionsPerUe, 64);
  t.equal(store.getSubscriber('local'), undefined);
  const v10 = store.policyDigest();

  const delta = {
    format: BUNDLE_FORMAT,
    version: 11,
    issuedAt: new Date().toISOString(),
    target: 'all',
    kind: 'delta',
    base: 10,
    upsert: {
      policies: [{ name: 'v11-new', maxSessionsPerUe: 1 }],
      subscribers: [{ name: 'v10-1', policy: 'v11-new', addresses: ['10.0.0.2'] }, { name: 'added', addresses: ['10.0.0.1'] }],
    },
    remove: { subscribers: ['v10-2', 'v10-4'], nserverLimits: ['198.51.100.0/24'] },
  };
  // v10-1 takes over 10.0.0.2 from v10-2 (removed) and gives 10.0.0.1 to 'added'
  const r2 = ota.apply(signed(delta as never), 'push');
  t.same([r2.version, r2.previousVersion, r2.kind], [11, 10, 'delta']);
  t.equal(store.countSubscribers(), 49);
  t.equal(store.resolvePolicy('10.0.0.2').subscriber, 'v10-1');
  t.equal(store.resolvePolicy('10.0.0.2').maxSessionsPerUe, 1);
  t.equal(store.resolvePolicy('10.0.0.1').subscriber, 'added');
  t.same(store.listNServerLimits(), []);

  const rb = ota.rollback();
  t.same(rb, { version: 10, from: 11 });
  t.equal(store.policyDigest(), v10, 'rollback restores exactly version 10');
  t.equal(store.otaState().highestVersion, 11, 'highest version remembered');
  try {
    ota.rollback();
    t.fail('rolled back twice');
  } catch (e) {
    t.ok(isDuocellError(e, 'DC_OTA_NO_PREVIOUS'), 'one step only');
  }
  try {
    ota.apply(signed(delta as never), 'push');
    t.fail('v11 applied again');
  } catch (e) {
    t.ok(isDuocellError(e, 'DC_OTA_ROLLBACK'), 'the rolled-back version stays refused');
  }

  ota.apply(signed(fullDoc(12, synthSet(5, 'v12'))), 'cli');
  t.equal(store.countSubscribers(), 5);
  const audit = store.listAudit({ limit: 20 }).filter((a) => a.entity === 'bundle').map((a) => `${a.origin} ${a.action} ${a.key}`);
  t.same(audit.reverse(), ['ota:10 apply 10', 'ota:11 apply 11', 'ota:rollback rollback 10', 'ota:12 apply 12']);
  t.not(localDigest, v10);

  const st = ota.status();
  t.equal(st.currentVersion, 12);
  t.equal(st.previousVersion, 10);
  t.equal(st.lastResult, 'applied');
  t.match(st.trustedKeys, [new RegExp(`^${OPERATOR.keyId} \\(board\\)$`)]);
});

t.test('keys from the store, push of a parsed body, credentials kept', async (t) => {
  const store = await Store.open({ dir: path.join(tmp, 'b'), scrypt: { N: 1024, r: 8, p: 1 } });
  t.teardown(() => store.close());
  const k = generateKeyPair();
  store.addTrustedKey(k.keyId, k.publicB64, 'ops 2026', 'cli');
  const ota = new OtaService({ store });
  const set = synthSet(3, 'p');
  ota.push(JSON.parse(signed(fullDoc(1, set), k.privatePem)));
  t.equal(store.otaState().currentVersion, 1, 'a web-parsed envelope applies');
  await store.setSubscriberPassword('p-1', 'secret-pw', 'cli');
  ota.push(signed(fullDoc(2, set), k.privatePem));
  t.ok(await store.verifySubscriberPassword('p-1', 'secret-pw'), 'a bundle without a credential keeps the local one');
});

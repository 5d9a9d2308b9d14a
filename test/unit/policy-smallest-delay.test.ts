// smallest-delay as a policy steering mode, end to end: the store keeps it (and across a
// reopen), the page's API serves it, an OTA bundle may carry it, and the path manager's
// steering controller is handed that mode for a connection under the policy.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { Store, STEERING_MODES } from '../../src/store/index.js';
import { OtaService } from '../../src/ota/index.js';
import { storeBackedPolicy } from '../../src/wiring/policy.js';
import { pmPolicyInput } from '../../src/wiring/pm.js';
import { steeringPolicy } from '../../src/services/policy/connection.js';
import { policyProblem, STEER_MODES } from '../../src/services/pm/steer/modes.js';
import type { PmConnectionView } from '../../src/services/pm/index.js';
import type { ProxyEngine } from '../../src/services/proxy/index.js';
import { PolicySpecSchema } from '../../src/web/schemas.js';
import { goodPolicy, startServer } from './web-helpers.js';
import { OPERATOR, fullDoc, signed, synthSet } from './ota-fixtures.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-mode-sd-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

const conn = (daddr: string): PmConnectionView => ({ token: 1, serverSide: true, daddr }) as PmConnectionView;

t.test('every policy mode is a controller mode, an API value and a choice on the page', async (t) => {
  t.ok(STEERING_MODES.includes('smallest-delay'));
  for (const m of STEERING_MODES) t.ok(Object.hasOwn(STEER_MODES, m), `${m} has a controller module`);
  const api = PolicySpecSchema.properties.steering.properties.mode.enum;
  t.same([...api].sort(), [...STEERING_MODES].sort(), 'the API schema accepts exactly the store\'s modes');
  // @ts-expect-error: a browser module without declarations
  const form = (await import('../../src/web/ui/lib/policy-form.js')) as { STEERING_MODES: string[] };
  t.same([...form.STEERING_MODES].sort(), [...STEERING_MODES].sort(), 'the policy form offers every mode');
});

t.test('stored, read back after a reopen, reaches the controller', async (t) => {
  const dir = path.join(tmp, 'store');
  let store = await Store.open({ dir });
  store.setPolicy({ name: 'low', steeringMode: 'smallest-delay' }, 'cli');
  store.addSubscriber({ name: 'gamer', addresses: ['192.0.2.40'], policy: 'low' }, 'cli');
  t.equal(store.getPolicy('low')?.steeringMode, 'smallest-delay');
  store.close();
  store = await Store.open({ dir });
  t.teardown(() => store.close());
  t.equal(store.getPolicy('low')?.steeringMode, 'smallest-delay', 'kept on disk');
  t.equal(store.resolvePolicy('192.0.2.40').steeringMode, 'smallest-delay', 'resolved for the subscriber');

  const f = steeringPolicy(pmPolicyInput(store, new EventEmitter() as unknown as ProxyEngine), 'wlan');
  const p = f(conn('192.0.2.40'));
  t.equal(p?.mode, 'smallest-delay', 'the controller is given smallest-delay');
  t.equal(policyProblem(p), undefined, 'and accepts it');
  t.equal(f(conn('192.0.2.99')), undefined, 'a connection under a policy without a mode is not steered');
});

t.test('the page: PUT then GET /api/v1/policy with smallest-delay', async (t) => {
  const store = await Store.open({ dir: path.join(tmp, 'web') });
  const h = await startServer({}, (d) => ({ ...d, ...storeBackedPolicy(store) }));
  t.teardown(async () => {
    await h.close();
    store.close();
  });
  const c = h.client();
  await c.setup();
  const p = { ...goodPolicy(), steering: { mode: 'smallest-delay', primary: 'wlan', ratio: { cellular: 30, wlan: 70 } } };
  const put = await c.req('PUT', '/api/v1/policy', { defaults: p });
  t.equal(put.status, 200, put.text.slice(0, 300));
  t.equal(put.body.defaults.steering.mode, 'smallest-delay');
  t.equal((await c.get('/api/v1/policy')).body.defaults.steering.mode, 'smallest-delay', 'served by GET');
  t.equal(store.getPolicy('default')?.steeringMode, 'smallest-delay', 'written to the store');
  const bad = await c.req('PUT', '/api/v1/policy', { defaults: { ...p, steering: { ...p.steering, mode: 'smallest-delay2' } } });
  t.equal(bad.status, 400, 'an unknown mode is still refused');
  t.equal(store.getPolicy('default')?.steeringMode, 'smallest-delay', 'and changes nothing');
});

t.test('an OTA bundle may carry smallest-delay', async (t) => {
  const store = await Store.open({ dir: path.join(tmp, 'ota') });
  t.teardown(() => store.close());
  const ota = new OtaService({ store, boardKeys: [OPERATOR.publicB64] });
  const set = synthSet(3, 'sd');
  set.policies = set.policies.map((p) => (p.name === 'sd-basic' ? { ...p, steeringMode: 'smallest-delay' as const } : p));
  const r = ota.apply(signed(fullDoc(5, set)), 'cli');
  t.equal(r.version, 5);
  t.equal(store.getPolicy('sd-basic')?.steeringMode, 'smallest-delay');
  t.equal(store.resolvePolicy('10.0.0.1').steeringMode, 'smallest-delay', 'sd-1 is on sd-basic');
  const f = steeringPolicy(pmPolicyInput(store, new EventEmitter() as unknown as ProxyEngine), 'wlan');
  t.equal(f(conn('10.0.0.1'))?.mode, 'smallest-delay', 'and the controller gets it');
});

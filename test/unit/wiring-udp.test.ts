import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store } from '../../src/store/index.js';
import { ACCT_SYSCTL, enableConntrackAccounting, storePolicySource, udpModeOf } from '../../src/wiring/udp.js';
import { KernelLedger, type LedgerKernel } from '../../src/services/restore/ledger.js';
import type { BoardProfile } from '../../src/core/board.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-udp-wiring-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

t.test('UDP mode follows the MPTCP mode unless the policy or the board names one', async (t) => {
  t.equal(udpModeOf('ratio'), 'load-balancing');
  t.equal(udpModeOf('active-standby'), 'active-standby');
  t.equal(udpModeOf('priority'), 'priority');
  t.equal(udpModeOf('ratio', 'smallest-delay'), 'smallest-delay');
});

t.test('the store as the UDP policy source: subscribers by address, their policy, the default', async (t) => {
  const s = await Store.open({ dir: tmp });
  t.teardown(() => s.close());
  s.setPolicy({ name: 'gamer', steeringMode: 'active-standby', ratio: { cellular: 20, wlan: 80 } }, 'cli');
  s.setSetting('policy-extra.gamer', JSON.stringify({ allowedAccess: ['cellular'], primary: 'cellular', udpMode: 'smallest-delay' }), 'cli');
  s.addSubscriber({ name: 'console', policy: 'gamer', addresses: ['192.168.77.9'] }, 'cli');
  s.addSubscriber({ name: 'nobody', addresses: [] }, 'cli');
  const src = storePolicySource(s, { policy: {} } as unknown as BoardProfile);
  const g = src.groups();
  t.equal(g.length, 1, 'subscribers without addresses have no group');
  t.same(g[0], { key: 'console', prefixes: ['192.168.77.9/32'], policy: { mode: 'smallest-delay', preferred: 'cellular', ratio: { cellular: 20, wlan: 80 }, allowed: ['cellular'] } });
  t.same(src.fallback(), { mode: 'load-balancing', preferred: 'wlan', ratio: { cellular: 50, wlan: 50 }, allowed: ['cellular', 'wlan'] }, 'the built-in default: ratio → load-balancing');
  s.setSetting('policy-extra.gamer', JSON.stringify({ allowedAccess: ['cellular'], primary: 'cellular', udpMode: 'teleport' }), 'cli');
  t.equal(src.groups()[0]!.policy.mode, 'active-standby', 'an unknown stored UDP mode is ignored (the MPTCP mode counts)');
});

t.test('conntrack accounting: recorded in the kernel ledger before it is turned on, put back by undo()', async (t) => {
  const s = await Store.open({ dir: fs.mkdtempSync(path.join(tmp, 'ledger-')) });
  t.teardown(() => s.close());
  const sysctl = new Map([[ACCT_SYSCTL, '0']]);
  const writes: string[] = [];
  const kernel = {
    readSysctl: (n: string) => `${sysctl.get(n) ?? ''}\n`,
    writeSysctl: (n: string, v: string) => {
      writes.push(`${n}=${v}`);
      sysctl.set(n, v);
    },
    limits: async () => undefined,
    setLimits: async () => undefined,
    endpoints: async () => [],
    deleteEndpoint: async () => undefined,
    clearTable: async () => ({ rules: 0, routes: 0 }),
  } satisfies LedgerKernel;
  const ledger = new KernelLedger(s, kernel);
  const order: string[] = [];
  const on = await enableConntrackAccounting(
    { recordSysctl: (n) => (order.push(`record ${n}`), ledger.recordSysctl(n)) },
    async (v) => {
      order.push(`write ${v}`);
      sysctl.set(ACCT_SYSCTL, v);
    },
  );
  t.equal(on, true);
  t.same(order, [`record ${ACCT_SYSCTL}`, 'write 1'], 'recorded first, then written');
  t.same(s.ledgerList(), [{ kind: 'sysctl', key: ACCT_SYSCTL, value: '0' }], 'the original value is in the ledger');
  await ledger.undo();
  t.same(writes, [`${ACCT_SYSCTL}=0`], 'a clean exit writes the original back');
  t.same(s.ledgerList(), [], 'and forgets the row');
  const off = await enableConntrackAccounting(undefined, async () => {
    throw new Error('EACCES');
  });
  t.equal(off, false, 'a refused write is not fatal: steering runs without byte counters');
});

// The kernel ledger (issue 16, item 4) over a real store and a fake kernel: originals are kept
// from the first change, a restart undoes leftovers first, what the operator made is left alone.
import t, { type Test } from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store } from '../../src/store/index.js';
import { KernelLedger, type LedgerKernel } from '../../src/services/restore/ledger.js';

class FakeKernel implements LedgerKernel {
  sysctl = new Map<string, string>([['net.mptcp.pm_type', '1'], ['net.mptcp.allow_join_initial_addr_port', '1']]);
  lim = { subflows: 3, addAddrAccepted: 2 };
  eps: Array<{ id: number; address: string }> = [{ id: 9, address: '10.9.9.1' }];
  tables = new Map<number, number>();
  writes: string[] = [];
  failDelete = false;
  readSysctl = (n: string): string => `${this.sysctl.get(n) ?? ''}\n`;
  writeSysctl = (n: string, v: string): void => {
    this.writes.push(`${n}=${v}`);
    this.sysctl.set(n, v);
  };
  limits = async (): Promise<{ subflows: number; addAddrAccepted: number }> => ({ ...this.lim });
  setLimits = async (l: { subflows?: number; addAddrAccepted?: number }): Promise<void> => {
    this.lim = { ...this.lim, ...l };
  };
  endpoints = async (): Promise<Array<{ id: number; address: string }>> => [...this.eps];
  addEndpoint = async (e: { address: string }): Promise<void> => {
    this.eps.push({ id: this.eps.length + 1, address: e.address });
  };
  deleteEndpoint = async (id: number, address?: string): Promise<void> => {
    if (this.failDelete) throw new Error('EPERM');
    this.eps = this.eps.filter((e) => !(e.id === id && e.address === address));
  };
  setEndpointFlags = async (_e: { id?: number; address?: string }): Promise<void> => undefined;
  clearTable = async (table: number): Promise<{ rules: number; routes: number }> => {
    this.tables.delete(table);
    return { rules: 1, routes: 1 };
  };
}

async function openStore(t: Test): Promise<{ dir: string; store: Store }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-ledger-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return { dir, store: await Store.open({ dir }) };
}

t.test('a crashed run is undone at the next start, and the originals stay the first ones', async (t) => {
  const { dir, store } = await openStore(t);
  const k = new FakeKernel();
  const run1 = new KernelLedger(store, k).wrap(k);
  run1.writeSysctl('net.mptcp.pm_type', '0');
  run1.writeSysctl('net.mptcp.allow_join_initial_addr_port', '0');
  run1.writeSysctl('net.mptcp.allow_join_initial_addr_port', '0'); // a second write keeps the first original
  await run1.setLimits({ subflows: 8, addAddrAccepted: 8 });
  await run1.addEndpoint({ address: '10.1.1.1' });
  new KernelLedger(store, k).recordTable(200);
  k.tables.set(200, 1);
  store.close(); // "kill -9": nothing undone

  const store2 = await Store.open({ dir });
  t.teardown(() => store2.close());
  const l2 = new KernelLedger(store2, k);
  t.equal(await l2.recover(), 5, 'five rows left by the crashed run');
  t.equal(k.sysctl.get('net.mptcp.pm_type'), '1');
  t.equal(k.sysctl.get('net.mptcp.allow_join_initial_addr_port'), '1');
  t.same(k.lim, { subflows: 3, addAddrAccepted: 2 });
  t.same(k.eps, [{ id: 9, address: '10.9.9.1' }], 'our endpoint gone, the operator\'s kept');
  t.equal(k.tables.has(200), false, 'the table cleared');
  t.same(store2.ledgerList(), [], 'ledger empty');
  t.equal(k.writes.at(-1), 'net.mptcp.pm_type=1', 'the path manager goes back last');
});

t.test('the operator\'s endpoints are never deleted or re-flagged', async (t) => {
  const { store } = await openStore(t);
  t.teardown(() => store.close());
  const k = new FakeKernel();
  const led = new KernelLedger(store, k);
  const w = led.wrap(k);
  await w.deleteEndpoint(9, '10.9.9.1');
  await w.setEndpointFlags({ id: 9, address: '10.9.9.1' });
  t.same(k.eps, [{ id: 9, address: '10.9.9.1' }], 'still there');
  t.equal(led.counts.refusedForeign, 2, 'both refusals counted');
  await w.addEndpoint({ address: '2001:DB8:0::1' });
  t.ok(led.ownsEndpoint('2001:db8::1'), 'ours whatever the spelling');
  await w.deleteEndpoint(2, '2001:DB8:0::1');
  t.same(store.ledgerList(), [], 'deleting our own endpoint forgets it');
});

t.test('a step that fails keeps its row and throws DC_KERNEL_RESTORE; the others still run', async (t) => {
  const { store } = await openStore(t);
  t.teardown(() => store.close());
  const k = new FakeKernel();
  const led = new KernelLedger(store, k);
  const w = led.wrap(k);
  await w.addEndpoint({ address: '10.1.1.1' });
  w.writeSysctl('net.mptcp.pm_type', '0');
  k.failDelete = true;
  await t.rejects(led.undo(), { code: 'DC_KERNEL_RESTORE' });
  t.equal(k.sysctl.get('net.mptcp.pm_type'), '1', 'the sysctl was restored all the same');
  t.same(store.ledgerList().map((r) => r.kind), ['endpoint'], 'only the failed row is left');
  t.equal(led.counts.failed, 1);
  k.failDelete = false;
  await led.undo();
  t.same(store.ledgerList(), []);
});

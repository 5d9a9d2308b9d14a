// The handover's order of work for a dying interface (src/services/proxy/handover.ts): every
// subflow within its prefixes is marked backup (MP_PRIO) first, then destroyed without waiting
// for the MP_PRIO's answer; a subflow the path manager does not know is still destroyed; a
// second trigger for the same interface while the first runs (the link event and the radio's
// path-down both come) does nothing twice.
import t from 'tap';
import { Handover } from '../../src/services/proxy/handover.js';
import { parsePrefix } from '../../src/core/net.js';
import type { ProxyEngine } from '../../src/services/proxy/engine.js';
import type { FourTuple } from '../../src/services/proxy/handover.js';

const victim = (n: number): { session: string; side: 'server'; local: { address: string; port: number }; remote: { address: string; port: number } } => ({
  session: `s${n}`,
  side: 'server',
  local: { address: '10.21.0.2', port: 40000 + n },
  remote: { address: '10.31.0.2', port: 8001 },
});

function rig(victims: ReturnType<typeof victim>[]): { h: Handover; log: string[] } {
  const log: string[] = [];
  const engine = { subflowsWithin: () => victims } as unknown as ProxyEngine;
  const h = new Handover({
    engine,
    prefixesOf: (i) => (i === 'wwan0' ? [parsePrefix('10.21.0.0/24')!] : []),
    destroy: async (v: FourTuple) => {
      await new Promise((r) => setTimeout(r, 5));
      log.push(`destroy ${v.local.port}`);
    },
  });
  return { h, log };
}

t.test('backup (MP_PRIO) before destroy, for every subflow on the interface', async (t) => {
  const { h, log } = rig([victim(1), victim(2)]);
  h.useBackup(async (v) => {
    log.push(`backup ${v.local.port}`);
    if (v.local.port === 40002) throw new Error('no tracked MPTCP subflow');
  });
  t.equal(await h.linkDown('wwan0'), 2);
  for (const p of [40001, 40002]) t.ok(log.indexOf(`backup ${p}`) >= 0 && log.indexOf(`backup ${p}`) < log.indexOf(`destroy ${p}`), `${p}: backup asked, then destroy`);
  t.equal(h.backedUp, 1, 'one MP_PRIO done (the other subflow was unknown to the PM)');
  t.equal(h.aborted, 2, 'both destroyed anyway');
});

t.test('the destroy does not wait for the MP_PRIO answer; a backup that throws at once is no obstacle', async (t) => {
  const { h, log } = rig([victim(5), victim(6)]);
  h.useBackup((v) => {
    log.push(`backup ${v.local.port}`);
    if (v.local.port === 40006) throw new Error('thrown before any promise');
    // the kernel's answer comes late (a loaded event loop)
    return new Promise((r) => setTimeout(() => {
      log.push(`answer ${v.local.port}`);
      r();
    }, 200));
  });
  t.equal(await h.linkDown('wwan0'), 2);
  t.ok(log.indexOf('backup 40005') < log.indexOf('destroy 40005'), 'backup asked first');
  t.ok(log.indexOf('destroy 40005') < log.indexOf('answer 40005'), `destroyed before the MP_PRIO answer came (${log.join(', ')})`);
  t.equal(h.backedUp, 1, 'the late answer still counts once it comes');
  t.equal(h.aborted, 2, 'the subflow whose backup threw is destroyed too');
});

t.test('without a path manager that can: destroy only', async (t) => {
  const { h, log } = rig([victim(3)]);
  t.equal(await h.linkDown('wwan0'), 1);
  t.same(log, ['destroy 40003']);
  t.equal(h.backedUp, 0);
});

t.test('the link event and the path-down at once: the subflows are handled once', async (t) => {
  const { h, log } = rig([victim(4)]);
  const [a, b] = await Promise.all([h.linkDown('wwan0'), h.linkDown('wwan0')]);
  t.same([a, b].sort(), [0, 1], 'the second trigger found the first at work');
  t.same(log, ['destroy 40004']);
  t.equal(await h.linkDown('wlan0'), 0, 'an interface without prefixes has nothing to abort');
});

t.test('two interfaces at once: each aborts its own subflows, every one marked backup', async (t) => {
  const victims: Record<string, ReturnType<typeof victim>[]> = { wwan0: [victim(7)], wlan0: [victim(8), victim(9)] };
  const engine = { subflowsWithin: (p: unknown[]) => victims[(p[0] as { text: string }).text === '10.21.0.0/24' ? 'wwan0' : 'wlan0'] } as unknown as ProxyEngine;
  const h = new Handover({
    engine,
    prefixesOf: (i) => [parsePrefix(i === 'wwan0' ? '10.21.0.0/24' : '10.22.0.0/24')!],
    destroy: async () => undefined,
    backup: (v) => new Promise((r) => setTimeout(r, v.local.port === 40007 ? 50 : 5)),
  });
  const seen: number[] = [];
  const [a, b] = await Promise.all([h.linkDown('wwan0'), h.linkDown('wlan0')]);
  seen.push(a, b);
  t.same(seen, [1, 2], 'one subflow on wwan0, two on wlan0');
  t.equal(h.backedUp, 3, 'all three marked backup');
});

t.test('REMOVE_ADDR: planned before the destroy, every one sent ahead of it; a refusal is no obstacle', async (t) => {
  const { h, log } = rig([victim(10), victim(11)]);
  let plannedWith = -1;
  h.useWithdrawal({
    plan: (vs) => {
      plannedWith = vs.length;
      log.push('plan');
      return { withdraw: [{ token: 7, locId: 2 }, { token: 8, locId: 0 }], shared: ['9:0'] };
    },
    remove: async (token, locId) => {
      log.push(`remove ${token}:${locId}`);
      if (token === 8) throw new Error('EINVAL');
    },
  });
  t.equal(await h.linkDown('wwan0'), 2);
  t.equal(plannedWith, 2, 'the plan saw both victims');
  t.equal(log[0], 'plan', 'planned first, while the subflows were still established');
  const firstDestroy = Math.min(log.indexOf('destroy 40010'), log.indexOf('destroy 40011'));
  t.ok(log.indexOf('remove 7:2') > 0 && log.indexOf('remove 7:2') < firstDestroy, `the join's id before any destroy (${log.join(', ')})`);
  t.ok(log.indexOf('remove 8:0') > 0 && log.indexOf('remove 8:0') < firstDestroy, 'id 0 too, before any destroy');
  t.equal(h.withdrawn, 1, 'one accepted, one refused');
  t.equal(h.aborted, 2);
});

t.test('REMOVE_ADDR: a plan that throws does not stop the destroy', async (t) => {
  const { h, log } = rig([victim(12)]);
  h.useWithdrawal({ plan: () => { throw new Error('boom'); }, remove: async () => { log.push('remove'); } });
  t.equal(await h.linkDown('wwan0'), 1);
  t.same(log, ['destroy 40012']);
  t.equal(h.withdrawn, 0);
});

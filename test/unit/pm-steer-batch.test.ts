// The steering controller reconciles the connections of the pm service's subflow events once per
// event-loop turn (a netlink read carries up to 32 events): a batch of events has the same outcome
// as the same events one by one (the same SET_FLAGS, the same failovers), with one look at every
// connection per batch instead of one per event.
import t from 'tap';
import { SteeringController, type PmConnectionView, type SteerPolicy } from '../../src/services/pm/index.js';
import { CELL, FakeBackend, FakeSessions, WLAN, session, sf } from '../helpers/steer-fakes.js';

class CountingSessions extends FakeSessions {
  looks = 0;
  override sessions(): PmConnectionView[] {
    this.looks++;
    return super.sessions();
  }
}

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));
const N = 12;

/** Every connection: a cellular subflow, then a WLAN one joins; then half of the WLAN subflows close. */
async function scenario(batch: boolean, policy: (s: PmConnectionView) => SteerPolicy): Promise<{ calls: string[]; failovers: number; looks: number; placements: string[] }> {
  const ss = new CountingSessions();
  const be = new FakeBackend();
  const c = new SteeringController({ sessions: ss, backend: be, policy, intervalMs: 3_600_000 });
  const placements: string[] = [];
  c.on('placement', (p) => placements.push(`${p.token}:${p.placement}`));
  c.start();
  await flush();
  ss.looks = 0;
  const step = async (change: () => void): Promise<void> => {
    change();
    if (!batch) await flush();
  };
  for (let k = 1; k <= N; k++) {
    await step(() => {
      ss.list = [...ss.list, session(k, [sf(k, CELL, 1000 + k)])];
      ss.emit('subflow', { type: 'opened', subflow: sf(k, CELL, 1000 + k) });
    });
    await step(() => {
      ss.list = ss.list.map((s) => (s.token === k ? session(k, [sf(k, CELL, 1000 + k), sf(k, WLAN, 2000 + k)]) : s));
      ss.emit('subflow', { type: 'opened', subflow: sf(k, WLAN, 2000 + k) });
    });
  }
  await flush();
  await flush();
  for (let k = 1; k <= N / 2; k++) {
    await step(() => {
      ss.list = ss.list.map((s) => (s.token === k ? session(k, [sf(k, CELL, 1000 + k), sf(k, WLAN, 2000 + k, 'closed')]) : s));
      ss.emit('subflow', { type: 'closed', subflow: sf(k, WLAN, 2000 + k, 'closed') });
    });
  }
  await flush();
  await flush();
  c.stop();
  return { calls: [...be.calls].sort(), failovers: c.stats().failovers, looks: ss.looks, placements: placements.sort() };
}

t.test('active-standby: a batch of subflow events has the outcome of the same events one by one', async (t) => {
  const policy = (): SteerPolicy => ({ mode: 'active-standby', ratio: { cellular: 50, wlan: 50 }, preferred: 'wlan' });
  const one = await scenario(false, policy);
  const all = await scenario(true, policy);
  t.equal(one.calls.filter((x) => x.endsWith('backup')).length, N, 'one by one: every standby subflow flagged backup');
  t.equal(one.calls.filter((x) => x.endsWith(' -')).length, N / 2, 'and cleared where the active one closed');
  t.equal(one.failovers, N / 2, 'one failover per connection whose active subflow closed');
  t.same(all.calls, one.calls, 'batched: the same SET_FLAGS');
  t.equal(all.failovers, one.failovers, 'batched: the same failovers');
  t.equal(one.looks, 2 * N + N / 2, 'one by one: every connection looked at once per event');
  t.equal(all.looks, 2, 'batched: once per batch');
});

t.test('ratio: the same placements and flags batched as one by one', async (t) => {
  const policy = (): SteerPolicy => ({ mode: 'ratio', ratio: { cellular: 30, wlan: 70 }, group: 'alice' });
  const one = await scenario(false, policy);
  const all = await scenario(true, policy);
  t.equal(one.placements.length, N, `every connection placed: ${one.placements.join(' ')}`);
  t.same(all.calls, one.calls);
  t.same(all.placements, one.placements);
  t.equal(all.failovers, one.failovers);
});

t.test('events for connections the pm no longer follows are dropped; stop() cancels a pending batch', async (t) => {
  const ss = new CountingSessions();
  const be = new FakeBackend();
  const c = new SteeringController({ sessions: ss, backend: be, policy: () => ({ mode: 'active-standby', ratio: { cellular: 50, wlan: 50 } }), intervalMs: 3_600_000 });
  c.start();
  await flush();
  ss.emit('subflow', { type: 'opened', subflow: sf(9, WLAN, 2009) }); // never in the list
  await flush();
  t.same(be.calls, []);
  ss.list = [session(10, [sf(10, CELL, 1010), sf(10, WLAN, 2010)])];
  ss.emit('subflow', { type: 'opened', subflow: sf(10, WLAN, 2010) });
  c.stop();
  await flush();
  await flush();
  t.same(be.calls, [], 'stopped before the batch ran: nothing sent');
});

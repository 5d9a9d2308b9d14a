// services/pm/withdraw.ts: which local address ids a dying path may withdraw (REMOVE_ADDR). An id
// that a surviving subflow of the same connection shares is kept (the peer would close the
// survivor too): the M-UE side, where every join lands on the cell's one service address (id 0).
import t from 'tap';
import { planWithdrawals } from '../../src/services/pm/withdraw.js';
import type { PmConnectionView, SubflowView } from '../../src/services/pm/types.js';

const sf = (token: number, saddr: string, sport: number, locId: number, state: 'established' | 'closed' = 'established'): SubflowView => ({
  token, saddr, sport, daddr: '10.31.0.2', dport: 8001, locId, remId: 0, access: 'unknown', backup: false, state, since: '',
});
const conn = (token: number, subflows: SubflowView[]): PmConnectionView => ({
  token, family: 4, saddr: subflows[0]!.saddr, daddr: '10.31.0.2', sport: subflows[0]!.sport, dport: 8001, serverSide: false, denyJoinInitial: false,
  state: 'established', since: '', subflows, announced: {}, announcedPorts: {},
});

t.test('the box\'s own connection: each join its own id, withdrawn before the destroy', async (t) => {
  const initial = sf(1, '10.21.0.2', 40000, 0);
  const join = sf(1, '10.22.0.2', 40001, 3);
  const sessions = new Map([[1, conn(1, [initial, join])]]);
  t.same(planWithdrawals([join], (k) => sessions.get(k)).withdraw, [{ token: 1, locId: 3 }], 'the join\'s path: its id');
  const p0 = planWithdrawals([initial], (k) => sessions.get(k));
  t.same(p0.withdraw, [{ token: 1, locId: 0 }], 'the initial path: id 0 too (the kernel sends it on a subflow without that id)');
  t.same(p0.shared, []);
  const mapped = conn(1, [{ ...initial, saddr: '::ffff:10.21.0.2' }, join]);
  t.same(planWithdrawals([join], () => ({ ...mapped, saddr: '10.21.0.2' })).withdraw, [{ token: 1, locId: 3 }], 'the initial subflow found whatever the address spelling');
});

t.test('the M-UE side: every subflow on the service address (id 0) → nothing withdrawn', async (t) => {
  const a = sf(2, '10.71.0.1', 9000, 0);
  const b = { ...sf(2, '10.71.0.1', 9000, 0), daddr: '10.71.2.2', dport: 34695 };
  const p = planWithdrawals([b], (k) => (k === 2 ? conn(2, [a, b]) : undefined));
  t.same(p.withdraw, []);
  t.same(p.shared, ['2:0']);
});

t.test('no survivor, an unknown connection, closed subflows: nothing withdrawn', async (t) => {
  const only = sf(3, '10.21.0.2', 40000, 0);
  const gone = sf(3, '10.22.0.2', 40001, 2, 'closed');
  t.same(planWithdrawals([only], () => conn(3, [only, gone])).withdraw, [], 'a closed subflow is no survivor');
  t.same(planWithdrawals([only], () => undefined).withdraw, []);
});

t.test('two victims of one connection with one id: withdrawn once; two connections apart', async (t) => {
  const v1 = sf(4, '10.22.0.2', 40001, 2);
  const v2 = sf(4, '10.22.0.2', 40002, 2);
  const s = sf(4, '10.21.0.2', 40000, 0);
  const w1 = sf(5, '10.22.0.2', 40003, 1);
  const w0 = sf(5, '10.21.0.2', 40004, 0);
  const sessions = new Map([[4, conn(4, [s, v1, v2])], [5, conn(5, [w0, w1])]]);
  t.same(planWithdrawals([v1, v2, w1], (k) => sessions.get(k)).withdraw, [{ token: 4, locId: 2 }, { token: 5, locId: 1 }]);
});

t.test('a join dies while the initial subflow is gone too: withdrawn (another join carries it)', async (t) => {
  const init = sf(6, '10.21.0.2', 40000, 0, 'closed');
  const j1 = sf(6, '10.22.0.2', 40001, 2);
  const j2 = sf(6, '10.23.0.2', 40002, 3);
  const p = planWithdrawals([j1], () => conn(6, [init, j1, j2]));
  t.same(p.withdraw, [{ token: 6, locId: 2 }]);
});

t.test('the M-UE side with per-radio addresses: each radio its own id, the initial one 0', async (t) => {
  const init = { ...sf(7, '::ffff:a47:1', 9000, 0), daddr: '::ffff:a47:102', dport: 40000 };
  const wlan = { ...sf(7, '::ffff:a47:201', 9000, 2), daddr: '::ffff:a47:202', dport: 40001 };
  const c = { ...conn(7, [init, wlan]), serverSide: true };
  t.same(planWithdrawals([wlan], () => c, { announced: true }).withdraw, [{ token: 7, locId: 2 }], 'the WLAN radio\'s id (the cell announced it)');
  t.same(planWithdrawals([init], () => c).withdraw, [{ token: 7, locId: 0 }], 'the initial radio: id 0, which no survivor has');
});

t.test('the M-UE side with DNATed joins (own ids, never announced): only id 0 is ever withdrawn', async (t) => {
  const init = { ...sf(7, '10.71.0.1', 9000, 0), daddr: '10.71.1.2', dport: 34000 };
  const join = { ...sf(7, '10.71.2.1', 9000, 1), daddr: '10.71.2.2', dport: 34001 };
  const s = { ...conn(7, [init, join]), serverSide: true };
  const p0 = planWithdrawals([init], () => s);
  t.same(p0.withdraw, [{ token: 7, locId: 0 }], 'the initial path: id 0');
  const p1 = planWithdrawals([join], () => s);
  t.same(p1.withdraw, [], 'the join\'s path: its id is not withdrawn (the M-UE kernel\'s WARN_ON_ONCE)');
  t.same(p1.unannounced, ['7:1']);
  t.same(planWithdrawals([join], () => s, { announced: true }).withdraw, [{ token: 7, locId: 1 }], 'the cell announced it (mueRadioAddresses): withdrawn');
});

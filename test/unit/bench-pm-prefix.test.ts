// The pm group's namespaces follow BENCH_NS_PREFIX (bench/pm.ts): with fixed names, a second run
// of the group beside the first (another engineer's) deletes the first's namespaces on start and
// sets its wlan0 down in pm-failover, which the first run's paths service reports as
// "path wifi down" in the middle of its ratio runs.
import t from 'tap';
import { pmPrefixes } from '../../bench/pm.js';

t.test('pm bench namespaces: the default names, or all under BENCH_NS_PREFIX', async (t) => {
  t.same(pmPrefixes({}), { ideal: 'bpmi', realistic: 'bpmr', enforce: 'bpr', pathDown: 'bpk' }, 'unchanged without the variable');
  const mine = Object.values(pmPrefixes({ BENCH_NS_PREFIX: 'td' }));
  t.ok(mine.every((p) => p.startsWith('td')), mine.join(' '));
  t.equal(new Set(mine).size, 4, 'one prefix per topology');
  const other = new Set(Object.values(pmPrefixes({ BENCH_NS_PREFIX: 'qf' })));
  t.ok(mine.every((p) => !other.has(p)), 'two runs with different prefixes share no namespace');
});

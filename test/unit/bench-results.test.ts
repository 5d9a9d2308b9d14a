import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { assemble, checkEntries, readGroupFiles, stampEntries, staleReason, type Entry } from '../../bench/results.js';
import { failure, fromRuns, result } from '../../bench/lib.js';

const STAMP = { commit: 'abc1234', date: '2026-12-06T18:00:00.000Z', kernel: '6.18.0' };

t.test('stamping: every entry gets commit, date, kernel, links, pm, runs and a spread', async (t) => {
  const [a, b, c] = stampEntries(
    'netns',
    [
      fromRuns('aggregate', 'Mbit/s', [1, 2, 3, 4, 5], [2, 2, 2, 2, 2], 'k', { links: 'realistic', pm: 'userspace' }),
      result('ota-apply', 's', 0.3, 0.05, 'insert'),
      failure('handover', 'ms', 'k', 'stalled', { runs: 5 }),
    ],
    STAMP,
    { links: 'n/a', pm: 'n/a' },
  );
  t.match(a, { group: 'netns', commit: 'abc1234', date: STAMP.date, kernel: '6.18.0', links: 'realistic', pm: 'userspace', runs: 5, min: 1, max: 5, value: 3 });
  t.match(b, { links: 'n/a', pm: 'n/a', runs: 1, min: 0.3, max: 0.3 }, 'a single-shot figure: one run, min = max = value');
  t.match(c, { runs: 5, error: 'stalled' });
  t.equal(c!.value, undefined);
  t.same(checkEntries([a, b, c], 'x'), [a, b, c]);
});

t.test('stale: measured before code that can change the figure', async (t) => {
  const none = (): string[] => [];
  t.equal(staleReason('abc1234', 'abc1234', none), undefined, 'at HEAD');
  t.equal(staleReason('abc1234-dirty', 'abc1234', none), undefined);
  t.equal(staleReason('0000001', 'abc1234', none), undefined, 'only results/docs changed since');
  t.match(staleReason('0000001', 'abc1234', () => ['src/a.ts', 'src/b.ts', 'bench/c.ts', 'native/d.c']), /4 file\(s\) .* from 0000001 to abc1234 \(src\/a.ts, src\/b.ts, bench\/c.ts, …\)/);
  t.match(staleReason('deadbee', 'abc1234', () => undefined), /not in this repository/);
  t.match(staleReason('unknown', 'abc1234', none), /unknown commit/);
});

t.test('assemble: groups in order, each entry its own stamp, stale marked (and cleared)', async (t) => {
  const e = (group: string, name: string, commit: string, extra: Partial<Entry> = {}): Entry => ({
    name, unit: 'u', value: 1, baselineName: 'b', group, commit, date: STAMP.date, kernel: 'k', links: 'ideal', pm: 'n/a', runs: 1, ...extra,
  });
  const groups = new Map<string, Entry[]>([
    ['zeta', [e('zeta', 'z', 'old')]],
    ['pm', [e('pm', 'p', 'new', { stale: true, staleReason: 'was stale' })]],
    ['netns', [e('netns', 'n1', 'old'), e('netns', 'n2', 'old')]],
  ]);
  const out = assemble(groups, ['netns', 'pm'], (c) => (c === 'old' ? 'src changed' : undefined));
  t.same(out.map((x) => x.name), ['n1', 'n2', 'p', 'z'], 'registered order, then the rest');
  t.same(out.map((x) => x.stale), [true, true, undefined, true]);
  t.equal(out[0]!.staleReason, 'src changed');
  t.equal(out[2]!.staleReason, undefined, 'an old stale mark does not survive a current commit');
  t.equal(out[0]!.commit, 'old', 'each entry keeps its own stamp');
});

t.test('group files: bad ones are refused with a code', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-results-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const good = stampEntries('g', [result('a', 'u', 1, 1, 'b')], STAMP, { links: 'ideal', pm: 'n/a' });
  fs.writeFileSync(path.join(dir, 'g.json'), JSON.stringify(good));
  fs.writeFileSync(path.join(dir, 'latest.json'), '[]');
  t.same([...readGroupFiles(dir).keys()], ['g'], 'latest.json is not a group');
  fs.writeFileSync(path.join(dir, 'h.json'), '{"not":"an array"}');
  t.throws(() => readGroupFiles(dir), { code: 'DC_CONFIG_INVALID', message: /h.json: not a JSON array/ });
  fs.writeFileSync(path.join(dir, 'h.json'), '[{"name":"x"');
  t.throws(() => readGroupFiles(dir), { code: 'DC_CONFIG_INVALID' });
  t.throws(() => checkEntries([{ ...good[0], commit: undefined }], 'f'), { message: /f\[0\]: needs commit/ });
  t.throws(() => checkEntries([{ ...good[0], value: undefined }], 'f'), { message: /neither value nor error/ });
  t.throws(() => checkEntries([{ ...good[0], error: 'x' }], 'f'), { message: /both value and error/ });
});

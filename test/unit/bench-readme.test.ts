import t from 'tap';
import fs from 'node:fs';
import { BEGIN, END, currentBlock, fmt, readLatest, README, renderTable, replaceBlock } from '../../bench/readme.js';
import type { Entry } from '../../bench/results.js';

t.test("README.md's figures are the ones bench/results/latest.json generates", async (t) => {
  const text = fs.readFileSync(README, 'utf8');
  const want = renderTable(readLatest());
  // On failure: `node dist/bench/readme.js` (after `npm run build`) rewrites the block.
  t.equal(currentBlock(text), want, 'README.md figures table differs from bench/results/latest.json');
});

const base = { unit: 'Mbit/s', baselineName: 'kernel-only', group: 'netns', commit: 'abc1234', date: '2026-12-06T18:00:00Z', kernel: '6.18', pm: 'userspace' };

t.test('the table: realistic rows with ideal beside, failures and stale entries said', async (t) => {
  const entries: Entry[] = [
    { ...base, name: 'aggregate', links: 'realistic', value: 30.5, baseline: 31, ratio: 0.984, runs: 5, min: 29, max: 32, baselineRuns: 5, baselineMin: 30, baselineMax: 33, target: 'ratio >= 0.97', met: true },
    { ...base, name: 'aggregate', links: 'ideal', value: 47, baseline: 46.5, ratio: 1.011, runs: 5 },
    { ...base, name: 'handover', links: 'realistic', unit: 'ms', runs: 5, error: 'duocell run 2: receiver got 1 of 2 bytes', target: '<= 300 ms' },
    { ...base, name: 'setup', links: 'loopback', unit: 'conn/s', value: 2827.18, baseline: 10421.6, ratio: 0.271, runs: 5, min: 2500, max: 3000, target: '>= 5000 conn/s', met: false, stale: true, staleReason: 'src changed' },
  ];
  const md = renderTable(entries);
  const rows = md.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| benchmark'));
  t.equal(rows.length, 3, 'the ideal aggregate sits beside the realistic one, not on its own row');
  t.match(rows[0], /\| aggregate \| realistic \| 30.5 Mbit\/s \(29.0–32.0, 5 runs\) \| 31.0 \(30.0–33.0\) kernel-only \| 0.98 \| ratio >= 0.97 \| yes \| 47.0 \/ 46.5 \(1.01\) \|/);
  t.match(rows[1], /\*\*failed\*\*: duocell run 2: receiver got 1 of 2 bytes \| — \| — \| <= 300 ms \| no figure/);
  t.match(rows[2], /2,827 conn\/s .* \*\*no\*\* .* \*\*stale\*\*/);
  t.match(md, /4 entries; 1 stale/);
});

t.test('block replacement keeps the rest of the README, refuses a README without markers', async (t) => {
  const text = `intro\n${BEGIN}\nold table\n${END}\noutro\n`;
  const next = replaceBlock(text, 'new table');
  t.equal(next, `intro\n${BEGIN}\nnew table\n${END}\noutro\n`);
  t.equal(currentBlock(next), 'new table');
  t.equal(replaceBlock(next, 'new table'), next, 'idempotent');
  t.throws(() => replaceBlock('no markers', 'x'), { code: 'DC_CONFIG_INVALID' });
  t.throws(() => currentBlock(`${END}\n${BEGIN}`), { code: 'DC_CONFIG_INVALID' });
});

t.test('number format', async (t) => {
  t.equal(fmt(10421.58), '10,422');
  t.equal(fmt(46.609), '46.6');
  t.equal(fmt(3.294), '3.29');
  t.equal(fmt(0.0644), '0.064');
  t.equal(fmt(-1.5), '−1.50');
  t.equal(fmt(0), '0');
  t.equal(fmt(undefined), '—');
  t.equal(fmt(NaN), '—');
});

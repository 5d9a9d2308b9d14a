import t from 'tap';
import { killRounds } from './ota-kill-harness.js';

// A few rounds in CI; `node --import ./scripts/ts-loader.mjs bench/ota.ts --soak 100` runs the full count.
const ROUNDS = Number(process.env.DUOCELL_KILL_ROUNDS ?? 10);

t.test(`kill -9 during the apply of a 10,000-subscriber bundle, ${ROUNDS} rounds: exactly old or new`, async (t) => {
  const rep = await killRounds(ROUNDS, { seed: Number(process.env.DUOCELL_KILL_SEED ?? 11) });
  t.comment(`clean apply of 10,000 subscribers in the child: ${rep.applyMs.toFixed(0)} ms`);
  for (const [i, r] of rep.rounds.entries()) {
    t.ok(r.ok, `round ${i}: killed=${r.killed} after ${r.delayMs} ms → v${r.version}${r.problems.length ? ': ' + r.problems.join('; ') : ''}`);
  }
  const versions = new Set(rep.rounds.map((r) => r.version));
  t.comment(`versions seen after kill: ${[...versions].sort().join(', ')}`);
  t.equal(rep.rounds.length, ROUNDS);
});

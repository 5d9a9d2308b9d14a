import t from 'tap';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Fresh-machine truth: every tool the tests run comes from a Debian 12 package that
 * scripts/setup.sh installs by name, and nothing depends on a tool Debian 12 does not ship
 * (bookworm's mptcpd 0.12 has no `mptcpize`; duocell's own peer, src/sim/peer.ts, replaces it).
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const setup = fs.readFileSync(path.join(root, 'scripts/setup.sh'), 'utf8');
const wanted = [...setup.matchAll(/^want (\S+) (\S+)/gm)].map((m) => ({ cmd: m[1]!, pkg: m[2]! }));

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'fixtures' ? [] : sources(p);
    return /\.(ts|sh|py)$/.test(e.name) ? [p] : [];
  });
}

t.test('setup.sh names a Debian package for every tool it wants', async (t) => {
  t.ok(wanted.length >= 10, `${wanted.length} tools listed`);
  for (const w of wanted) t.match(w.pkg, /^[a-z0-9][a-z0-9+.-]+$/, `${w.cmd} → package ${w.pkg}`);
});

t.test('no test, benchmark or source runs a tool that Debian 12 does not ship', async (t) => {
  const notInBookworm = ['mptcpize'];
  for (const f of [...sources(path.join(root, 'test')), ...sources(path.join(root, 'bench')), ...sources(path.join(root, 'src')), path.join(root, 'scripts/setup.sh')]) {
    if (f === fileURLToPath(import.meta.url)) continue;
    const text = fs.readFileSync(f, 'utf8');
    for (const tool of notInBookworm) t.notOk(new RegExp(`['"\\s]${tool}['"\\s]`).test(text), `${path.relative(root, f)} does not run ${tool}`);
  }
});

t.test('in CI every tool setup.sh installs is really there (a missing one fails, never skips)', { skip: process.env.CI === 'true' ? false : 'only in CI (CI=true), after setup.sh ran' }, async (t) => {
  for (const w of wanted) {
    const r = spawnSync('sh', ['-c', `command -v ${w.cmd}`], { encoding: 'utf8' });
    t.equal(r.status, 0, `${w.cmd} (Debian package ${w.pkg}) is installed`);
  }
});

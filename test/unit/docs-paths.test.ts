// docs/architecture.md and the README's "What runs where" table name folders and files of the
// code: every one of them must exist, so that a rename that forgets the docs fails here.
import { existsSync, readFileSync } from 'node:fs';
import t from 'tap';

const ROOTS = /^(src|native|board|systemd|image|openwrt|test|docs|bench|scripts)\//;

/** Backticked repository paths in a piece of Markdown (globs and placeholders left out). */
function pathsIn(md: string): string[] {
  const out = new Set<string>();
  for (const m of md.matchAll(/`([^`\s]+)`/g)) {
    const p = m[1]!;
    if (ROOTS.test(p) && !/[*{}<>]|NAME/.test(p)) out.add(p);
  }
  return [...out];
}

t.test('every path docs/architecture.md names exists', async (t) => {
  const paths = pathsIn(readFileSync('docs/architecture.md', 'utf8'));
  t.ok(paths.length >= 15, `${paths.length} paths named`);
  t.same(paths.filter((p) => !existsSync(p)), [], 'none missing');
});

t.test("every path in the README's table exists", async (t) => {
  const readme = readFileSync('README.md', 'utf8');
  const start = readme.indexOf('| Piece |');
  t.not(start, -1, 'the README has its table');
  const table = readme.slice(start, readme.indexOf('\n\n', start));
  const paths = pathsIn(table);
  t.ok(paths.length >= 15, `${paths.length} paths named`);
  t.same(paths.filter((p) => !existsSync(p)), [], 'none missing');
});

t.test('a missing path is found (the check can fail)', async (t) => {
  t.same(pathsIn('see `src/no-such-folder/` and `src/web/ui/app.js`').filter((p) => !existsSync(p)), ['src/no-such-folder/']);
});

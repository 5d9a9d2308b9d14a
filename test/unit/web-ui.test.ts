// The page's modules (src/web/ui): type-checked by tsc (tsconfig.ui.json, JSDoc types over the
// API's own DTOs), every module small and checked, the import graph whole and layered (views
// import lib/ only, lib/ never a view), and every module the browser will ask for served by the
// box as JavaScript under the strict CSP. The browser tests (test/e2e/web-*.test.ts) run it.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { startServer } from './web-helpers.js';

const UI = path.resolve('src/web/ui');
const run = promisify(execFile);

function modules(dir = UI): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...modules(p));
    else if (e.name.endsWith('.js')) out.push(p);
  }
  return out.sort();
}

/** The static imports of a module (`import … from './x.js'`, `import './x.js'`), resolved. */
function importsOf(file: string): string[] {
  const src = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of src.matchAll(/^\s*(?:import|export)\s+(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/gm)) out.push(path.resolve(path.dirname(file), m[1]!));
  return out;
}

const rel = (p: string): string => path.relative(UI, p);

t.test('tsc checks the page: tsconfig.ui.json has no error', { timeout: 240_000 }, async (t) => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  // One run: the diagnostics and the files of the program. Not under coverage (the child is tsc).
  const env = { ...process.env };
  delete env.NODE_V8_COVERAGE;
  const r = await run(process.execPath, [tsc, '-p', 'tsconfig.ui.json', '--pretty', 'false', '--listFiles'], { maxBuffer: 8 << 20, env }).then(
    (x) => ({ code: 0, out: x.stdout + x.stderr }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` }),
  );
  const lines = r.out.split('\n').map((l) => l.trim()).filter(Boolean);
  t.same(lines.filter((l) => /error TS\d+/.test(l)), [], 'no diagnostics');
  t.equal(r.code, 0, 'tsc exits 0');
  const files = new Set(lines.filter((l) => !/error TS\d+/.test(l)).map((l) => path.resolve(l)));
  t.same(modules().filter((m) => !files.has(m)).map(rel), [], 'every module of the page is in the checked program');
  t.ok(files.has(path.resolve('src/web/deps.ts')), "the page's types are the API's DTOs (web/deps.ts)");
});

t.test('every module is checked (// @ts-check) and under 500 lines', async (t) => {
  const all = modules();
  t.ok(all.length >= 15, `one module per view and shared lib/ (${all.length} modules)`);
  for (const m of all) {
    const src = readFileSync(m, 'utf8');
    t.ok(src.startsWith('// @ts-check\n'), `${rel(m)} starts with // @ts-check`);
    t.ok(src.split('\n').length <= 500, `${rel(m)}: ${src.split('\n').length} lines`);
  }
});

t.test('the import graph is whole and layered', async (t) => {
  const seen = new Set<string>();
  const walk = (f: string): void => {
    if (seen.has(f)) return;
    seen.add(f);
    for (const i of importsOf(f)) {
      t.ok(existsSync(i), `${rel(f)} imports ${rel(i)}, which exists`);
      if (existsSync(i)) walk(i);
    }
  };
  walk(path.join(UI, 'app.js'));
  const views = modules(path.join(UI, 'views'));
  t.ok(views.length >= 10, `${views.length} view modules`);
  t.same(views.filter((v) => !seen.has(v)).map(rel), [], 'app.js reaches every view');
  for (const f of modules()) {
    const inViews = f.startsWith(path.join(UI, 'views') + path.sep);
    for (const i of importsOf(f)) {
      if (inViews) t.notOk(i.startsWith(path.join(UI, 'views') + path.sep), `${rel(f)} → ${rel(i)}: a view imports no other view`);
      if (f.startsWith(path.join(UI, 'lib') + path.sep)) t.notOk(i.startsWith(path.join(UI, 'views') + path.sep) || i === path.join(UI, 'app.js'), `${rel(f)} → ${rel(i)}: lib/ imports no view`);
    }
  }
  const html = readFileSync(path.join(UI, 'index.html'), 'utf8');
  t.notMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script in index.html');
  t.notMatch(html, /\son[a-z]+=/i, 'no inline event handlers');
});

t.test('the box serves every module the page loads, as JavaScript under the CSP', async (t) => {
  const h = await startServer();
  t.teardown(() => h.close());
  const c = h.client();
  const seen = new Set<string>();
  const walk = (f: string): void => {
    if (seen.has(f)) return;
    seen.add(f);
    for (const i of importsOf(f)) walk(i);
  };
  walk(path.join(UI, 'app.js'));
  t.ok(seen.size >= 15, `${seen.size} modules reached from app.js`);
  for (const f of seen) {
    const url = `/${rel(f).split(path.sep).join('/')}`;
    const r = await c.get(url);
    t.equal(r.status, 200, `GET ${url}`);
    t.match(r.headers.get('content-type'), /javascript/, `${url} is JavaScript`);
    t.match(r.headers.get('content-security-policy'), /script-src 'self'/, `${url} carries the CSP`);
    t.equal(r.text, readFileSync(f, 'utf8'), `${url} is the file as it is (no build step)`);
  }
  t.equal((await c.get('/views/no-such-view.js')).status, 404, 'an unknown module is a 404');
  t.equal((await c.get('/../deps.ts')).status, 404, 'nothing above the page folder');
});

// The shape DESIGN.md draws, checked on the source itself so it cannot drift:
// - imports point downward only (core < protocols < drivers < store < services < ota < web
//   < wiring/sim < main < cli);
// - protocols/ never imports a transport (node:net, node:dgram, node:fs, serialport, netlink);
// - services/ never imports a driver's code: its I/O arrives injected (type-only imports of an
//   interface are allowed);
// - no source file is over 500 lines.
import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src', import.meta.url));
const MAX_LINES = 500;

const RANK: Record<string, number> = {
  core: 0,
  protocols: 1,
  drivers: 2,
  store: 3,
  services: 4,
  ota: 5,
  web: 6,
  wiring: 7,
  sim: 7,
  'main.ts': 8,
  cli: 9,
};

const TRANSPORTS = /^(node:)?(net|dgram|fs|fs\/promises|child_process|tls|http)$|^serialport$|^netlink$|^better-sqlite3$/;

function files(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (/\.(ts|js)$/.test(name)) out.push(p);
  }
  return out;
}

function layerOf(rel: string): string {
  const top = rel.split('/')[0]!;
  return top === 'main.js' ? 'main.ts' : top;
}

interface Import {
  spec: string;
  typeOnly: boolean;
}

/** Static and dynamic imports and re-exports of one file. */
export function importsOf(text: string): Import[] {
  const out: Import[] = [];
  const re = /(?:^|\n)\s*(import|export)\s+(type\s+)?[^'";]*?from\s*'([^']+)'|import\(\s*'([^']+)'\s*\)|(?:^|\n)\s*import\s+'([^']+)'/g;
  for (const m of text.matchAll(re)) {
    const spec = m[3] ?? m[4] ?? m[5];
    if (spec) out.push({ spec, typeOnly: Boolean(m[2]) });
  }
  return out;
}

const all = files(SRC).map((p) => ({ path: p, rel: relative(SRC, p).split('\\').join('/'), text: readFileSync(p, 'utf8') }));

t.test('the import scanner sees what it must', async (t) => {
  const seen = importsOf("import type { A } from '../a.js';\nimport { B } from \"x\";\nexport { C } from '../c.js';\nconst d = await import('../d.js');\nimport '../e.js';\n");
  t.same(seen, [
    { spec: '../a.js', typeOnly: true },
    { spec: '../c.js', typeOnly: false },
    { spec: '../d.js', typeOnly: false },
    { spec: '../e.js', typeOnly: false },
  ]);
});

t.test('imports point downward only', async (t) => {
  const upward: string[] = [];
  let checked = 0;
  for (const f of all) {
    const from = layerOf(f.rel);
    if (!(from in RANK)) continue;
    for (const imp of importsOf(f.text)) {
      if (!imp.spec.startsWith('.')) continue;
      const target = normalize(join(dirname(f.rel), imp.spec)).split('\\').join('/');
      const to = layerOf(target);
      checked++;
      if (to in RANK && to !== from && RANK[to]! > RANK[from]!) upward.push(`${f.rel} → ${imp.spec}`);
    }
  }
  t.ok(checked > 300, `${checked} relative imports checked`);
  t.same(upward, [], 'no import runs upward');
});

t.test('protocols/ imports no transport', async (t) => {
  const bad: string[] = [];
  for (const f of all.filter((f) => f.rel.startsWith('protocols/'))) {
    for (const imp of importsOf(f.text)) if (TRANSPORTS.test(imp.spec)) bad.push(`${f.rel} → ${imp.spec}`);
  }
  t.same(bad, []);
});

t.test('services/ receive their I/O: no driver code is imported', async (t) => {
  const bad: string[] = [];
  for (const f of all.filter((f) => f.rel.startsWith('services/'))) {
    for (const imp of importsOf(f.text)) {
      if (imp.typeOnly) continue;
      if (TRANSPORTS.test(imp.spec)) bad.push(`${f.rel} → ${imp.spec}`);
      if (!imp.spec.startsWith('.')) continue;
      const target = normalize(join(dirname(f.rel), imp.spec)).split('\\').join('/');
      if (target.startsWith('drivers/')) bad.push(`${f.rel} → ${imp.spec}`);
    }
  }
  t.same(bad, []);
});

t.test(`no source file is over ${MAX_LINES} lines`, async (t) => {
  const long = all
    .map((f) => ({ rel: f.rel, lines: f.text.split('\n').length - (f.text.endsWith('\n') ? 1 : 0) }))
    .filter((f) => f.lines > MAX_LINES)
    .map((f) => `${f.rel}: ${f.lines}`);
  t.ok(all.length > 100, `${all.length} files`);
  t.same(long, []);
});

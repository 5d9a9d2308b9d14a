// docs/web.md lists every route of the HTTP server, and nothing it does not serve: the API
// table is parsed and compared with the fastify route table (onRoute), so they cannot drift.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildWebApp } from '../../src/web/server.js';
import { createFakeDeps } from '../helpers/fake-deps.js';

const DOC = fileURLToPath(new URL('../../docs/web.md', import.meta.url));

/** `GET /a`, `GET/POST /b`, `GET/PUT/DELETE /c/:id` in the first column of the API table. */
function documentedRoutes(md: string): string[] {
  const start = md.indexOf('| route | who | what |');
  if (start === -1) throw new Error('docs/web.md has no API table');
  const out: string[] = [];
  for (const line of md.slice(start).split('\n').slice(2)) {
    if (!line.startsWith('|')) break;
    const first = line.split('|')[1] ?? '';
    for (const m of first.matchAll(/`([A-Z/]+) (\/[^`\s]*)`/g)) {
      for (const method of m[1]!.split('/')) out.push(`${method} ${m[2]}`);
    }
  }
  return out;
}

t.test('the documented routes are exactly the served ones', async (t) => {
  const deps = createFakeDeps({ tickMs: 0 });
  const w = await buildWebApp(deps, { auth: { scryptN: 1024 }, sampleMs: 60_000 });
  t.teardown(async () => {
    w.stop();
    await w.app.close();
  });
  // HEAD is added by fastify for every GET: not a route of its own.
  const served = [...new Set(w.routes.filter((r) => r.method !== 'HEAD').map((r) => `${r.method} ${r.url}`))].sort();
  const documented = [...new Set(documentedRoutes(readFileSync(DOC, 'utf8')))].sort();
  t.ok(served.length > 20, `${served.length} routes served`);
  t.same(served.filter((r) => !documented.includes(r)), [], 'every served route is in docs/web.md');
  t.same(documented.filter((r) => !served.includes(r)), [], 'every documented route is served');
});

t.test('the table parser reads combined cells', async (t) => {
  const md = '| route | who | what |\n|---|---|---|\n| `GET /a`, `GET/POST /b/:id` | x | y |\n| `DELETE /c` | x | y |\n\nafter\n| `GET /not-in-table` |';
  t.same(documentedRoutes(md), ['GET /a', 'GET /b/:id', 'POST /b/:id', 'DELETE /c']);
});

import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { main } from '../../src/cli/main.js';

/** `duocell proxies list|set|remove` against a store (no appliance running: the stored list). */

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-cli-proxies-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
const state = path.join(tmp, 'state');

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { io: { out: (l) => out.push(l), err: (l) => err.push(l) }, env: { DUOCELL_STATE_DIR: state } });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

t.test('set, list, remove; a bad list refused with its code and the old one kept', async (t) => {
  t.match((await run('proxies', '--help')).out, /usage: duocell proxies/);
  const file = path.join(tmp, 'list.json');
  fs.writeFileSync(file, JSON.stringify({ proxies: [
    { name: 'site-a', address: '192.0.2.10', port: 5124, protocol: 'convert', location: 'cdn-east', priority: 10, apps: [{ name: 'video', ports: [443], prefixes: ['198.51.100.0/24'] }] },
    { name: 'self', address: '127.0.0.1', port: 5124, protocol: 'convert', type: 'on-path' },
  ] }));
  const set = await run('proxies', 'set', file);
  t.equal(set.code, 0, set.err);
  t.match(set.out, /2 candidate proxies in force/);
  const list = await run('proxies', 'list', '--json');
  t.equal(list.code, 0, list.err);
  t.same((JSON.parse(list.out) as Array<{ name: string }>).map((p) => p.name).sort(), ['self', 'site-a']);
  const table = await run('proxies');
  t.match(table.out, /^NAME\s+TYPE\s+ENDPOINT/);
  t.match(table.out, /site-a\s+off-path\s+192\.0\.2\.10:5124\s+cdn-east/);
  fs.writeFileSync(file, JSON.stringify([{ name: 'x', address: '192.0.2.1', port: 1, protocol: 'convert' }, { name: 'x', address: '192.0.2.2', port: 1, protocol: 'convert' }]));
  const bad = await run('proxies', 'set', file, '--json');
  t.not(bad.code, 0);
  t.match(bad.err, /DC_STORE_INVALID/);
  t.equal((JSON.parse((await run('proxies', 'list', '--json')).out) as unknown[]).length, 2, 'the old list stays');
  t.equal((await run('proxies', 'remove', 'self')).code, 0);
  t.match((await run('proxies', 'remove', 'self')).err, /DC_STORE_NOT_FOUND/);
  t.equal((JSON.parse((await run('proxies', 'list', '--json')).out) as unknown[]).length, 1);
  t.match((await run('proxies', 'frob')).err, /DC_USAGE|usage/);
});

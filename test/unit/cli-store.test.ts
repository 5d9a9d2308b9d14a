import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import subscribersCmd from '../../src/cli/commands/subscribers.js';
import policyCmd from '../../src/cli/commands/policy.js';
import otaCmd from '../../src/cli/commands/ota.js';
import { BUNDLE_FORMAT } from '../../src/ota/index.js';
import { Store } from '../../src/store/index.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-cli-store-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

// the real main(), with the command list replaced by ours (until the lead registers them)
const { main } = (await t.mockImport('../../src/cli/main.js', {
  '../../src/cli/commands/index.js': { loadCommands: async () => [subscribersCmd, policyCmd, otaCmd] },
})) as typeof import('../../src/cli/main.js');

const state = path.join(tmp, 'state');
async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { io: { out: (l) => out.push(l), err: (l) => err.push(l) }, env: { DUOCELL_STATE_DIR: state } });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

t.test('--help everywhere', async (t) => {
  for (const c of ['subscribers', 'policy', 'ota']) {
    const r = await run(c, '--help');
    t.equal(r.code, 0);
    t.match(r.out, /^usage: duocell /);
    t.match(r.out, /exit codes/);
  }
  t.match((await run('ota', 'apply', '--help')).out, /ota apply BUNDLE/);
});

t.test('subscribers and policy', async (t) => {
  t.equal((await run('policy', 'set', 'gold', '--max-sessions', '2', '--ratio', '30:70', '--mode', 'ratio', '--networks', '10.0.0.0/8,2001:db8::/32')).code, 0);
  const add = await run('subscribers', 'add', 'alice', '--policy', 'gold', '--addr', '10.1.1.1,2001:db8::1', '--mac', '02:00:00:00:00:01');
  t.equal(add.code, 0, add.err);
  t.equal((await run('subscribers', 'add', 'bob')).code, 0);
  const list = await run('subscribers', 'list', '--json');
  t.equal(list.code, 0);
  const rows = JSON.parse(list.out) as Array<{ name: string; policy: string; addresses: string[] }>;
  t.same(rows.map((r) => [r.name, r.policy]), [['alice', 'gold'], ['bob', 'default']]);
  t.same(rows[0]!.addresses, ['10.1.1.1/32', '2001:db8::1/128']);
  t.match((await run('subscribers', 'list')).out, /^NAME\s+POLICY/);
  const show = await run('subscribers', 'show', 'alice', '--json');
  t.equal(JSON.parse(show.out).macs[0], '02:00:00:00:00:01');
  const eff = await run('policy', 'show', '--addr', '10.1.1.1', '--json');
  t.match(JSON.parse(eff.out), { subscriber: 'alice', policy: 'gold', maxSessionsPerUe: 2, ratio: { cellular: 30, wlan: 70 } });
  t.equal((await run('policy', 'set', 'gold', '--max-sessions', 'inherit')).code, 0);
  t.equal(JSON.parse((await run('policy', 'show', 'gold', '--json')).out).maxSessionsPerUe, undefined, 'inherit clears the field');
  const all = JSON.parse((await run('policy', 'show', '--json')).out);
  t.same(all.policies.map((p: { name: string }) => p.name), ['default', 'gold']);
  t.equal((await run('subscribers', 'set', 'alice', '--disable', '--policy', 'default')).code, 0);
  t.match(JSON.parse((await run('subscribers', 'show', 'alice', '--json')).out), { enabled: false, policy: 'default' });

  const pw = path.join(tmp, 'pw');
  fs.writeFileSync(pw, 'open sesame\n');
  t.equal((await run('subscribers', 'set', 'bob', '--password-file', pw)).code, 0);
  const s = await Store.open({ dir: state });
  t.ok(await s.verifySubscriberPassword('bob', 'open sesame'), 'password from the file, hashed');
  s.close();

  // failures: exit 1 with the code, usage errors exit 2
  const nf = await run('subscribers', 'show', 'nobody');
  t.equal(nf.code, 1);
  t.match(nf.err, /DC_STORE_NOT_FOUND/);
  const dup = await run('subscribers', 'add', 'bob', '--json');
  t.equal(dup.code, 1);
  t.equal(JSON.parse(dup.err).error.code, 'DC_STORE_CONSTRAINT');
  t.equal((await run('subscribers', 'add', 'x', '--addr', '999.1.1.1')).code, 1);
  t.equal((await run('subscribers', 'rm', 'bob')).code, 0);
  t.equal((await run('subscribers', 'rm', 'bob')).code, 1);
  t.equal((await run('policy', 'rm', 'gold')).code, 0);
  for (const argv of [
    ['subscribers'],
    ['subscribers', 'frob'],
    ['subscribers', 'add'],
    ['subscribers', 'add', 'a', 'b'],
    ['subscribers', 'add', 'a', '--bogus'],
    ['subscribers', 'add', 'a', '--policy'],
    ['subscribers', 'list', '--limit', 'many'],
    ['subscribers', 'set', 'a', '--enable', '--disable'],
    ['subscribers', 'add', 'a', '--password-file', path.join(tmp, 'missing')],
    ['policy', 'set', 'p'],
    ['policy', 'set', 'p', '--ratio', '3070'],
    ['policy', 'set', 'p', '--mode', 'fastest'],
    ['policy', 'set', 'p', '--max-subflows', '9'],
    ['policy', 'show', 'a', '--addr', '1.2.3.4'],
  ]) {
    t.equal((await run(...argv)).code, 2, `usage error: ${argv.join(' ')}`);
  }
  fs.writeFileSync(path.join(tmp, 'plain-file'), '');
  const bad = await main(['subscribers', 'list'], { io: { out: () => {}, err: () => {} }, env: { DUOCELL_STATE_DIR: path.join(tmp, 'plain-file', 'state') } });
  t.equal(bad, 69, 'state directory unavailable');
});

t.test('ota keygen, sign, verify, apply, status, rollback, keys', async (t) => {
  const key = path.join(tmp, 'op');
  const kg = await run('ota', 'keygen', '--out', key, '--json');
  t.equal(kg.code, 0, kg.err);
  const { keyId } = JSON.parse(kg.out) as { keyId: string };
  t.equal(fs.statSync(`${key}.key`).mode & 0o777, 0o600, 'private key readable by the owner only');
  t.equal((await run('ota', 'keygen', '--out', key)).code, 2, 'no silent overwrite');

  const doc = (version: number, names: string[]): string =>
    JSON.stringify({ format: BUNDLE_FORMAT, version, issuedAt: new Date(Date.now() - 1000).toISOString(), target: 'all', kind: 'full', policy: { policies: [], subscribers: names.map((name, i) => ({ name, addresses: [`10.9.0.${i + 1}`] })), nserverLimits: [], proxies: [] } });
  fs.writeFileSync(path.join(tmp, 'v1.json'), doc(1, ['a', 'b']));
  fs.writeFileSync(path.join(tmp, 'v2.json'), doc(2, ['c']));
  t.equal((await run('ota', 'sign', path.join(tmp, 'v1.json'), '--key', `${key}.key`, '--out', path.join(tmp, 'v1.bundle'))).code, 0);
  t.equal((await run('ota', 'sign', path.join(tmp, 'v2.json'), '--key', `${key}.key`, '--detached')).code, 0);
  t.ok(fs.existsSync(path.join(tmp, 'v2.json.sig')));
  fs.writeFileSync(path.join(tmp, 'bad.json'), '{"format":"x"}');
  t.equal((await run('ota', 'sign', path.join(tmp, 'bad.json'), '--key', `${key}.key`)).code, 1, 'refuses to sign an invalid document');

  const off = await run('ota', 'verify', path.join(tmp, 'v1.bundle'), '--offline', '--pub', `${key}.pub`, '--json');
  t.equal(off.code, 0, off.err);
  t.match(JSON.parse(off.out), { ok: true, version: 1, keyId, subscribers: 2 });

  const untrusted = await run('ota', 'apply', path.join(tmp, 'v1.bundle'));
  t.equal(untrusted.code, 1);
  t.match(untrusted.err, /DC_OTA_UNTRUSTED_KEY/);
  t.equal((await run('ota', 'keys', 'add', `${key}.pub`, '--comment', 'ops')).code, 0);
  t.match((await run('ota', 'keys', 'list')).out, new RegExp(keyId));
  const ap = await run('ota', 'apply', path.join(tmp, 'v1.bundle'), '--json');
  t.equal(ap.code, 0, ap.err);
  t.equal(JSON.parse(ap.out).version, 1);
  t.equal((await run('ota', 'apply', path.join(tmp, 'v1.bundle'))).code, 1, 'replay refused');
  t.equal((await run('ota', 'apply', path.join(tmp, 'v2.json'))).code, 1, 'bare document refused (unsigned)');
  t.equal((await run('ota', 'apply', path.join(tmp, 'v2.json'), '--sig', path.join(tmp, 'v2.json.sig'))).code, 0, 'document + detached signature');
  t.same(JSON.parse((await run('subscribers', 'list', '--json')).out).map((s: { name: string }) => s.name), ['c']);
  const st = JSON.parse((await run('ota', 'status', '--json')).out);
  t.match(st, { currentVersion: 2, previousVersion: 1, lastResult: 'applied' });
  t.equal((await run('ota', 'rollback')).code, 0);
  t.same(JSON.parse((await run('subscribers', 'list', '--json')).out).map((s: { name: string }) => s.name), ['a', 'b']);
  const rb2 = await run('ota', 'rollback');
  t.equal(rb2.code, 1);
  t.match(rb2.err, /DC_OTA_NO_PREVIOUS/);
  t.equal((await run('ota', 'config', '--cell-id', 'cell-9', '--url', 'https://example.invalid/b.json')).code, 0);
  t.match(JSON.parse((await run('ota', 'status', '--json')).out), { cellId: 'cell-9', url: 'https://example.invalid/b.json' });
  t.equal((await run('ota', 'config', '--url', 'file:///etc/shadow')).code, 1);
  t.equal((await run('ota', 'keys', 'rm', keyId)).code, 0);
  t.match(JSON.parse((await run('ota', 'schema')).out), { title: /bundle/ });
  for (const argv of [['ota'], ['ota', 'sign', 'x'], ['ota', 'keygen'], ['ota', 'verify'], ['ota', 'verify', 'x', '--offline'], ['ota', 'keys', 'rm', 'zz'], ['ota', 'apply', path.join(tmp, 'nope')]]) {
    t.equal((await run(...argv)).code, 2, `usage error: ${argv.join(' ')}`);
  }
});

// A pool member killed outright still withdraws its anycast address: while it may announce,
// duocell leaves the BIRD socket and protocol in its runtime directory, and the unit's
// ExecStopPost (run by systemd however the service ended) disables that protocol.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { withdrawMarker } from '../../src/wiring/anycast.js';

const UNIT = fileURLToPath(new URL('../../systemd/duocell.service', import.meta.url));

/** The ExecStopPost command line as /bin/sh gets it: systemd's `$$` is a literal `$`. */
function stopPostScript(): string {
  const line = readFileSync(UNIT, 'utf8').split('\n').find((l) => l.startsWith('ExecStopPost='));
  if (line === undefined) throw new Error('no ExecStopPost in duocell.service');
  const m = /^ExecStopPost=-\/bin\/sh -c '(.*)'$/.exec(line);
  if (m === null) throw new Error(`unexpected ExecStopPost: ${line}`);
  return m[1]!.replaceAll('$$', '$');
}

function world(t: { teardown(f: () => void): void }) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dc-anycast-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const run = path.join(dir, 'run');
  const bin = path.join(dir, 'bin');
  mkdirSync(run);
  mkdirSync(bin);
  const calls = path.join(dir, 'calls');
  writeFileSync(path.join(bin, 'birdc'), `#!/bin/sh\nprintf '%s\\n' "$@" > '${calls}'\n`);
  chmodSync(path.join(bin, 'birdc'), 0o755);
  const stopPost = () =>
    spawnSync('/bin/sh', ['-c', stopPostScript()], { env: { PATH: `${bin}:/usr/bin:/bin`, RUNTIME_DIRECTORY: run }, encoding: 'utf8' });
  return { run, calls, stopPost };
}

t.test('the marker names the socket and protocol, only under systemd, and goes on a clean stop', async (t) => {
  const w = world(t);
  t.equal(withdrawMarker('/run/bird/bird.ctl', 'pool_static', {}), undefined, 'no RUNTIME_DIRECTORY: no marker');
  const m = withdrawMarker('/run/bird/bird.ctl', 'pool_static', { RUNTIME_DIRECTORY: w.run });
  t.ok(m);
  t.equal(readFileSync(m!.path, 'utf8'), '/run/bird/bird.ctl\npool_static\n');
  m!.remove();
  t.notOk(existsSync(m!.path), 'removed');
});

t.test('ExecStopPost disables the protocol the marker names', async (t) => {
  const w = world(t);
  withdrawMarker('/run/bird/other.ctl', 'pool_v4', { RUNTIME_DIRECTORY: w.run });
  const r = w.stopPost();
  t.equal(r.status, 0, r.stderr);
  t.same(readFileSync(w.calls, 'utf8').trim().split('\n'), ['-s', '/run/bird/other.ctl', 'disable', 'pool_v4']);
});

t.test('ExecStopPost does nothing on a box that announces nothing', async (t) => {
  const w = world(t);
  const r = w.stopPost();
  t.equal(r.status, 0, r.stderr);
  t.notOk(existsSync(w.calls), 'birdc not called');
});

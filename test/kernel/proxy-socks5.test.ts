// SOCKS5-only candidates (issue 15): the cell reaches servers through SOCKS5 proxies, duocell's
// own SOCKS5 front (MPTCP) and danted from Debian's dante-server (plain TCP), in one namespace
// of its own (socks<pid>-box; needs root and MPTCP; runs in CI as root, where setup.sh installs
// dante-server). Bytes arrive intact (sha256 both ways), the session's server side is reported
// as MPTCP toward duocell's front and as plain TCP toward danted, and once the preferred
// candidate dies new sessions go to the next one without a client seeing a failure.
import t from 'tap';
import path from 'node:path';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { netnsUnavailable, Topology, type Host } from '../helpers/hosts.js';
import { startRole } from '../helpers/roles.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const DANTED = ['/usr/sbin/danted', '/usr/bin/danted'].find((p) => existsSync(p));
const reason = (await netnsUnavailable()) || (DANTED === undefined ? 'danted is not installed (Debian package dante-server; scripts/setup.sh installs it)' : false);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function listening(h: Host, addr: string): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    if ((await h.exec('ss', ['-ltnH'], { allowFail: true })).includes(addr)) return true;
    await sleep(50);
  }
  return false;
}

t.test('SOCKS5-only candidates: duocell front (MPTCP) and danted (plain TCP), failover', { skip: reason, timeout: 180_000 }, async (t) => {
  const topo = new Topology(`socks${process.pid}`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'duocell-socks-'));
  let danted: ChildProcess | undefined;
  t.teardown(async () => {
    // SIGTERM: danted's mother process ends its own children (SIGKILL would leave them).
    if (danted !== undefined && danted.exitCode === null && danted.signalCode === null) {
      const gone = new Promise((r) => danted!.once('exit', r));
      danted.kill('SIGTERM');
      await Promise.race([gone, sleep(3000)]);
    }
    await topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  const box = await topo.host('box');
  for (const a of ['10.77.0.1', '10.77.0.2', '10.77.0.3']) await box.ip('addr', 'add', `${a}/32`, 'dev', 'lo');

  const conf = path.join(dir, 'danted.conf');
  writeFileSync(
    conf,
    [
      'logoutput: stderr',
      'internal: 10.77.0.3 port = 1080',
      'external: 10.77.0.3',
      'socksmethod: none',
      'clientmethod: none',
      'user.privileged: root',
      'user.unprivileged: nobody',
      'client pass { from: 0.0.0.0/0 to: 0.0.0.0/0 }',
      'socks pass { from: 0.0.0.0/0 to: 10.77.0.1/32 command: connect }',
      '',
    ].join('\n'),
  );
  danted = box.spawn(DANTED!, ['-f', conf, '-N', '1', '-p', path.join(dir, 'danted.pid')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let dantedLog = '';
  danted.stderr!.on('data', (d: Buffer) => (dantedLog += d.toString()));
  t.ok(await listening(box, '10.77.0.3:1080'), `danted listens on 10.77.0.3:1080 ${dantedLog.slice(-500)}`);

  const out = startRole(box, path.join(here, 'proxy-socks5-child.ts'), 'cell'); // the child takes no arguments
  const code = await out.exited;
  const get = (k: string): Record<string, unknown> | undefined => out.lines.find((l) => l[k] !== undefined);
  t.equal(get('fatal'), undefined, `no fatal error ${JSON.stringify(get('fatal'))} ${out.stderr().slice(-2000)}`);
  t.equal(code, 0, 'the cell ran to the end');

  const probes = get('probes')?.probes as Array<{ name: string; healthy: boolean; rttMs?: number; lastError: string | null }>;
  for (const name of ['own', 'dante']) {
    const p = probes?.find((x) => x.name === name);
    t.ok(p?.healthy === true && typeof p.rttMs === 'number', `${name} answered its probe (greeting${name === 'own' ? ' + username/password' : ''}): ${JSON.stringify(p)}`);
  }
  t.comment(`probe RTTs (ms): ${probes?.map((p) => `${p.name} ${p.rttMs?.toFixed(3)}`).join(', ')}`);

  type S = { error: string | null; upIntact: boolean; downIntact: boolean; sentHash: string; proxy: string | null; serverMptcp: boolean | null; combination: string | null };
  const own = get('own')?.own as S[] | undefined;
  t.equal(own?.length, 3, 'three sessions while both candidates live');
  for (const [i, s] of (own ?? []).entries()) {
    t.same([s.error, s.upIntact, s.downIntact], [null, true, true], `own #${i}: 2 MiB each way intact (sha256 ${s.sentHash.slice(0, 12)}…)`);
    t.equal(s.proxy, 'own', `own #${i}: through the preferred candidate, duocell's SOCKS5 front`);
    t.equal(s.serverMptcp, true, `own #${i}: an M-session toward the front (MPTCP on the server side)`);
    t.equal(s.combination, 'N-M', `own #${i}: N-UE to M-session`);
  }
  const dead = get('dead') as { dead: S[]; refused: string[]; health: Array<{ name: string; healthy: boolean; sessionFailures: number; lastError: string | null }> } | undefined;
  t.equal(dead?.dead.length, 4, 'four sessions after the front died');
  for (const [i, s] of (dead?.dead ?? []).entries()) {
    t.same([s.error, s.upIntact, s.downIntact], [null, true, true], `after death #${i}: 2 MiB each way intact`);
    t.equal(s.proxy, 'dante', `after death #${i}: through the next candidate, danted`);
    t.equal(s.serverMptcp, false, `after death #${i}: plain TCP to danted, reported as such`);
    t.equal(s.combination, 'N-N', `after death #${i}: N-UE to plain TCP`);
  }
  t.same(dead?.refused, [], 'no session was refused to its client');
  const ownH = dead?.health.find((h) => h.name === 'own');
  t.equal(ownH?.healthy, false, `the dead candidate is unhealthy after its failed sessions (${ownH?.lastError})`);
  t.equal(dead?.health.find((h) => h.name === 'dante')?.healthy, true, 'danted stays healthy');
});

// Needs root, network namespaces and the kernel's MPTCP (runs in CI as root). Namespaces hbrst-*.
// Crash-safe restore (issue 16, item 4): `duocell run` → kill -9 → `duocell run` again → SIGTERM
// leaves the namespace exactly as it was before the first start: sysctls, MPTCP limits and
// endpoints (in-kernel PM; the namespace starts on the userspace one), rules, routes. What the
// operator made (an endpoint, a rule, a routing table) is never touched.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Topology, netnsUnavailable, type Host } from '../helpers/hosts.js';
import { BIN } from '../helpers/appliance.js';

const why = await netnsUnavailable();

async function snapshot(h: Host): Promise<Record<string, string>> {
  const run = (script: string): Promise<string> => h.exec('sh', ['-c', script]);
  return {
    sysctl: await run('sysctl -a 2>/dev/null | grep mptcp | sort'),
    endpoints: await run('ip mptcp endpoint show'),
    limits: await run('ip mptcp limits show'),
    rules4: await run('ip -4 rule show'),
    rules6: await run('ip -6 rule show'),
    routes4: await run('ip -4 route show table all'),
    routes6: await run('ip -6 route show table all | grep -v "^multicast\\|^local fe80\\|^fe80"'),
  };
}

t.test('kill -9, restart, SIGTERM: the namespace is exactly as before the first start', { skip: why === false ? false : why, timeout: 180_000 }, async (t) => {
  const topo = new Topology(`hbrst${process.pid % 100000}`);
  t.teardown(() => topo.destroy());
  const box = await topo.host('box');
  const peer = await topo.host('peer');
  await topo.link(box, 'up0', peer, 'up0', { a: ['10.66.1.1/24'], b: ['10.66.1.2/24'] });
  await topo.link(box, 'wwan0', peer, 'wwan0', { a: ['10.66.5.1/24'], b: ['10.66.5.2/24'] });
  await topo.link(box, 'adm0', peer, 'adm0', { a: ['10.66.9.1/24'], b: ['10.66.9.2/24'] });
  // The operator's own settings: the userspace PM, a non-default limit, an endpoint, a rule and a table.
  await box.sysctl('net.mptcp.pm_type', 1);
  await box.sysctl('net.mptcp.allow_join_initial_addr_port', 1);
  await box.mptcpLimits(3, 2);
  await box.mptcpEndpoint('10.66.9.1', 'adm0', ['signal']);
  await box.ip('rule', 'add', 'from', '10.66.9.9', 'lookup', '300', 'priority', '1300');
  await box.ip('route', 'add', 'default', 'dev', 'adm0', 'table', '300');
  await new Promise((r) => setTimeout(r, 1000)); // link-local addresses and their routes settle
  const before = await snapshot(box);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-hbrst-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const board = {
    name: 'hbrst-conc',
    preset: 'concentrator',
    uplinks: [{ name: 'up', access: 'wlan', interface: 'up0', gateway4: '10.66.1.2' }],
    lan: { interfaces: [] },
    web: { listen: [{ host: '127.0.0.1', port: 18094 }] },
    listeners: [{ kind: 'convert', host: '10.66.1.1', port: 5124, mptcp: true, upstream: 'tcp', options: { cookies: ['rst-1'] } }],
    accessNetworks: [],
    explicitSteering: { refuseInitialJoins: true, announce: [{ address: '10.66.5.1', port: 5125, interface: 'wwan0' }], subflows: 4 },
  };
  fs.writeFileSync(path.join(dir, 'board.json'), JSON.stringify(board));
  const start = async (): Promise<{ child: ChildProcess; log: () => string; exited: Promise<number | null> }> => {
    const child = box.spawn(process.execPath, [BIN, 'run', '--board', path.join(dir, 'board.json'), '--state-dir', path.join(dir, 'state')], { env: { ...process.env, DUOCELL_LOG_LEVEL: 'info' } });
    let log = '';
    child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    // Running: the web socket listens (it opens after every kernel change of start-up).
    for (let i = 0; i < 300; i++) {
      if ((await box.exec('ss', ['-Hltn', 'sport = :18094'], { allowFail: true })).trim() !== '') break;
      if (child.exitCode !== null) throw new Error(`duocell run exited ${child.exitCode}: ${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // and the uplink's source rule and subflow endpoint are in (the paths service adds them as the link is seen up)
    for (let i = 0; i < 100; i++) {
      const [rules, eps] = await Promise.all([box.exec('ip', ['rule', 'show']), box.exec('ip', ['mptcp', 'endpoint', 'show'])]);
      if (/from 10\.66\.1\.1 lookup 200/.test(rules) && /10\.66\.1\.1 .*subflow/.test(eps)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    return { child, log: () => log, exited };
  };

  const first = await start();
  const running = await snapshot(box);
  t.match(running.sysctl, /net\.mptcp\.allow_join_initial_addr_port = 0/, 'while running: the C flag is set');
  t.match(running.sysctl, /net\.mptcp\.pm_type = 0/, 'while running: the in-kernel PM');
  t.match(running.endpoints, /10\.66\.5\.1 port 5125 .*signal/, 'while running: the signal endpoint');
  t.match(running.endpoints, /10\.66\.1\.1 .*subflow/, 'while running: the uplink subflow endpoint');
  t.match(running.rules4, /from 10\.66\.1\.1 lookup 200/, 'while running: the uplink source rule');
  t.match(running.routes4, /default via 10\.66\.1\.2 dev up0 table 200/, 'while running: the uplink table');
  t.not(running.limits, before.limits, 'while running: other limits');

  first.child.kill('SIGKILL');
  await first.exited;
  const afterKill = await snapshot(box);
  t.not(afterKill.sysctl, before.sysctl, 'a kill -9 leaves the settings changed (nothing could restore them)');

  const second = await start();
  const again = await snapshot(box);
  t.match(again.sysctl, /net\.mptcp\.allow_join_initial_addr_port = 0/, 'restarted: the C flag is set again');
  t.match(second.log(), /did not exit cleanly/, 'the restart says it restores what the killed run left');
  second.child.kill('SIGTERM');
  const code = await Promise.race([second.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 20_000))]);
  if (code === 'hung') second.child.kill('SIGKILL');
  t.equal(code, 0, 'SIGTERM: clean exit');

  const after = await snapshot(box);
  for (const k of Object.keys(before)) t.equal(after[k], before[k], `${k}: exactly as before the first start`);
  t.match(after.endpoints, /10\.66\.9\.1 .*signal/, "the operator's endpoint is still there");
  t.match(after.rules4, /from 10\.66\.9\.9 lookup 300/, "the operator's rule is still there");
});

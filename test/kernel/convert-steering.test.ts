// Explicit traffic steering for the concentrator (namespaces tcst-*, needs root and MPTCP; runs in
// CI as root): the Convert service listens on a SHARED address; the instance announces its own
// UNIQUE address with ADD_ADDR (a `signal` endpoint) and refuses joins on the shared one (the
// MP_CAPABLE "C" flag, net.mptcp.allow_join_initial_addr_port=0), so every later subflow reaches
// this instance. The concentrator is the production path: `duocell run` with a board file whose
// `explicitSteering` key sets the sysctl and the endpoint at start and undoes both on exit.
// Checked from MPTCP_FULL_INFO on the cell's upstream connection.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { Topology, netnsUnavailable, type Host } from '../helpers/hosts.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(here, '../../bin/duocell.js');

/** `duocell run` of a concentrator board in `h`, resolved once its Convert port listens. */
async function concentrator(h: Host, refuseInitialJoins: boolean): Promise<{ child: ChildProcess; stop: () => Promise<number | null>; log: () => string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-tcst-'));
  const board = {
    name: 'tcst-conc',
    preset: 'concentrator',
    uplinks: [],
    lan: { interfaces: [] },
    web: { listen: [{ host: '127.0.0.1', port: 18090 }] },
    listeners: [{ kind: 'convert', host: '10.60.0.1', port: 5124, mptcp: true, upstream: 'tcp', options: { cookies: ['steer-1'] } }],
    accessNetworks: [],
    explicitSteering: { refuseInitialJoins, announce: [{ address: '10.51.0.1', port: 5125, interface: 'wwan0' }], subflows: 4 },
    // The echo "server" lives on the concentrator's own loopback: allowed on purpose (the proxy
    // refuses the box's own addresses by default).
    proxyTargets: { allow: ['10.70.0.1/32'] },
  };
  fs.writeFileSync(path.join(dir, 'board.json'), JSON.stringify(board));
  const child = h.spawn(process.execPath, [BIN, 'run', '--board', path.join(dir, 'board.json'), '--state-dir', dir], { env: { ...process.env, DUOCELL_LOG_LEVEL: 'warn' } });
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  for (let i = 0; i < 200; i++) {
    if ((await h.exec('ss', ['-Hltn', 'sport = :5124'], { allowFail: true })).trim() !== '') break;
    if (child.exitCode !== null) throw new Error(`duocell run exited ${child.exitCode}: ${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    log: () => log,
    stop: async () => {
      child.kill('SIGTERM');
      const c = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 15_000))]);
      if (c === 'hung') {
        child.kill('SIGKILL');
        throw new Error(`duocell run did not stop: ${log}`);
      }
      fs.rmSync(dir, { recursive: true, force: true });
      return c;
    },
  };
}

const endpoints = async (h: Host): Promise<string> => h.exec('ip', ['mptcp', 'endpoint', 'show']);
const joinSysctl = async (h: Host): Promise<string> => (await h.exec('sysctl', ['-n', 'net.mptcp.allow_join_initial_addr_port'])).trim();
const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));
const reason = await netnsUnavailable();

function runRole(h: Host, role: string, untilReady: boolean): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = h.spawn(process.execPath, [...loader, path.join(here, 'convert-steering-child.ts'), role], {
      env: { ...process.env, DUOCELL_LOG_LEVEL: 'silent' },
    });
    let buf = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`${role} timed out: ${err}`)), 90_000);
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const l = JSON.parse(buf.slice(0, i)) as Record<string, unknown>;
        buf = buf.slice(i + 1);
        if (l.fatal !== undefined) reject(new Error(String(l.fatal)));
        if (untilReady ? l.ready === true : l.subflows !== undefined) {
          clearTimeout(timer);
          resolve(l);
        }
      }
    });
    child.on('exit', (c) => {
      if (c !== 0 && c !== null) reject(new Error(`${role} exited ${c}: ${err}`));
    });
  });
}

type Sf = { local: string; remote: string; bytesSent: number };

t.test('C flag + ADD_ADDR: later subflows join the unique address, not the shared one', { skip: reason }, async (t) => {
  const topo = new Topology(`tcst${process.pid}`); // pid: concurrent runs never share namespaces
  t.teardown(() => topo.destroy());
  const cell = await topo.host('cell');
  const conc = await topo.host('conc');
  await topo.link(cell, 'wwan0', conc, 'wwan0', { a: ['10.51.0.2/24'], b: ['10.51.0.1/24'], rateMbit: 20 });
  await topo.link(cell, 'wlan0', conc, 'wlan0', { a: ['10.52.0.2/24'], b: ['10.52.0.1/24'], rateMbit: 30 });
  await conc.ip('addr', 'add', '10.60.0.1/32', 'dev', 'lo'); // shared service address
  await conc.ip('addr', 'add', '10.70.0.1/32', 'dev', 'lo'); // the server
  await cell.ip('route', 'add', '10.60.0.1/32', 'via', '10.51.0.1', 'dev', 'wwan0');
  await cell.ip('route', 'add', '10.70.0.1/32', 'via', '10.51.0.1', 'dev', 'wwan0');
  await cell.sourceRoute('10.52.0.2', 'wlan0', '10.52.0.1', 22);
  // fullmesh: on ADD_ADDR the WLAN uplink also opens a subflow to the announced address (a plain
  // `subflow` endpoint only ever targets the initial address, which the C flag forbids).
  await cell.mptcpEndpoint('10.52.0.2', 'wlan0', ['subflow', 'fullmesh']);
  await cell.mptcpLimits(4, 4);
  await conc.mptcpLimits(2, 0); // duocell raises the subflow limit to 4 (explicitSteering.subflows)
  // The instance's unique address is announced WITH a port (board explicitSteering): the kernel
  // then listens for joins on it (the Convert listener is bound to the shared address only, so a
  // join to the unique address on the service port would find no socket).
  await runRole(conc, 'echo', true);
  await conc.sysctl('net.mptcp.allow_join_initial_addr_port', 1);

  const check = (r: Record<string, unknown>): Sf[] => {
    const sfs = (r.subflows as Sf[] | undefined) ?? [];
    t.comment(`subflows: ${JSON.stringify(sfs)}`);
    t.equal(r.echoed, 30 * 16 * 1024, 'data went through and came back');
    // The cell asked for the duocell grant: the concentrator's resource policy came back in the
    // Convert reply (Private Use TLV 0xD0) and the cell's client parsed it.
    const g = r.grant as { policy?: unknown; ratio?: { cellular: number; wlan: number }; maxSubflowsPerSession?: unknown } | null;
    t.equal(typeof g?.policy, 'string', `grant received: ${JSON.stringify(g)}`);
    t.equal((g?.ratio?.cellular ?? 0) + (g?.ratio?.wlan ?? 0), 100, 'grant ratio adds up');
    return sfs;
  };

  await t.test('duocell run with explicitSteering: C flag (allow_join_initial_addr_port=0) + signal endpoint', async (t) => {
    const d = await concentrator(conc, true);
    t.teardown(() => (d.child.exitCode === null ? void d.child.kill('SIGKILL') : undefined));
    t.equal(await joinSysctl(conc), '0', 'duocell set the C flag');
    t.match(await endpoints(conc), /10\.51\.0\.1 port 5125 .*signal/, 'duocell added the signal endpoint with its port');
    const sfs = check(await runRole(cell, 'cell', false));
    t.ok(sfs.length >= 2, `${sfs.length} subflows`);
    t.equal(sfs.filter((s) => s.remote.startsWith('10.60.0.1:')).length, 1, 'only the initial subflow uses the shared address');
    t.ok(sfs.some((s) => s.remote === '10.51.0.1:5125'), 'a subflow joined the announced unique address and port');
    t.ok(sfs.some((s) => s.local.startsWith('10.52.0.2:') && s.remote === '10.51.0.1:5125'), 'the WLAN uplink joined the unique address too');
    t.equal(await d.stop(), 0, `clean exit ${d.log().slice(-500)}`);
    t.equal(await joinSysctl(conc), '1', 'the sysctl is restored on exit');
    t.notMatch(await endpoints(conc), /10\.51\.0\.1/, 'the signal endpoint is removed on exit');
  });

  await t.test('control: refuseInitialJoins false, a subflow joins the shared address', async (t) => {
    const d = await concentrator(conc, false);
    t.teardown(() => (d.child.exitCode === null ? void d.child.kill('SIGKILL') : undefined));
    t.equal(await joinSysctl(conc), '1', 'sysctl left alone');
    const sfs = check(await runRole(cell, 'cell', false));
    t.ok(sfs.filter((s) => s.remote.startsWith('10.60.0.1:')).length >= 2, 'a join went to the shared address');
    t.equal(await d.stop(), 0);
  });

  await t.test('a board it cannot apply fails with a stable code and leaves nothing behind', async (t) => {
    // Someone else's endpoint on the address to announce: refused, sysctl untouched.
    await conc.ip('mptcp', 'endpoint', 'add', '10.51.0.1', 'dev', 'wwan0', 'subflow');
    const d = await concentrator(conc, true).catch((e: Error) => e);
    t.ok(d instanceof Error, 'duocell run refused to start');
    t.match(String((d as Error).message), /DC_STEERING_ENDPOINT/, 'with DC_STEERING_ENDPOINT');
    t.equal(await joinSysctl(conc), '1', 'the sysctl was put back');
    t.match(await endpoints(conc), /10\.51\.0\.1 .*subflow/, "the other endpoint is left as it was");
    await conc.ip('mptcp', 'endpoint', 'flush');
  });
});

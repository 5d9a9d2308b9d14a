// Explicit traffic steering for the concentrator (namespaces tcst-*, needs root and MPTCP; runs in
// CI as root): the Convert service listens on a SHARED address; the instance announces its own
// UNIQUE address with ADD_ADDR (a `signal` endpoint) and refuses joins on the shared one (the
// MP_CAPABLE "C" flag, net.mptcp.allow_join_initial_addr_port=0), so every later subflow reaches
// this instance. Checked from MPTCP_FULL_INFO on the cell's upstream connection.
import t from 'tap';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Topology, netnsUnavailable, type Host } from '../helpers/hosts.js';

const here = path.dirname(fileURLToPath(import.meta.url));
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
  await conc.mptcpLimits(4, 0);
  // The instance's unique address, announced WITH a port: the kernel then listens for joins on it
  // (the Convert listener is bound to the shared address only, so a join to the unique address
  // on the service port would find no socket).
  await conc.ip('mptcp', 'endpoint', 'add', '10.51.0.1', 'port', '5125', 'dev', 'wwan0', 'signal');
  await runRole(conc, 'conc', true);

  const check = (r: Record<string, unknown>): Sf[] => {
    const sfs = (r.subflows as Sf[] | undefined) ?? [];
    t.comment(`subflows: ${JSON.stringify(sfs)}`);
    t.equal(r.echoed, 30 * 16 * 1024, 'data went through and came back');
    return sfs;
  };

  await t.test('with the C flag (allow_join_initial_addr_port=0)', async (t) => {
    await conc.sysctl('net.mptcp.allow_join_initial_addr_port', 0);
    const sfs = check(await runRole(cell, 'cell', false));
    t.ok(sfs.length >= 2, `${sfs.length} subflows`);
    t.equal(sfs.filter((s) => s.remote.startsWith('10.60.0.1:')).length, 1, 'only the initial subflow uses the shared address');
    t.ok(sfs.some((s) => s.remote === '10.51.0.1:5125'), 'a subflow joined the announced unique address and port');
    t.ok(sfs.some((s) => s.local.startsWith('10.52.0.2:') && s.remote === '10.51.0.1:5125'), 'the WLAN uplink joined the unique address too');
  });

  await t.test('control: without the C flag a subflow joins the shared address', async (t) => {
    await conc.sysctl('net.mptcp.allow_join_initial_addr_port', 1);
    const sfs = check(await runRole(cell, 'cell', false));
    t.ok(sfs.filter((s) => s.remote.startsWith('10.60.0.1:')).length >= 2, 'a join went to the shared address');
  });
});

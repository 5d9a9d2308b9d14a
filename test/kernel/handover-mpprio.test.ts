// Needs root, network namespaces and the kernel's MPTCP (runs in CI as root).
// Issue 17 item 3: when a radio dies, the cell marks the dying path's subflows backup (MP_PRIO,
// the userspace path manager's per-connection set-flags) before it destroys them. An M-UE with a
// cellular and a WLAN access link downloads through the cell's dual-stack explicit listener (its
// subflows are IPv4-mapped in the kernel's events: the case that never matched before); the
// cellular link dies mid-download. The kernel's own counter says MP_PRIO went out on the cell
// (MPTcpExtMPPrioTx: written only on a live subflow's segment, so before the destroy closed it);
// duocell's handover line says it was applied and the subflow aborted; the download completes on
// WLAN. Control: with DUOCELL_HANDOVER_BACKUP=0 the same cut sends no MP_PRIO, so the counter's
// rise is the handover's and no one else's (steering).
import t from 'tap';
import fs from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { Topology, netnsUnavailable, type Host } from '../helpers/hosts.js';
import { PEER, startPeerServerIn, waitFor, startDuocellRun } from '../helpers/appliance.js';
import { parseSysctlConf, SHIPPED_SYSCTL } from '../../bench/sysctl.js';
import type { PeerReport } from '../../src/sim/peer.js';

const why = await netnsUnavailable();
const MiB = 1 << 20;
const SIZE = 32 * MiB;

const board = {
  name: 'test-mpprio',
  preset: 'cell',
  uplinks: [{ name: 'up', access: 'wlan', interface: 'up0' }],
  lan: { interfaces: ['ran0', 'wap0'] },
  web: { listen: [{ host: '127.0.0.1', port: 18094 }] },
  listeners: [{ kind: 'explicit', host: '::', port: 9000, mptcp: true, target: '10.74.3.2:8000', upstream: 'tcp' }],
  accessNetworks: [
    { prefix: '10.74.1.0/24', access: 'cellular' },
    { prefix: '10.74.2.0/24', access: 'wlan' },
  ],
};

/**
 * One MPTcpExt counter of the host's namespace: `MPPrioTx` is nstat's MPTcpExtMPPrioTx
 * (/proc/net/netstat: a header line of names, then one of values, each after `MPTcpExt:`).
 */
async function mptcpCounter(h: Host, name: string): Promise<number> {
  const lines = (await h.exec('cat', ['/proc/net/netstat'])).split('\n').filter((l) => l.startsWith('MPTcpExt:'));
  const keys = lines[0]?.split(/\s+/) ?? [];
  const vals = lines[1]?.split(/\s+/) ?? [];
  const i = keys.indexOf(name);
  if (i < 0) throw new Error(`no ${name} in /proc/net/netstat`);
  return Number(vals[i]);
}

/** The cell's established subflows of the listener, with their peer address and bytes acked. */
async function subflows(cell: Host): Promise<Array<{ peer: string; acked: number }>> {
  const out = await cell.exec('ss', ['-Htni', 'state', 'established', 'sport', '= :9000'], { allowFail: true });
  const res: Array<{ peer: string; acked: number }> = [];
  const recs = out.split(/\n(?=\S)/);
  for (const r of recs) {
    // local, then peer: [::ffff:10.74.0.1]:9000 [::ffff:10.74.1.2]:41000
    const peer = [...(r.split('\n')[0] ?? '').matchAll(/(10\.74\.\d+\.\d+)\]?:\d+/g)][1]?.[1];
    if (peer === undefined) continue;
    res.push({ peer, acked: Number(/bytes_acked:(\d+)/.exec(r)?.[1] ?? 0) });
  }
  return res;
}

function startDuocell(cell: Host, env: Record<string, string>): Promise<{ child: ChildProcess; logs: string[] }> {
  return startDuocellRun(cell, board, { DUOCELL_LOG_LEVEL: 'debug', DUOCELL_LOG_FORMAT: 'json', ...env }, { tmpPrefix: 'dc-prio' });
}

interface Outcome {
  report: PeerReport;
  sentHash: string | undefined;
  prioTx: number;
  /** The handover's info line for ran0: subflows aborted, MP_PRIO applied. */
  handover: { subflows: number; backedUp: number } | undefined;
  cutSubflowLeft: boolean;
  logs: string;
}

async function run(topo: { mue: Host; cell: Host; srv: Host }, env: Record<string, string>): Promise<Outcome> {
  const { mue, cell, srv } = topo;
  const app = await startDuocell(cell, env);
  const server = startPeerServerIn(srv, '0.0.0.0', 8000, false);
  try {
    await server.ready;
    // The download; the client's FIN only after the server's (a FIN at once would keep the M-UE's
    // path manager from opening the WLAN join).
    const client = mue.exec(process.execPath, [PEER, 'client', '10.74.0.1', '9000', '0', String(SIZE), '--mptcp', '--late-fin', '--timeout', '180000'], { allowFail: true });
    // Cut once both paths carry the download (each subflow has had data acked).
    const flowing = await waitFor(async () => {
      const s = await subflows(cell);
      const on = (p: string): boolean => s.some((x) => x.peer === p && x.acked > 256 * 1024);
      return on('10.74.1.2') && on('10.74.2.2') ? true : undefined;
    }, 60_000, 50);
    if (flowing !== true) throw new Error(`the download never ran on both paths: ${JSON.stringify(await subflows(cell))}`);
    const before = await mptcpCounter(cell, 'MPPrioTx');
    await Promise.all([cell.linkSet('ran0', 'down'), mue.linkSet('ran0', 'down')]);
    const line = await waitFor(() => /"ifname":"ran0","subflows":(\d+),"backedUp":(\d+)/.exec(app.logs.join('')) ?? undefined, 60_000, 50);
    const prioTx = (await mptcpCounter(cell, 'MPPrioTx')) - before;
    const cutSubflowLeft = (await subflows(cell)).some((x) => x.peer === '10.74.1.2');
    const report = JSON.parse((await client).trim().split('\n').pop() ?? '{}') as PeerReport;
    const s = await waitFor(() => server.reports[0], 10_000);
    return {
      report,
      sentHash: s?.sentHash,
      prioTx,
      handover: line === undefined ? undefined : { subflows: Number(line[1]), backedUp: Number(line[2]) },
      cutSubflowLeft,
      logs: app.logs.join(''),
    };
  } finally {
    server.child.kill('SIGKILL');
    app.child.kill('SIGTERM');
    await new Promise((r) => (app.child.exitCode !== null ? r(null) : app.child.once('exit', r)));
    for (const h of [mue, cell]) await h.linkSet('ran0', 'up');
    await mue.ip('route', 'replace', 'default', 'via', '10.74.1.1', 'dev', 'ran0');
    await mue.ip('route', 'replace', 'default', 'via', '10.74.1.1', 'dev', 'ran0', 'table', '11');
  }
}

t.test('handover: the dying path\'s subflows get MP_PRIO (backup) before the destroy (needs root)', { skip: why === false ? false : why, timeout: 600_000 }, async (t) => {
  const topo = new Topology(`prio${process.pid % 1000}`);
  t.teardown(() => topo.destroy());
  const mue = await topo.host('mue');
  const cell = await topo.host('cell', { forward: true });
  const srv = await topo.host('srv');
  // The shipped settings that matter here: the userspace path manager (MP_PRIO per subflow).
  for (const s of parseSysctlConf(fs.readFileSync(SHIPPED_SYSCTL, 'utf8'), '60-duocell.conf').filter((x) => x.key === 'net.mptcp.pm_type')) await cell.sysctl(s.key, s.value);
  await topo.link(mue, 'ran0', cell, 'ran0', { a: ['10.74.1.2/24'], b: ['10.74.1.1/24'], rateMbit: 20 });
  await topo.link(mue, 'wap0', cell, 'wap0', { a: ['10.74.2.2/24'], b: ['10.74.2.1/24'], rateMbit: 30 });
  await topo.link(cell, 'up0', srv, 'up0', { a: ['10.74.3.1/24'], b: ['10.74.3.2/24'] });
  // The cell's service address lives on lo: losing a radio keeps it reachable.
  await cell.ip('addr', 'add', '10.74.0.1/32', 'dev', 'lo');
  await mue.ip('route', 'replace', 'default', 'via', '10.74.1.1', 'dev', 'ran0');
  await mue.sourceRoute('10.74.1.2', 'ran0', '10.74.1.1', 11);
  await mue.sourceRoute('10.74.2.2', 'wap0', '10.74.2.1', 12);
  await mue.mptcpEndpoint('10.74.2.2', 'wap0', ['subflow']);
  for (const h of [mue, cell, srv]) await h.mptcpLimits(4, 4);
  await srv.ip('route', 'replace', 'default', 'via', '10.74.3.1');
  t.equal((await cell.exec('sysctl', ['-n', 'net.mptcp.pm_type'])).trim(), '1', 'the cell runs the userspace path manager, as shipped');

  await t.test('MP_PRIO on the cut path\'s subflow, then the destroy; the download completes on WLAN', async (t) => {
    const o = await run({ mue, cell, srv }, { DUOCELL_HANDOVER_BACKUP: '1' });
    t.comment(`handover ${JSON.stringify(o.handover)}; MPTcpExtMPPrioTx +${o.prioTx}; received ${o.report.received} of ${SIZE}`);
    t.ok(o.handover !== undefined && o.handover.subflows >= 1, `the handover aborted the cut path's subflow (${JSON.stringify(o.handover)})`);
    t.ok(o.handover !== undefined && o.handover.backedUp >= 1, 'the kernel accepted the set-flags (backup) for it');
    t.ok(o.prioTx >= 1, `the cell's kernel wrote MP_PRIO on it: MPTcpExtMPPrioTx +${o.prioTx}`);
    t.notOk(o.cutSubflowLeft, 'and the subflow is gone (destroyed)');
    t.equal(o.report.received, SIZE, 'every byte arrived');
    t.ok(o.sentHash !== undefined && o.report.receivedHash === o.sentHash, 'what the M-UE received is what the server sent (sha256)');
    if (o.prioTx < 1 || (o.handover?.backedUp ?? 0) < 1) t.comment(o.logs.split('\n').filter((l) => l.includes('handover') || l.includes('MP_PRIO') || l.includes('diag')).join('\n').slice(-4000));
  });

  await t.test('control, DUOCELL_HANDOVER_BACKUP=0: the same cut sends no MP_PRIO', async (t) => {
    const o = await run({ mue, cell, srv }, { DUOCELL_HANDOVER_BACKUP: '0' });
    t.comment(`handover ${JSON.stringify(o.handover)}; MPTcpExtMPPrioTx +${o.prioTx}; received ${o.report.received} of ${SIZE}`);
    t.ok(o.handover !== undefined && o.handover.subflows >= 1, 'the handover aborted the cut path\'s subflow');
    t.equal(o.handover?.backedUp, 0, 'nothing marked backup');
    t.equal(o.prioTx, 0, 'no MP_PRIO written: the rise above is the handover\'s');
    t.equal(o.report.received, SIZE, 'every byte arrived');
  });
});

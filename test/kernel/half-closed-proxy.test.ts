// Needs root, network namespaces, the kernel's MPTCP and the delay line (runs in CI as root).
// Issue 17 item 4 through duocell: an N-UE behind the cell asks for a download and sends its FIN
// at once; the cell relays it over MPTCP (both uplinks, lte + wlan shapes, the userspace path
// manager as shipped) to an M-server; the initial subflow's uplink dies mid-download. With the
// FIN hold (docs/relay.md "The half-closed stall") every byte arrives, hash-checked; with the hold
// off (DUOCELL_FIN_HOLD_MS=0) the same download stalls, which is what the hold is for.
import t from 'tap';
import fs from 'node:fs';
import { netnsUnavailable } from '../helpers/hosts.js';
import type { ChildProcess } from 'node:child_process';
import { peerClient, startPeerServerIn, waitFor, startDuocellRun } from '../helpers/appliance.js';
import { buildSim, SIM_ADDR, SIM_RATES, type SimLayout } from '../../src/sim/board.js';
import { delaylinePath } from '../../src/sim/links.js';
import type { Host } from '../../src/sim/hosts.js';

const why = (await netnsUnavailable()) || (fs.existsSync(delaylinePath()) ? false : `no delay line at ${delaylinePath()} (scripts/setup.sh builds it)`);
const MiB = 1 << 20;
const SIZE = 24 * MiB;
const A = SIM_ADDR;

const board = {
  name: 'test-fin-hold',
  preset: 'cell',
  uplinks: [
    { name: 'up-a', access: 'wlan', interface: 'wwan0', gateway4: A.conc.wwan0[0], table: 21 },
    { name: 'up-b', access: 'wlan', interface: 'wlan0', gateway4: A.conc.wlan0[0], table: 22 },
  ],
  lan: { interfaces: ['lan0'] },
  web: { listen: [{ host: '127.0.0.1', port: 18093 }] },
  listeners: [{ kind: 'explicit', host: '0.0.0.0', port: 9000, mptcp: false, target: `${A.srv.srv0[0]}:8001`, upstream: 'mptcp' }],
  accessNetworks: [{ prefix: '10.13.0.0/24', access: 'lan' }],
};

/** Bytes the cell's upstream subflows towards the M-server have received (ss tcp_info). */
async function upstreamReceived(cell: Host): Promise<number> {
  const out = await cell.exec('ss', ['-Htni', 'state', 'established', 'dport', '= :8001'], { allowFail: true });
  let sum = 0;
  for (const m of out.matchAll(/bytes_received:(\d+)/g)) sum += Number(m[1]);
  return sum;
}

/**
 * `duocell run` with the board; resolves once the listener is up and the path manager runs (the
 * FIN hold counts the usable uplinks). Not through the web API: its first-boot set-up can take
 * long on a loaded host, and this test needs no web page.
 */
function startDuocell(cell: Host, env: Record<string, string>): Promise<{ child: ChildProcess; logs: string[] }> {
  return startDuocellRun(cell, board, { DUOCELL_LOG_LEVEL: 'info', ...env }, { tmpPrefix: 'dc-speed' });
}

interface Outcome {
  received: number;
  complete: boolean;
  intact: boolean;
  atCut: number;
  cutDev: string;
  logs: string;
}

/** One download through the cell with the client's FIN at once; the initial subflow's uplink is cut 2 MiB in. */
async function run(sim: SimLayout, env: Record<string, string>, timeoutMs: number): Promise<Outcome> {
  const app = await startDuocell(sim.cell, env);
  const server = startPeerServerIn(sim.srv, '0.0.0.0', 8001, true);
  try {
    await server.ready;
    // The uplink the cell's initial subflow takes: its route to the server.
    const route = await sim.cell.exec('ip', ['-4', 'route', 'get', A.srv.srv0[0]]);
    const cutDev = /dev (\S+)/.exec(route)?.[1] ?? 'wwan0';
    const client = peerClient(sim.lan, A.cell.lan0[0], 9000, 0, SIZE, { mptcp: false, timeoutMs });
    const atCut = (await waitFor(async () => {
      const n = await upstreamReceived(sim.cell);
      return n >= 2 * MiB ? n : undefined;
    }, 30_000, 50)) ?? -1;
    await Promise.all([sim.cell.linkSet(cutDev, 'down'), sim.conc.linkSet(cutDev, 'down')]);
    const r = await client;
    const s = await waitFor(() => server.reports[0], 5000);
    return { received: r.received ?? 0, complete: r.received === SIZE, intact: s !== undefined && r.receivedHash === s.sentHash && s.sent === SIZE, atCut, cutDev, logs: app.logs.join('') };
  } finally {
    server.child.kill('SIGKILL');
    app.child.kill('SIGTERM');
    await new Promise((r) => (app.child.exitCode !== null ? r(null) : app.child.once('exit', r)));
    for (const h of [sim.cell, sim.conc]) for (const dev of ['wwan0', 'wlan0']) await h.linkSet(dev, 'up');
    // The link's routes went with it: the cell's default route back as buildSim made it.
    await waitFor(async () => (await sim.cell.exec('ip', ['-4', 'route', 'replace', 'default', 'via', A.conc.wwan0[0], 'dev', 'wwan0'], { allowFail: true })) !== undefined && /wwan0/.test(await sim.cell.exec('ip', ['-4', 'route', 'show', 'default'])), 10_000, 200);
  }
}

t.test('half-closed N-UE download through the cell over lte + wlan uplinks, initial uplink lost (needs root)', { skip: why === false ? false : why, timeout: 400_000 }, async (t) => {
  const sim = await buildSim(`speed${process.pid % 1000}`, SIM_RATES, { links: 'realistic', pathManager: 'userspace' });
  t.teardown(() => sim.topo.destroy());

  await t.test('with the FIN hold: every byte arrives, hash-checked', async (t) => {
    // MP_PRIO before the abort is opt-in (src/main.ts): turned on here so that its step is checked too
    const o = await run(sim, { DUOCELL_HANDOVER_BACKUP: '1' }, 120_000);
    t.comment(`cut ${o.cutDev} at ${o.atCut} bytes; received ${o.received} of ${SIZE}`);
    t.ok(o.atCut > 0 && o.atCut < SIZE, `the initial uplink died mid-download (${o.atCut} of ${SIZE} bytes)`);
    t.ok(o.complete, `every byte arrived (${o.received} of ${SIZE})`);
    t.ok(o.intact, 'what the N-UE received is what the M-server sent (sha256)');
    const ho = /"ifname":"wwan0","subflows":(\d+),"backedUp":(\d+)/.exec(o.logs);
    t.ok(ho !== null && Number(ho[1]) >= 1, `the handover aborted the cut uplink's subflow (${ho?.[0] ?? 'no handover line'})`);
    t.ok(ho !== null && Number(ho[2]) >= 1, 'and marked it backup (MP_PRIO) first');
    if (!o.complete) t.comment(o.logs.slice(-3000));
  });

  await t.test('with the FIN hold in the JS relay (DUOCELL_RELAY=js): every byte arrives, hash-checked', async (t) => {
    const o = await run(sim, { DUOCELL_RELAY: 'js' }, 120_000);
    t.comment(`cut ${o.cutDev} at ${o.atCut} bytes; received ${o.received} of ${SIZE}`);
    t.ok(o.atCut > 0 && o.atCut < SIZE, `the initial uplink died mid-download (${o.atCut} of ${SIZE} bytes)`);
    t.ok(o.complete, `every byte arrived (${o.received} of ${SIZE})`);
    t.ok(o.intact, 'what the N-UE received is what the M-server sent (sha256)');
    if (!o.complete) t.comment(o.logs.slice(-3000));
  });

  await t.test('control, the hold off (DUOCELL_FIN_HOLD_MS=0): the same download stalls', async (t) => {
    const o = await run(sim, { DUOCELL_FIN_HOLD_MS: '0' }, 15_000);
    t.comment(`cut ${o.cutDev} at ${o.atCut} bytes; received ${o.received} of ${SIZE} in 15 s`);
    t.ok(o.atCut > 0 && o.atCut < SIZE, `the initial uplink died mid-download (${o.atCut} of ${SIZE} bytes)`);
    t.notOk(o.complete, `the download stalled (${o.received} of ${SIZE} bytes 15 s after the start)`);
  });
});

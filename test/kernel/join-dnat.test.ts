// Needs root, network namespaces, nftables and the kernel's MPTCP (runs in CI as root).
// The join DNAT (services/intercept/join.ts, on by default on a cell with the userspace PM): an
// M-UE uploads through the cell's explicit MPTCP listener with Linux's default limits
// (add_addr_accepted 0), its WLAN join goes to the service address as always, and the cell
// rewrites it to its WLAN radio's address, so the join carries a non-zero address id.
//   - initial path (cellular) cut mid-upload: the cell withdraws id 0 over the join; the M-UE
//     counts one REMOVE_ADDR, no stale subflow, and the upload arrives byte-exact;
//   - other path (WLAN, the DNATed join) cut: the join's id is never withdrawn (a REMOVE_ADDR of
//     it trips WARN_ON_ONCE(add_addr_accepted == 0) in the M-UE's kernel): no REMOVE_ADDR;
//   - the rule table is gone once duocell exits.
// No time is asserted.
import t from 'tap';
import fs from 'node:fs';
import { netnsUnavailable } from '../helpers/hosts.js';
import { startDuocellRun, waitFor } from '../helpers/appliance.js';
import { round, stopDuocell } from '../helpers/mue-upload.js';
import { rig, type Rig } from '../../bench/netns.js';
import { applyShipped } from '../../bench/sysctl.js';
import { transfer, XferServer, XFER } from '../../bench/xfer-run.js';

const why = (await netnsUnavailable()) || (fs.existsSync(XFER) ? false : `no ${XFER} (scripts/setup.sh builds dist/)`);

const board = {
  name: 'test-join-dnat',
  preset: 'cell',
  uplinks: [{ name: 'up', access: 'wlan', interface: 'up0' }],
  lan: { interfaces: ['ran0', 'wap0'] },
  web: { listen: [{ host: '127.0.0.1', port: 18098 }] },
  joinDnat: true,
  listeners: [
    { kind: 'explicit', host: '::', port: 9000, mptcp: true, target: '10.71.3.2:8000', upstream: 'tcp' },
    // The same server's port intercepted: a transparent session, whose joins the rule leaves alone.
    { kind: 'transparent', host: '::', port: 8000, mptcp: true, upstream: 'tcp' },
  ],
  accessNetworks: [
    { prefix: '10.71.1.0/24', access: 'cellular' },
    { prefix: '10.71.2.0/24', access: 'wlan' },
  ],
};

const hasTable = async (r: Rig): Promise<boolean> => (await r.cell.exec('nft', ['list', 'tables'], { allowFail: true })).includes('inet duocell_join');

/** The M-UE's subflows to :9000 as `ss -tni` shows them: local, remote, and the remote address id of the MPTCP ULP info. */
async function ueIds(r: Rig, port = 9000): Promise<Array<{ local: string; remote: string; remId: number | undefined }>> {
  const out = await r.mue.exec('ss', ['-Htni', 'state', 'established', 'dport', '=', `:${port}`], { allowFail: true });
  const rows: Array<{ local: string; remote: string; remId: number | undefined }> = [];
  for (const l of out.split('\n')) {
    // A socket's row, then its info on lines that start with white space.
    const f = /^\s/.test(l) ? [] : l.trim().split(/\s+/).filter((x) => /:\d+$/.test(x));
    if (f.length >= 2) rows.push({ local: f[0]!.replace(/%\w+/, ''), remote: f[1]!, remId: undefined });
    const m = /token:[0-9a-f]+\(id:\d+\)\/[0-9a-f]+\(id:(\d+)\)/.exec(l);
    if (m !== null && rows.length > 0) rows.at(-1)!.remId = Number(m[1]);
  }
  return rows;
}

t.test('join DNAT: the M-UE\'s join has an id of its own, a dead initial path is withdrawn, the join\'s id never (needs root, MPTCP, nft)', { skip: why === false ? false : why, timeout: 300_000 }, async (t) => {
  const r = await rig('ideal', `jdn${process.pid % 1000}`);
  t.teardown(() => r.topo.destroy());
  await applyShipped(r.cell);
  // Linux's default M-UE: takes no announcement.
  await r.mue.exec('ip', ['mptcp', 'limits', 'set', 'add_addr_accepted', '0', 'subflows', '4']);
  const srv = await XferServer.start(r.srv, '::', 8000, false, true);
  const app = await startDuocellRun(r.cell, board, { DUOCELL_LOG_LEVEL: 'debug' }, { tmpPrefix: 'dc-joindnat' });
  t.teardown(() => void app.child.kill('SIGKILL'));
  t.ok(await waitFor(async () => ((await hasTable(r)) ? true : undefined), 30_000, 100), 'the join DNAT table is installed by default');

  // Initial path cut.
  let ids: Awaited<ReturnType<typeof ueIds>> = [];
  let cellSide = '';
  const init = await round(r, srv, 'ran0', async () => {
    ids = await ueIds(r);
    cellSide = await r.cell.exec('ss', ['-Htn', 'state', 'established', 'sport', '=', ':9000'], { allowFail: true });
  });
  const wlan = ids.find((s) => s.local.startsWith('10.71.2.2:'));
  const cell = ids.find((s) => s.local.startsWith('10.71.1.2:'));
  t.ok(wlan !== undefined && cell !== undefined, `both subflows established before the cut (${JSON.stringify(ids)})`);
  t.equal(wlan?.remote, '10.71.0.1:9000', 'the M-UE joined the service address (the DNAT is undone on the replies)');
  t.ok(wlan?.remId !== undefined && wlan.remId !== 0, `the join's remote id at the M-UE is not 0 (${wlan?.remId})`);
  t.equal(cell?.remId, 0, 'the initial subflow keeps id 0');
  const v4 = (a: string): string => a.replace(/^\[::ffff:([\d.]+)\]/, '$1');
  const cellRows = cellSide.split('\n').map((l) => l.trim().split(/\s+/).filter((x) => /:\d+$/.test(x)).map(v4).join(' '));
  t.ok(cellRows.some((x) => /^10\.71\.2\.1:9000 10\.71\.2\.2:\d+$/.test(x)), `the cell's end of the join has the WLAN radio's address (${cellRows.join(', ')})`);
  t.ok(cellRows.some((x) => /^10\.71\.0\.1:9000 10\.71\.1\.2:\d+$/.test(x)), 'the initial subflow (MP_CAPABLE SYN) was not rewritten');
  t.ok(init.ok, `initial path cut: upload byte-exact${init.error === undefined ? '' : `: ${init.error}`}`);
  t.ok(init.midUpload, 'the cut came mid-upload');
  t.equal(init.rmAddr, 1, 'the M-UE received one REMOVE_ADDR (id 0)');
  t.equal(init.stale, 0, 'and found no subflow stale (it closed the dead one at once)');
  t.match(app.logs.join(''), /"ifname":"ran0","subflows":1,"backedUp":\d+,"withdrawn":1/, 'the cell withdrew id 0');

  // Other path cut: the DNATed join dies; its id is not withdrawn.
  const other = await round(r, srv, 'wap0');
  t.ok(other.ok, `other path cut: upload byte-exact${other.error === undefined ? '' : `: ${other.error}`}`);
  t.ok(other.midUpload, 'the cut came mid-upload');
  t.ok(other.before.some((s) => s.startsWith('10.71.2.2:')), `the join was there before the cut (${other.before.join(', ')})`);
  t.equal(other.rmAddr, 0, 'no REMOVE_ADDR for the DNATed join\'s id');
  t.match(app.logs.join(''), /"ifname":"wap0","subflows":1,"backedUp":\d+,"withdrawn":0/, 'the cell withdrew nothing');
  t.match(app.logs.join(''), /"unannounced":\["\d+:[1-9]\d*"\]/, 'and said why (the join\'s id was never announced)');

  // A transparent session (the M-UE's MPTCP upload to the server itself, intercepted): its join
  // goes to the server's address, which the rule never names; both subflows stay up, untouched.
  t.notMatch(await r.cell.exec('nft', ['list', 'table', 'inet', 'duocell_join']), /dport 8000/, 'no rule for the transparent listener\'s port');
  let tIds: Awaited<ReturnType<typeof ueIds>> = [];
  let tCell = '';
  let done = false;
  const up = transfer(r.mue, srv, { host: '10.71.3.2', port: 8000, mptcp: true, send: 24 << 20, timeoutMs: 90_000 }).finally(() => {
    done = true;
  });
  await waitFor(async () => {
    tIds = await ueIds(r, 8000);
    return tIds.length >= 2 || done ? true : undefined;
  }, 30_000, 50);
  tCell = await r.cell.exec('ss', ['-Htn', 'state', 'established', 'sport', '=', ':8000'], { allowFail: true });
  const tr = await up.then(() => ({ ok: true as const }), (e: Error) => ({ ok: false as const, e }));
  t.ok(tr.ok, `transparent upload byte-exact${tr.ok ? '' : `: ${tr.e.message}`}`);
  t.ok(tIds.some((s) => s.local.startsWith('10.71.1.2:')) && tIds.some((s) => s.local.startsWith('10.71.2.2:')), `transparent session: both subflows established (${JSON.stringify(tIds)})`);
  // Its join has an id of its own anyway (1 on Linux 6.18: the userspace PM does not take the
  // TPROXY'd join's local address for the connection's id-0 one; docs/relay.md), so the rule is
  // not needed there, and the withdrawal must keep that id too (the M-UE's WARN).
  t.equal(tIds.find((s) => s.local.startsWith('10.71.1.2:'))?.remId, 0, `transparent session: the initial subflow has id 0 (the join: ${tIds.find((s) => s.local.startsWith('10.71.2.2:'))?.remId})`);
  const tRows = tCell.split('\n').map((l) => l.trim().split(/\s+/).filter((x) => /:\d+$/.test(x)).map((a) => a.replace(/^\[::ffff:([\d.]+)\]/, '$1')).join(' ')).filter((x) => x !== '');
  t.ok(tRows.some((x) => /^10\.71\.3\.2:8000 10\.71\.2\.2:\d+$/.test(x)), `transparent session: the cell took the join on the server's address (${tRows.join(', ')})`);

  await stopDuocell(app);
  t.notOk(await hasTable(r), 'the join DNAT table is gone after duocell exits');
});

// Needs root, network namespaces and the kernel's MPTCP (runs in CI as root).
// Per-radio address ids for M-UE sessions (board `mueRadioAddresses`, wiring/pm.ts): an M-UE with
// a cellular and a WLAN access link uploads through the cell's explicit MPTCP listener to a
// plain-TCP server, and one access link dies mid-upload on both ends.
//   - with the setting, the cell sets the C flag and announces its WLAN address (id 2) to a
//     connection that came in over cellular: the M-UE joins 10.71.2.1 from its WLAN address, not
//     the service address. On the cut the cell withdraws the dead radio's id over the survivor
//     (REMOVE_ADDR; id 0 for the initial subflow's radio), so the M-UE counts MPTcpExtRmAddr and
//     closes its end of the dead subflow at once instead of waiting for its stale detection.
//     Also with the M-UE at Linux's default limits (add_addr_accepted 0): it still takes the one
//     announcement under the C flag and keeps two subflows.
//   - without it (and without the join DNAT, test/kernel/join-dnat.test.ts), every cell-side subflow has id 0, nothing is withdrawn, the
//     M-UE's counter stays put and its dead subflow is still there seconds later.
// Every upload must arrive byte-exact. Bounds are generous: "gone within 6 s" against "still
// there after 6 s" (the M-UE's own timers would take tens of seconds to give the subflow up).
import t from 'tap';
import fs from 'node:fs';
import { netnsUnavailable } from '../helpers/hosts.js';
import { startDuocellRun, waitFor } from '../helpers/appliance.js';
import { GONE_MS, round, stopDuocell } from '../helpers/mue-upload.js';
import { rig } from '../../bench/netns.js';
import { applyShipped } from '../../bench/sysctl.js';
import { XferServer, XFER } from '../../bench/xfer-run.js';

const why = (await netnsUnavailable()) || (fs.existsSync(XFER) ? false : `no ${XFER} (scripts/setup.sh builds dist/)`);

const board = (radioIds: boolean): Record<string, unknown> => ({
  name: 'test-mue-radio-ids',
  preset: 'cell',
  uplinks: [{ name: 'up', access: 'wlan', interface: 'up0' }],
  lan: { interfaces: ['ran0', 'wap0'] },
  web: { listen: [{ host: '127.0.0.1', port: 18097 }] },
  listeners: [{ kind: 'explicit', host: '::', port: 9000, mptcp: true, target: '10.71.3.2:8000', upstream: 'tcp' }],
  accessNetworks: [
    { prefix: '10.71.1.0/24', access: 'cellular' },
    { prefix: '10.71.2.0/24', access: 'wlan' },
  ],
  ...(radioIds ? { mueRadioAddresses: true } : { joinDnat: false }),
});

t.test('per-radio address ids: an M-UE upload\'s dead radio is withdrawn, and without them it is not (needs root, MPTCP)', { skip: why === false ? false : why, timeout: 300_000 }, async (t) => {
  const r = await rig('ideal', `uph${process.pid % 1000}`);
  t.teardown(() => r.topo.destroy());
  await applyShipped(r.cell);
  const joinInit = async (): Promise<string> => (await r.cell.exec('sysctl', ['-n', 'net.mptcp.allow_join_initial_addr_port'])).trim();
  t.equal(await joinInit(), '1', 'the shipped sysctls allow joins to the initial address');
  const srv = await XferServer.start(r.srv, '::', 8000, false, true);

  // With the setting.
  let app = await startDuocellRun(r.cell, board(true), { DUOCELL_LOG_LEVEL: 'info' }, { tmpPrefix: 'dc-radioids' });
  t.teardown(() => void app.child.kill('SIGKILL'));
  // The path manager starts after the listeners: wait for its sysctl write (and so its ADD_ADDRs).
  t.ok(await waitFor(async () => ((await joinInit()) === '0' ? true : undefined), 30_000, 100), 'the C flag is set while duocell runs with mueRadioAddresses');
  const wlanJoin = '10.71.2.2';
  for (const [label, accept] of [['M-UE accepting ADD_ADDR (limit 4)', 4], ['M-UE at Linux\'s default limits (add_addr_accepted 0)', 0]] as const) {
    await r.mue.exec('ip', ['mptcp', 'limits', 'set', 'add_addr_accepted', String(accept), 'subflows', '4']);
    const o = await round(r, srv, 'wap0');
    t.ok(o.ok, `${label}, WLAN cut: upload byte-exact${o.error === undefined ? '' : `: ${o.error}`}`);
    t.ok(o.midUpload, `${label}: the cut came mid-upload`);
    t.ok(o.before.some((s) => s.startsWith(`${wlanJoin}:`) && s.endsWith('10.71.2.1:9000')), `${label}: the WLAN join went to the cell's WLAN address (${o.before.join(', ')})`);
    t.notOk(o.before.some((s) => s.startsWith(`${wlanJoin}:`) && s.endsWith('10.71.0.1:9000')), `${label}: no join to the service address (the C flag)`);
    t.ok(o.rmAddr >= 1, `${label}: the M-UE received REMOVE_ADDR (MPTcpExtRmAddr +${o.rmAddr})`);
    t.ok(o.gone, `${label}: the M-UE closed its dead WLAN subflow within ${GONE_MS} ms, before the upload ended (${o.goneMs ?? '-'} ms)`);
  }
  await r.mue.exec('ip', ['mptcp', 'limits', 'set', 'add_addr_accepted', '4', 'subflows', '4']);
  const init = await round(r, srv, 'ran0');
  t.ok(init.ok, `initial subflow's radio cut: upload byte-exact${init.error === undefined ? '' : `: ${init.error}`}`);
  t.ok(init.midUpload, 'initial cut came mid-upload');
  t.ok(init.rmAddr >= 1, `initial cut: REMOVE_ADDR of id 0 reached the M-UE over the survivor (MPTcpExtRmAddr +${init.rmAddr})`);
  t.ok(init.gone, `initial cut: the M-UE closed its dead initial subflow within ${GONE_MS} ms, before the upload ended (${init.goneMs ?? '-'} ms)`);
  t.match(app.logs.join(''), /"ifname":"ran0","subflows":1,"backedUp":\d+,"withdrawn":1/, 'the cell logged the withdrawal');
  await stopDuocell(app);
  t.equal(await joinInit(), '1', 'the sysctl is put back on exit');

  // Without it (and without the join DNAT): the control.
  app = await startDuocellRun(r.cell, board(false), { DUOCELL_LOG_LEVEL: 'info' }, { tmpPrefix: 'dc-radioids' });
  const ctl = await round(r, srv, 'wap0');
  t.ok(ctl.ok, `control, WLAN cut: upload byte-exact${ctl.error === undefined ? '' : `: ${ctl.error}`}`);
  t.ok(ctl.midUpload, 'control: the cut came mid-upload');
  t.ok(ctl.before.some((s) => s.startsWith(`${wlanJoin}:`) && s.endsWith('10.71.0.1:9000')), `control: the WLAN join went to the service address (${ctl.before.join(', ')})`);
  t.equal(ctl.rmAddr, 0, 'control: no REMOVE_ADDR (every cell-side subflow has id 0)');
  t.notOk(ctl.gone, `control: the dead WLAN subflow stayed established while the upload ran (at most ${GONE_MS} ms watched)`);
  await stopDuocell(app);
});

// Needs root, network namespaces and the kernel's MPTCP (runs in CI as root).
// An upload through duocell across a handover, byte-exact: an M-UE with a cellular and a WLAN
// access link uploads to a plain-TCP server through the cell's explicit MPTCP listener (the fast
// path: native splice), and one access link dies mid-upload, on both ends, so that the cell's
// handover marks the subflow on it backup and destroys it (SOCK_DESTROY) and the M-UE's kernel
// reinjects on the survivor. The payload is the position pattern (bench/position.ts: each 8-byte
// word is its own offset); the server checks it as it arrives, so a lost, repeated or misplaced
// range fails with its offset and where the bytes there came from. Several rounds, alternating
// the initial subflow's path (cellular) and the other one (WLAN), so that a rare fault can show.
import t from 'tap';
import fs from 'node:fs';
import { netnsUnavailable } from '../helpers/hosts.js';
import { startDuocellRun, waitFor } from '../helpers/appliance.js';
import { rig, type Rig } from '../../bench/netns.js';
import { applyShipped } from '../../bench/sysctl.js';
import { transfer, XferServer, XFER } from '../../bench/xfer-run.js';
import { sleep } from '../../bench/lib.js';

const why = (await netnsUnavailable()) || (fs.existsSync(XFER) ? false : `no ${XFER} (scripts/setup.sh builds dist/)`);
const MiB = 1 << 20;
const SIZE = 10 * MiB;
const ROUNDS = 4;
const CUT_AT = 2 * MiB;

const board = {
  name: 'test-upload-handover',
  preset: 'cell',
  uplinks: [{ name: 'up', access: 'wlan', interface: 'up0' }],
  lan: { interfaces: ['ran0', 'wap0'] },
  web: { listen: [{ host: '127.0.0.1', port: 18094 }] },
  listeners: [{ kind: 'explicit', host: '::', port: 9000, mptcp: true, target: '10.71.3.2:8000', upstream: 'tcp' }],
  accessNetworks: [
    { prefix: '10.71.1.0/24', access: 'cellular' },
    { prefix: '10.71.2.0/24', access: 'wlan' },
  ],
};

/** Bytes the server's accepted connections on port 8000 have received (ss tcp_info). */
async function serverReceived(r: Rig): Promise<number> {
  const out = await r.srv.exec('ss', ['-Htni', 'state', 'established', 'sport', '= :8000'], { allowFail: true });
  let sum = 0;
  for (const m of out.matchAll(/bytes_received:(\d+)/g)) sum += Number(m[1]);
  return sum;
}

t.test('uploads through duocell across a handover arrive byte-exact (needs root, MPTCP)', { skip: why === false ? false : why, timeout: 180_000 }, async (t) => {
  const r = await rig('ideal', `upload${process.pid % 1000}`);
  t.teardown(() => r.topo.destroy());
  await applyShipped(r.cell);
  const srv = await XferServer.start(r.srv, '::', 8000, false, true);
  const app = await startDuocellRun(r.cell, board, { DUOCELL_LOG_LEVEL: 'info' }, { tmpPrefix: 'dc-upload' });
  t.teardown(() => void app.child.kill('SIGTERM'));

  for (let i = 0; i < ROUNDS; i++) {
    const dev = i % 2 === 0 ? 'ran0' : 'wap0';
    const what = dev === 'ran0' ? 'the initial subflow\'s path (ran0)' : 'the other path (wap0)';
    const handovers = app.logs.join('').split(`"ifname":"${dev}"`).length;
    let cutAt = 0;
    const up = transfer(r.mue, srv, { host: '10.71.0.1', port: 9000, mptcp: true, send: SIZE, trace: true, timeoutMs: 60_000 });
    const cut = (async () => {
      // Cut once the upload flows: the server's connection has 2 MiB (ss tcp_info).
      await waitFor(async () => ((await serverReceived(r)) >= CUT_AT ? true : undefined), 30_000, 50);
      cutAt = performance.timeOrigin + performance.now();
      await Promise.all([r.cell.linkSet(dev, 'down'), r.mue.linkSet(dev, 'down')]);
    })();
    try {
      const res = await up.then(
        (x) => ({ ok: true as const, x }),
        (e: Error) => ({ ok: false as const, e }),
      );
      await cut;
      // transfer() rejects unless the server got all SIZE bytes, every one at its own offset
      // (the position check's fault, if any, is in the message) and with the pattern's SHA-256.
      t.ok(res.ok, `round ${i + 1}, cut ${what}: ${res.ok ? `${SIZE} bytes, each at its own offset` : res.e.message}`);
      if (!res.ok) continue;
      const samples = res.x.serverSamples ?? [];
      const atCut = samples.filter(([x]) => x < cutAt).at(-1)?.[1] ?? 0;
      t.ok(atCut > 0 && atCut < SIZE, `round ${i + 1}: the path died mid-upload (${atCut} of ${SIZE} bytes at the server)`);
      // The cell's handover saw the link go and aborted the subflow on it (a link-down log line).
      const seen = await waitFor(() => (app.logs.join('').split(`"ifname":"${dev}"`).length > handovers ? true : undefined), 5000, 50);
      t.ok(seen, `round ${i + 1}: the cell's handover aborted the subflow on ${dev}`);
    } finally {
      await r.restore();
      await sleep(500);
    }
  }
});

import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { netnsUnavailable, Topology, type Host } from '../../src/sim/hosts.js';
import { ModemSimulator } from '../../src/sim/modem/sim.js';
import { bindWwan, simBoardModemConfig } from '../../src/sim/modem/board.js';
import { ModemManager, type ModemState } from '../../src/drivers/modem/manager.js';

/** Needs root (a network namespace) and socat (the modem's pseudo-terminals). */
const why = (await netnsUnavailable()) || (spawnSync('socat', ['-V']).status === 0 ? false : 'socat not installed');

function waitState(m: ModemManager, state: ModemState, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    if (m.state === state) return resolve();
    const timer = setTimeout(() => reject(new Error(`not ${state} within ${timeoutMs} ms (now ${m.state}: ${m.snapshot().reason})`)), timeoutMs);
    const on = (c: { state: ModemState }): void => {
      if (c.state === state) {
        clearTimeout(timer);
        m.off('state', on);
        resolve();
      }
    };
    m.on('state', on);
  });
}

async function wwan(h: Host): Promise<{ up: boolean; addrs: string[] }> {
  const j = JSON.parse(await h.ip('-j', 'addr', 'show', 'dev', 'wwan0')) as { flags: string[]; addr_info: { local: string; prefixlen: number; scope: string }[] }[];
  const l = j[0]!;
  return { up: l.flags.includes('UP'), addrs: l.addr_info.filter((a) => a.scope === 'global').map((a) => `${a.local}/${a.prefixlen}`).sort() };
}

t.test('modem kernel test (root, netns, socat): a QMI start network configures wwan0 from the WDS settings', { skip: why }, async (t) => {
  const topo = new Topology(`tmodem${process.pid % 1000}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tmodem-'));
  t.teardown(async () => {
    await topo.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const cell = await topo.host('cell');
  // this kernel has no dummy driver: a veth pair stands in for the qmi_wwan netdev
  await cell.ip('link', 'add', 'wwan0', 'type', 'veth', 'peer', 'name', 'wwan0p');
  await cell.ip('link', 'set', 'wwan0p', 'up');
  const links = { at: path.join(dir, 'ttyUSB2'), qmi: path.join(dir, 'cdc-wdm0') };
  const sim = new ModemSimulator(simBoardModemConfig(links, { registerDelayMs: 100 }));
  await sim.start();
  const hook = bindWwan(sim, cell);
  const m = new ModemManager({ ports: [links.qmi, links.at], apn: 'internet', ipFamily: 'ipv4v6', netInterface: 'wwan0', pollMs: 500, probeTimeoutMs: 600, backoffBaseMs: 200, backoffCapMs: 1000 });
  t.teardown(async () => {
    await m.stop();
    hook.detach();
    await sim.stop();
  });
  t.same(await wwan(cell), { up: false, addrs: [] }, 'wwan0 starts down, unaddressed');

  m.start();
  await waitState(m, 'connected', 15000);
  await hook.idle();
  const s = m.snapshot().settings!;
  t.equal(s.interface, 'wwan0');
  t.same(await wwan(cell), { up: true, addrs: [`${s.ipv4!.address}/${s.ipv4!.prefixLength}`, `${s.ipv6!.address}/${s.ipv6!.prefixLength}`].sort() }, 'wwan0 up with the WDS addresses');
  t.equal(s.ipv4!.gateway, '10.21.0.1');
  t.equal(s.ipv6!.gateway, 'fd00:21::1');

  await sim.act({ action: 'deregister' });
  await waitState(m, 'searching', 2000);
  await hook.idle();
  t.same(await wwan(cell), { up: false, addrs: [] }, 'registration lost: wwan0 down');
  await sim.act({ action: 'register' });
  await waitState(m, 'connected', 10000);
  await hook.idle();
  t.equal((await wwan(cell)).up, true, 'back up on re-registration');

  await sim.act({ action: 'vanish' });
  await waitState(m, 'absent', 3000);
  await hook.idle();
  t.equal((await wwan(cell)).up, false, 'modem unplugged: wwan0 down');
  await sim.act({ action: 'appear' });
  await waitState(m, 'connected', 15000);
  await hook.idle();
  t.equal((await wwan(cell)).addrs.length, 2, 'replugged: wwan0 addressed again without restarting the manager');
});

import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { spawnSync } from 'node:child_process';
import { ModemSimulator, type ModemSimConfig } from '../../src/sim/modem/sim.js';
import { ModemManager, type ModemManagerOptions } from '../../src/drivers/modem/manager.js';
import type { ModemState, StateChange, WdsSettings } from '../../src/drivers/modem/manager.js';
import { SerialTransport } from '../../src/drivers/modem/transport.js';
import type { DhcpLease, Lease } from '../../src/drivers/modem/dhcp-lease.js';
import { loadBoard } from '../../src/core/board.js';
import { modemFor, modemRefusal } from '../../src/wiring/modem.js';

/**
 * ModemManager (control 'at') against the AT-only simulated module on a real pty (needs socat), with a fake
 * DHCP lease source and a fake data interface (the kernel path is test/kernel/modem-at.test.ts):
 * the whole life over AT, PIN safety over AT (+CPIN?, AT+QPINC, pinDecision), and the wiring
 * of `modem.control: "at"`.
 */
const haveSocat = spawnSync('socat', ['-V']).status === 0;

function waitState(m: ModemManager, state: ModemState, timeoutMs: number, pred: (c: StateChange) => boolean = () => true): Promise<StateChange> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      m.off('state', on);
      reject(new Error(`modem did not reach ${state} within ${timeoutMs} ms (now ${m.state}: ${m.snapshot().reason})`));
    }, timeoutMs);
    const on = (c: StateChange): void => {
      if (c.state === state && pred(c)) {
        clearTimeout(timer);
        m.off('state', on);
        resolve(c);
      }
    };
    m.on('state', on);
  });
}

class FakeLease extends EventEmitter {
  stopped = 0;
  async acquire(): Promise<Lease> {
    return { address: '192.168.225.33', prefixLength: 24, gateway: '192.168.225.1', dns: ['192.168.225.1'], mtu: 1500 };
  }
  async stop(): Promise<void> {
    this.stopped++;
  }
}

async function rig(t: { teardown(fn: () => unknown): void }, simCfg: Partial<ModemSimConfig>, mgrCfg: Partial<ModemManagerOptions>) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tmodem-at-'));
  const sim = new ModemSimulator({ atLink: path.join(dir, 'ttyUSB2'), qmiLink: path.join(dir, 'none'), qmi: false, registerDelayMs: 100, ...simCfg });
  await sim.start();
  const applied: WdsSettings[] = [];
  const removed: string[] = [];
  const leases: FakeLease[] = [];
  const m = new ModemManager({
  control: 'at',
    ports: [sim.cfg.atLink],
    open: (p) => SerialTransport.open(p),
    apn: 'internet',
    netInterface: 'usb0',
    netif: { apply: async (s) => void applied.push(s), remove: async (why) => void removed.push(why) },
    linkUp: async () => undefined,
    lease: () => {
      const l = new FakeLease();
      leases.push(l);
      return l as unknown as DhcpLease;
    },
    pollMs: 300,
    probeTimeoutMs: 600,
    backoffBaseMs: 100,
    backoffCapMs: 500,
    rand: () => 0.5,
    ...mgrCfg,
  });
  t.teardown(async () => {
    await m.stop();
    await sim.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { sim, m, applied, removed, leases };
}

t.test('AT-only module over a pty (needs socat): connects by AT, loses and regains registration', { skip: haveSocat ? false : 'socat not installed' }, async (t) => {
  const { sim, m, applied, removed, leases } = await rig(t, {}, {});
  const dataEvents: boolean[] = [];
  sim.on('at-data', (e: { up: boolean }) => dataEvents.push(e.up));
  m.start();
  await waitState(m, 'connected', 15000);
  const s = m.snapshot();
  t.equal(s.info.model, 'EC25', 'model from AT+CGMM');
  t.equal((s.info as { family?: string }).family, 'quectel-ec2x', 'family from AT+CGMI/AT+CGMM');
  t.equal(s.registration?.registered, true);
  t.equal(s.registration?.operator, 'duocell sim', 'operator from AT+COPS?');
  t.equal(s.settings?.ipv4?.address, '192.168.225.33', 'settings from the lease');
  t.same(applied.map((a) => a.interface), ['usb0'], 'the data interface was configured once, for usb0');
  await new Promise((r) => setTimeout(r, 100)); // the module announces its netdev a moment after OK
  t.same(dataEvents, [true], 'the session was activated over AT (AT+QNETDEVCTL=1,1,1)');
  t.equal(sim.atDataCid, 1);
  const r = await m.atCommand('AT+CSQ', 2000);
  t.match(r.lines[0], /^\+CSQ: /, 'pass-through shares the queue');

  await sim.act({ action: 'deregister' });
  const c = await waitState(m, 'searching', 5000);
  t.match(c.reason, /registration lost/, 'deregistered by URC or poll');
  t.ok(removed.length >= 1, 'interface deconfigured');
  t.equal(leases[0]!.stopped, 1, 'DHCP client stopped');
  await sim.act({ action: 'register' });
  await waitState(m, 'connected', 10000);
  t.equal(applied.length, 2, 'configured again');

  await sim.act({ action: 'drop-data' }); // QMI-only action: no effect on the AT session
  await sim.act({ action: 'vanish' });
  await waitState(m, 'absent', 5000);
  t.equal(m.snapshot().registration, undefined, 'a vanished modem leaves no registration');
  t.equal(m.snapshot().signal, undefined, 'nor signal');
  await sim.act({ action: 'appear' });
  await waitState(m, 'connected', 15000);
  t.pass('reconnected after the module came back');
});

t.test('AT-only PIN safety: a wrong PIN is sent once, never again; no PIN configured is reported', { skip: haveSocat ? false : 'socat not installed' }, async (t) => {
  const { sim, m } = await rig(t, { pin: '1234' }, { pin: '0000' });
  m.start();
  const c = await waitState(m, 'sim-locked', 10000, (x) => x.error?.code === 'DC_MODEM_PIN_WRONG');
  t.match(c.error?.message ?? '', /rejected/);
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(sim.pinAttempts, 1, 'exactly one attempt with the wrong PIN');
  t.equal(sim.pinRetriesLeft, 2, 'two attempts left on the SIM');
  m.setPin('0000');
  await waitState(m, 'sim-locked', 5000, (x) => x.error !== undefined);
  t.equal(sim.pinAttempts, 1, 'the rejected PIN is not tried again after setPin with the same PIN');
  m.setPin('1234');
  await waitState(m, 'connected', 15000);
  t.equal(sim.pinAttempts, 2, 'the right PIN unlocked it');
});

t.test('AT-only: no PIN configured, and only one attempt left', { skip: haveSocat ? false : 'socat not installed' }, async (t) => {
  const a = await rig(t, { pin: '1234' }, {});
  a.m.start();
  const c = await waitState(a.m, 'sim-locked', 10000, (x) => x.error !== undefined);
  t.equal(c.error?.code, 'DC_MODEM_PIN_REQUIRED');
  const b = await rig(t, { pin: '1234' }, { pin: '1234' });
  b.sim.pinRetriesLeft = 1;
  b.m.start();
  const d = await waitState(b.m, 'sim-locked', 10000, (x) => x.error !== undefined);
  t.equal(d.error?.code, 'DC_MODEM_PIN_UNSAFE', 'the last attempt is never used');
  t.equal(b.sim.pinAttempts, 0);
});

t.test('modem.control "at" is wired (no longer refused)', async (t) => {
  const b = loadBoard('sim-at');
  t.equal(b.modem?.control, 'at');
  t.equal(modemRefusal(b), undefined);
  const m = modemFor(b, { DUOCELL_MODEM_LINKS: 'at=/nonexistent/at' });
  t.ok(m instanceof ModemManager && m.control === 'at', 'a ModemManager with the AT control channel on the AT link');
  t.equal(modemFor(b, {}), undefined, 'simulated without a running simulator: none');
});

import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { buildSim, SIM_ADDR } from '../../src/sim/board.js';
import { netnsUnavailable, type Host } from '../../src/sim/hosts.js';
import { ModemSimulator } from '../../src/sim/modem/sim.js';
import { EcmDhcpServer } from '../../src/sim/modem/ecm.js';
import { findUdhcpc } from '../../src/drivers/modem/dhcp-lease.js';

/**
 * An AT-only modem (`modem.control: "at"`) on the simulated board connects and its path
 * carries traffic: the simulator speaks AT only (no QMI port), the cell's usb0 is a veth whose
 * far end is the module, and the module's DHCP server (a real dnsmasq) starts only when
 * duocell activates the data session over AT (AT+QNETDEVCTL). duocell (a child in the cell
 * namespace: ModemManager (control 'at') + DataInterface + paths service) gets the address by DHCP
 * (udhcpc) and installs address, routes and source rule itself. Needs root, namespaces, socat,
 * dnsmasq and udhcpc.
 *
 * Also times: registration lost (+CEREG: 0 URC) → path down, and port gone → reconnected
 * after the port returns (printed as "# measured …", not asserted tightly).
 */
const has = (cmd: string, args: string[]): boolean => spawnSync(cmd, args).status === 0;
const why =
  (await netnsUnavailable()) ||
  (has('socat', ['-V']) ? false : 'socat not installed') ||
  (has('dnsmasq', ['--version']) ? false : 'dnsmasq not installed (Debian dnsmasq-base)') ||
  (findUdhcpc() !== undefined ? false : 'udhcpc not installed');
const here = path.dirname(fileURLToPath(import.meta.url));
const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript') || (a.startsWith('--import=') && a.includes('tsx')));
const now = (): number => performance.timeOrigin + performance.now();

interface Ev {
  ev: string;
  t: number;
  state?: string;
  type?: string;
  addresses?: string[];
  routing?: string;
  reason?: string;
  lines?: string[];
  final?: string;
  error?: string;
  info?: Record<string, unknown>;
  signal?: Record<string, unknown>;
}

class Child {
  readonly events: Ev[] = [];
  readonly #waiters = new Set<{ pred: (e: Ev) => boolean; resolve: (e: Ev) => void }>();
  stderr = '';
  constructor(readonly proc: import('node:child_process').ChildProcess) {
    readline.createInterface({ input: proc.stdout! }).on('line', (l) => {
      let e: Ev;
      try {
        e = JSON.parse(l) as Ev;
      } catch {
        return;
      }
      this.events.push(e);
      for (const w of this.#waiters) if (w.pred(e)) (this.#waiters.delete(w), w.resolve(e));
    });
    proc.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
  }
  wait(pred: (e: Ev) => boolean, timeoutMs: number, what: string, from = this.events.length): Promise<Ev> {
    const seen = this.events.slice(from).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (e: Ev) => (clearTimeout(timer), resolve(e)) };
      const timer = setTimeout(() => {
        this.#waiters.delete(w);
        reject(new Error(`${what}: not within ${timeoutMs} ms; last events ${JSON.stringify(this.events.slice(-5))}; stderr ${this.stderr.slice(-800)}`));
      }, timeoutMs);
      this.#waiters.add(w);
    });
  }
}

async function usb0(h: Host): Promise<{ up: boolean; addrs: string[] }> {
  const j = JSON.parse(await h.ip('-j', 'addr', 'show', 'dev', 'usb0')) as { flags: string[]; addr_info: { local: string; prefixlen: number; scope: string; family: string }[] }[];
  const l = j[0]!;
  return { up: l.flags.includes('UP'), addrs: l.addr_info.filter((a) => a.scope === 'global' && a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`).sort() };
}

const pathUp = (e: Ev): boolean => e.ev === 'path' && e.type === 'path-up';
const pathDown = (e: Ev): boolean => e.ev === 'path' && e.type === 'path-down';
const state = (s: string) => (e: Ev): boolean => e.ev === 'state' && e.state === s;

t.test('AT-only modem kernel test (root, netns, socat, dnsmasq, udhcpc): DHCP on usb0 after AT activation; the path carries traffic', { skip: why }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tmodem-at-'));
  const sim = await buildSim(`rat${process.pid % 10000}`, undefined, { modem: 'at' });
  t.teardown(async () => {
    await sim.topo.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const links = { at: path.join(dir, 'ttyUSB2'), qmi: path.join(dir, 'unused-qmi') };
  const modem = new ModemSimulator({ atLink: links.at, qmiLink: links.qmi, qmi: false, registerDelayMs: 100, nasIndications: false });
  // the module's DHCP server on its end of the veth (dc-conc side, 10.21.0.1), offering the cell 10.21.0.2
  const ecm = new EcmDhcpServer({ ns: sim.conc.ns, ifname: 'wwan0', offer: SIM_ADDR.cell.wwan0[0], gateway: SIM_ADDR.conc.wwan0[0], netmask: '255.255.255.0', mtu: 1500 });
  const ecmEvents: string[] = [];
  modem.on('at-data', (e: { up: boolean }) => {
    ecmEvents.push(e.up ? 'up' : 'down');
    void (e.up ? ecm.start() : ecm.stop()).catch((err: Error) => t.fail(`dnsmasq: ${err.message}`));
  });
  await modem.start();
  t.teardown(async () => {
    await modem.stop();
    await ecm.stop();
  });
  t.notOk(fs.existsSync(links.qmi), 'the AT-only modem has no QMI port');
  t.same(await usb0(sim.cell), { up: false, addrs: [] }, 'usb0 starts down, unaddressed (the simulator never addresses it)');
  t.equal(ecm.running, false, 'no DHCP server before the AT data session');

  const proc = sim.cell.spawn(process.execPath, [...loader, path.join(here, 'modem-at-child.ts'), links.at], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, DUOCELL_LOG_LEVEL: process.env.DUOCELL_LOG_LEVEL ?? 'silent' },
  });
  const child = new Child(proc);
  t.teardown(() => {
    if (proc.exitCode === null) proc.kill('SIGKILL');
  });

  // the child compiles its TypeScript first: slow on a loaded 2-core machine
  await child.wait((e) => e.ev === 'ready', 120000, 'child ready');
  const up = await child.wait(pathUp, 30000, 'cellular path up over usb0');
  t.same(ecmEvents, ['up'], 'duocell activated the data session over AT; the module then started its DHCP server');
  t.same((await usb0(sim.cell)).addrs, ['10.21.0.2/24'], 'usb0 carries the DHCP address, put there by duocell');
  t.same(up.addresses, ['10.21.0.2'], 'the path has the leased address');
  await child.wait((e) => e.ev === 'path' && e.routing === 'installed', 30_000, 'routing installed', 0);
  t.match(await sim.cell.ip('route', 'show', 'table', '21'), /default via 10\.21\.0\.1 dev usb0/, 'table 21: default via the DHCP router');
  t.match(await sim.cell.ip('route', 'show'), /default via 10\.21\.0\.1 dev usb0 proto 220 metric 50/, 'main table: the cellular default (metric 50)');
  t.match(await sim.cell.ip('rule', 'show'), /from 10\.21\.0\.2 lookup 21/, 'source rule for the leased address (installed by duocell)');
  const info = child.events.find((e) => e.ev === 'info')?.info;
  t.equal(info?.family, 'quectel-ec2x', 'family identified at probe from AT+CGMI/AT+CGMM');

  // traffic: from the leased address to the N-server behind the concentrator, over usb0
  const ping = await sim.cell.exec('busybox', ['ping', '-c', '2', '-W', '2', '-I', '10.21.0.2', SIM_ADDR.srv.srv0[0]]);
  t.match(ping, /2 (packets )?received/, 'the AT-only cellular path carries traffic (ICMP to dc-srv from the leased address)');

  // serving cell by family (Quectel AT+QENG) reaches the signal
  await child.wait((e) => e.ev === 'signal' && e.signal?.band === 3, 30_000, 'signal with band from AT+QENG', 0);
  t.pass('band from the family serving-cell query');

  // AT pass-through, serialised with the manager's own polling
  let from = child.events.length;
  proc.stdin!.write('at AT+CSQ\n');
  const csq = await child.wait((e) => e.ev === 'at', 30_000, 'pass-through reply', from);
  t.match(csq.lines?.[0] ?? '', /^\+CSQ: \d+,99$/, 'pass-through AT+CSQ answered in step');

  // registration lost: URC → path down, usb0 deconfigured, DHCP server stopped by the module
  from = child.events.length;
  const t0 = now();
  await modem.act({ action: 'deregister' });
  const down = await child.wait(pathDown, 30_000, 'path down after registration loss', from);
  const regLostMs = down.t - t0;
  await child.wait(state('searching'), 30_000, 'manager searching', from);
  t.same((await usb0(sim.cell)).addrs, [], 'registration lost: address removed');
  t.notMatch(await sim.cell.ip('route', 'show'), /dev usb0/, 'no route through usb0 is left');
  from = child.events.length;
  await modem.act({ action: 'register' });
  await child.wait(pathUp, 30000, 'path back up on re-registration', from);
  t.same((await usb0(sim.cell)).addrs, ['10.21.0.2/24'], 'back up on re-registration (a new lease)');

  // the module vanishes and comes back
  from = child.events.length;
  await modem.act({ action: 'vanish' });
  await child.wait(state('absent'), 30_000, 'absent after vanish', from);
  await child.wait(pathDown, 30_000, 'path down after vanish', from);
  from = child.events.length;
  const t1 = now();
  await modem.act({ action: 'appear' });
  const back = await child.wait(pathUp, 30000, 'path up after the modem returned', from);
  const reconnectMs = back.t - t1;
  const timeline = child.events.slice(from).filter((e) => e.ev === 'state' || e.ev === 'path').map((e) => `${(e.t - t1).toFixed(0)} ${e.ev === 'state' ? e.state : e.type}`);
  t.comment(`reconnect timeline (ms after the port returned): ${timeline.join(', ')}; DHCP server starts ${ecm.starts}`);
  t.same((await usb0(sim.cell)).addrs, ['10.21.0.2/24'], 'replugged: usb0 addressed again without restarting duocell');

  proc.stdin!.write('stop\n');
  await child.wait((e) => e.ev === 'stopped', 30_000, 'child stopped');
  t.same((await usb0(sim.cell)).addrs, [], 'stopped: address removed');
  t.comment(`measured (AT-only): registration lost (+CEREG URC) → path down ${regLostMs.toFixed(1)} ms; port gone → reconnected after it returned ${reconnectMs.toFixed(0)} ms`);
  t.ok(regLostMs > 0 && reconnectMs > 0, 'timed');
});

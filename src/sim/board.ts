import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuocellError } from '../core/errors.js';
import { sh, Topology, type Host, type WireSpawner } from './hosts.js';
import { profileShape, worldProfiles, type LinksWorld } from './links.js';

/**
 * The simulated board (DESIGN.md "Simulated board sim"):
 *
 *   dc-mue ==[ran0 cellular 20M | wap0 WLAN 30M]== dc-cell ==[wwan0 20M | wlan0 30M]== dc-conc --- dc-srv
 *   dc-lan --[lan0]-- dc-cell                          dc-cell --[mgmt0]-- root namespace (web page)
 *
 * Addresses (IPv4 and IPv6 on every link):
 *   ran0  10.11.0.0/24 fd00:11::/64   mue .2  cell .1
 *   wap0  10.12.0.0/24 fd00:12::/64   mue .2  cell .1
 *   lan0  10.13.0.0/24 fd00:13::/64   lan .2  cell .1
 *   wwan0 10.21.0.0/24 fd00:21::/64   cell .2 conc .1
 *   wlan0 10.22.0.0/24 fd00:22::/64   cell .2 conc .1
 *   srv0  10.31.0.0/24 fd00:31::/64   conc .1 srv .2
 *   mgmt0 10.99.0.0/30                root .1 cell .2
 *   lo    10.10.0.1/32 fd00:10::1/128 the cell's service address (explicit listeners): on no
 *         radio, so losing one radio never takes the address the UE talks to away
 *   lo    10.20.0.1/32 fd00:20::1/128 dc-conc: the concentrators' SHARED service address (what
 *         cells are configured with); the concentrator refuses MPTCP joins on it and announces
 *         its own link addresses instead (board/concentrator-sim.json explicitSteering)
 * dc-srv runs an N-server (plain TCP, port 8000) and an M-server (MPTCP, port 8001).
 *
 * Links (`opts.links`, src/sim/links.ts): `realistic` runs the cellular links (ran0, wwan0)
 * with the `lte` profile and the WLAN links (wap0, wlan0) with `wlan`, through delay lines in
 * dc-wire; `ideal` (buildSim's default) makes them plain veth pairs at the same rates (a tbf
 * at each sender; `opts.rateIn: 'delayline'` puts the rate in a delay line with no delay
 * instead, as the benchmarks' ideal world does, bench/world.ts). lan0 and srv0 are always ideal.
 */

export const SIM_PREFIX = 'dc';
export const SIM_RATES = { cellular: 20, wlan: 30 };

export interface SimLayout {
  topo: Topology;
  mue: Host;
  cell: Host;
  conc: Host;
  srv: Host;
  lan: Host;
}

export const SIM_ADDR = {
  mue: { ran0: ['10.11.0.2', 'fd00:11::2'], wap0: ['10.12.0.2', 'fd00:12::2'] },
  cell: {
    ran0: ['10.11.0.1', 'fd00:11::1'],
    wap0: ['10.12.0.1', 'fd00:12::1'],
    lan0: ['10.13.0.1', 'fd00:13::1'],
    wwan0: ['10.21.0.2', 'fd00:21::2'],
    wlan0: ['10.22.0.2', 'fd00:22::2'],
    mgmt0: ['10.99.0.2'],
    service: ['10.10.0.1', 'fd00:10::1'],
  },
  conc: { wwan0: ['10.21.0.1', 'fd00:21::1'], wlan0: ['10.22.0.1', 'fd00:22::1'], srv0: ['10.31.0.1', 'fd00:31::1'], service: ['10.20.0.1', 'fd00:20::1'] },
  srv: { srv0: ['10.31.0.2', 'fd00:31::2'] },
  lan: { lan0: ['10.13.0.2', 'fd00:13::2'] },
} as const;

const withLen = (a: readonly string[]): string[] => a.map((x) => (x.includes(':') ? `${x}/64` : `${x}/24`));

/** Build the sim's namespaces and links. Also used by tests with their own prefix. */
/**
 * `pathManager`: the cell's MPTCP path manager. `userspace` is what the box's sysctl drop-in
 * sets (duocell makes the cell's own subflows and steers per connection; `duocell sim up` uses
 * it); the default `kernel` (the in-kernel PM with the WLAN `subflow` endpoint) is for tests
 * whose cell is not duocell run.
 */
export async function buildSim(
  prefix = SIM_PREFIX,
  rates = SIM_RATES,
  opts: { modem?: boolean | 'at'; pathManager?: 'kernel' | 'userspace'; links?: LinksWorld; rateIn?: 'tbf' | 'delayline'; spawnWire?: WireSpawner } = {},
): Promise<SimLayout> {
  const topo = new Topology(prefix, opts.spawnWire === undefined ? {} : { spawnWire: opts.spawnWire });
  const world = worldProfiles(opts.links ?? 'ideal');
  // `rateIn`: where the radio links' rate is enforced (src/sim/links.ts); default the senders' tbf.
  const at = opts.rateIn === undefined ? {} : { rateIn: opts.rateIn };
  const cellular = { ...profileShape(world.cellular, rates.cellular), ...at };
  const wlan = { ...profileShape(world.wlan, rates.wlan), ...at };
  try {
    const mue = await topo.host('mue');
    const cell = await topo.host('cell', { forward: true });
    const conc = await topo.host('conc', { forward: true });
    const srv = await topo.host('srv');
    const lan = await topo.host('lan');
    const A = SIM_ADDR;
    await topo.link(mue, 'ran0', cell, 'ran0', { a: withLen(A.mue.ran0), b: withLen(A.cell.ran0), ...cellular });
    await topo.link(mue, 'wap0', cell, 'wap0', { a: withLen(A.mue.wap0), b: withLen(A.cell.wap0), ...wlan });
    await topo.link(lan, 'lan0', cell, 'lan0', { a: withLen(A.lan.lan0), b: withLen(A.cell.lan0) });
    // With the modem simulator, wwan0 gets its address (and comes up) from the QMI data session.
    // An AT-only modem (`modem: 'at'`): the cell's end is the module's ECM/NCM netdev usb0, the
    // far end the module itself (its DHCP server, src/sim/modem/ecm.ts, runs there once the AT
    // data session is active); duocell addresses usb0 from the DHCP lease.
    const modem = opts.modem === true || opts.modem === 'at';
    const cellIf = opts.modem === 'at' ? 'usb0' : 'wwan0';
    await topo.link(cell, cellIf, conc, 'wwan0', { a: modem ? [] : withLen(A.cell.wwan0), b: withLen(A.conc.wwan0), ...cellular });
    if (modem) await cell.linkSet(cellIf, 'down');
    await topo.link(cell, 'wlan0', conc, 'wlan0', { a: withLen(A.cell.wlan0), b: withLen(A.conc.wlan0), ...wlan });
    await topo.link(conc, 'srv0', srv, 'srv0', { a: withLen(A.conc.srv0), b: withLen(A.srv.srv0) });
    await cell.ip('addr', 'add', `${A.cell.service[0]}/32`, 'dev', 'lo');
    await cell.ip('addr', 'add', `${A.cell.service[1]}/128`, 'dev', 'lo');
    // Reached by the cell over its default route (either uplink).
    await conc.ip('addr', 'add', `${A.conc.service[0]}/32`, 'dev', 'lo');
    await conc.ip('addr', 'add', `${A.conc.service[1]}/128`, 'dev', 'lo');

    // M-UE: default via the cellular access, WLAN by source; MPTCP adds a WLAN subflow.
    for (const [i, fam] of [[0, '-4'], [1, '-6']] as const) {
      await mue.ip(fam, 'route', 'replace', 'default', 'via', A.cell.ran0[i], 'dev', 'ran0');
      await mue.sourceRoute(A.mue.ran0[i], 'ran0', A.cell.ran0[i], 11);
      await mue.sourceRoute(A.mue.wap0[i], 'wap0', A.cell.wap0[i], 12);
      await mue.mptcpEndpoint(A.mue.wap0[i], 'wap0', ['subflow']);
      await lan.ip(fam, 'route', 'replace', 'default', 'via', A.cell.lan0[i], 'dev', 'lan0');
      // Cell: default via cellular uplink, WLAN uplink by source; MPTCP endpoint on WLAN.
      if (modem) {
        // duocell installs the cellular table-21 source rule itself (paths service); the sim adds none.
        // duocell adds the cellular default (metric 50) when its data session is up; WLAN is the fall-back
        await cell.ip(fam, 'route', 'replace', 'default', 'via', A.conc.wlan0[i], 'dev', 'wlan0', 'metric', '100');
      } else {
        await cell.ip(fam, 'route', 'replace', 'default', 'via', A.conc.wwan0[i], 'dev', 'wwan0');
        await cell.sourceRoute(A.cell.wwan0[i], 'wwan0', A.conc.wwan0[i], 21);
      }
      await cell.sourceRoute(A.cell.wlan0[i], 'wlan0', A.conc.wlan0[i], 22);
      await cell.mptcpEndpoint(A.cell.wlan0[i], 'wlan0', ['subflow']);
      // Concentrator: the cell's networks behind the cell (cellular path for the return route).
      for (const net of i === 0 ? ['10.11.0.0/24', '10.12.0.0/24', '10.13.0.0/24'] : ['fd00:11::/64', 'fd00:12::/64', 'fd00:13::/64']) {
        await conc.ip(fam, 'route', 'replace', net, 'via', A.cell.wwan0[i], 'dev', 'wwan0');
      }
      await srv.ip(fam, 'route', 'replace', 'default', 'via', A.conc.srv0[i], 'dev', 'srv0');
    }
    await mue.mptcpLimits(4, 4);
    await cell.mptcpLimits(4, 4);
    if (opts.pathManager === 'userspace') {
      // as systemd/60-duocell.conf does on the box
      await cell.sysctl('net.mptcp.pm_type', 1);
      await cell.sysctl('net.ipv4.tcp_notsent_lowat', 16384);
      // ping sockets for the ICMP path probes (a new namespace allows nobody: "1 0")
      await cell.sysctl('net.ipv4.ping_group_range', '0 2147483647');
    }
    await conc.mptcpLimits(4, 4);
    await srv.mptcpLimits(4, 4);
    return { topo, mue, cell, conc, srv, lan };
  } catch (e) {
    await topo.destroy();
    throw e;
  }
}

/** Where `duocell sim up` records what it started, so `sim down` can undo it. */
export function simRunDir(): string {
  return process.env.DUOCELL_SIM_RUN_DIR ?? '/run/duocell-sim';
}

export function projectRoot(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const up of ['../..', '../../..']) {
    const d = path.resolve(here, up);
    if (fs.existsSync(path.join(d, 'package.json'))) return d;
  }
  return path.resolve(here, '../..');
}

/** The management link from the root namespace into dc-cell (the web page's way in). */
export async function addMgmtLink(cell: Host): Promise<void> {
  const rootIf = `${cell.topo.prefix}-mgmt`.slice(0, 15);
  await sh('ip', ['link', 'del', rootIf], { allowFail: true });
  await sh('ip', ['link', 'add', rootIf, 'type', 'veth', 'peer', 'name', `${rootIf}-c`.slice(0, 15)]);
  await sh('ip', ['link', 'set', `${rootIf}-c`.slice(0, 15), 'netns', cell.ns, 'name', 'mgmt0']);
  await sh('ip', ['addr', 'add', '10.99.0.1/30', 'dev', rootIf]);
  await sh('ip', ['link', 'set', rootIf, 'up']);
  await cell.ip('addr', 'add', '10.99.0.2/30', 'dev', 'mgmt0');
  await cell.ip('link', 'set', 'mgmt0', 'up');
}

export async function simExists(prefix = SIM_PREFIX): Promise<boolean> {
  const list = await sh('ip', ['netns', 'list'], { allowFail: true });
  return list.split('\n').some((l) => l.startsWith(`${prefix}-cell`));
}

/** Remove every namespace and process of the sim (idempotent). */
export async function simDown(prefix = SIM_PREFIX): Promise<void> {
  const dir = simRunDir();
  if (fs.existsSync(dir)) {
    for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.pid'))) {
      const pid = Number(fs.readFileSync(path.join(dir, f), 'utf8'));
      if (Number.isInteger(pid) && pid > 1) {
        // Detached: each has its own process group (a shell loop and what it runs).
        for (const target of [-pid, pid]) {
          try {
            process.kill(target, 'SIGTERM');
          } catch {
            /* already gone */
          }
        }
      }
      fs.rmSync(path.join(dir, f), { force: true });
    }
  }
  await new Promise((r) => setTimeout(r, 300));
  // Every namespace of the sim: the board's, and those `sim up --concentrators N` adds (dc-pool-*).
  const list = await sh('ip', ['netns', 'list'], { allowFail: true });
  const names = list.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(`${prefix}-`));
  for (const n of names) await sh('ip', ['netns', 'del', n], { allowFail: true });
  await sh('ip', ['link', 'del', `${prefix}-mgmt`.slice(0, 15)], { allowFail: true });
}

export function assertRoot(): void {
  if (process.getuid?.() !== 0) throw new DuocellError('DC_SIM_STATE', 'the simulated board needs root (network namespaces)');
}

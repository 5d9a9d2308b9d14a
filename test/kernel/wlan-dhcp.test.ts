import t from 'tap';
import readline from 'node:readline';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { netnsUnavailable, sh } from '../../src/sim/hosts.js';
import { EcmDhcpServer } from '../../src/sim/modem/ecm.js';
import { findUdhcpc } from '../../src/drivers/dhcp/lease.js';

/**
 * The WLAN uplink's DHCP step on the host kernel (needs root, namespaces, dnsmasq and udhcpc):
 * a station namespace whose `wlan0` is one end of a veth, and an access-point namespace whose
 * end runs a real DHCP server (dnsmasq). nl80211 is not simulated here (a veth is no radio: the
 * association itself is covered by the QEMU boot test with mac80211_hwsim); the child is told
 * when wpa_supplicant would have connected. Checked: the lease is obtained by udhcpc and applied
 * by duocell through rtnetlink (address, main-table default route via the lease's router, metric
 * 20); a link loss keeps the address and a re-connection asks again; stop removes the lease and
 * leaves the link up (it is wpa_supplicant's).
 */
const why =
  (await netnsUnavailable()) ||
  (spawnSync('dnsmasq', ['--version']).status === 0 ? false : 'dnsmasq not installed (Debian dnsmasq-base)') ||
  (findUdhcpc() !== undefined ? false : 'udhcpc not installed');
const here = path.dirname(fileURLToPath(import.meta.url));
const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript') || (a.startsWith('--import=') && a.includes('tsx')));

interface Ev {
  ev: string;
  address?: string;
  gateway?: string;
  prefixLength?: number;
  why?: string;
}

function events(proc: ChildProcess): { list: Ev[]; wait(pred: (e: Ev) => boolean, ms: number, what: string, from?: number): Promise<Ev>; stderr: () => string } {
  const list: Ev[] = [];
  const waiters = new Set<{ pred: (e: Ev) => boolean; resolve: (e: Ev) => void }>();
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
  readline.createInterface({ input: proc.stdout! }).on('line', (l) => {
    let e: Ev;
    try {
      e = JSON.parse(l) as Ev;
    } catch {
      return;
    }
    list.push(e);
    for (const w of waiters) if (w.pred(e)) (waiters.delete(w), w.resolve(e));
  });
  return {
    list,
    stderr: () => err,
    wait(pred, ms, what, from = list.length) {
      const seen = list.slice(from).find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const w = { pred, resolve: (e: Ev) => (clearTimeout(timer), resolve(e)) };
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`${what}: not within ${ms} ms; events ${JSON.stringify(list.slice(-5))}; stderr ${err.slice(-600)}`));
        }, ms);
        waiters.add(w);
      });
    },
  };
}

t.test('WLAN uplink DHCP (root, netns, dnsmasq, udhcpc): lease by udhcpc, applied through rtnetlink', { skip: why }, async (t) => {
  const sta = `radios-dhcp-sta-${process.pid}`;
  const ap = `radios-dhcp-ap-${process.pid}`;
  const ip = (...a: string[]): Promise<string> => sh('ip', a);
  await ip('netns', 'add', sta);
  await ip('netns', 'add', ap);
  t.teardown(async () => {
    await sh('ip', ['netns', 'del', sta], { allowFail: true });
    await sh('ip', ['netns', 'del', ap], { allowFail: true });
  });
  await ip('-n', sta, 'link', 'add', 'wlan0', 'type', 'veth', 'peer', 'name', 'apwl', 'netns', ap);
  await ip('-n', ap, 'addr', 'add', '10.78.0.1/24', 'dev', 'apwl');
  await ip('-n', ap, 'link', 'set', 'apwl', 'up');
  await ip('-n', sta, 'link', 'set', 'wlan0', 'up'); // wpa_supplicant's doing on a real radio
  const server = new EcmDhcpServer({ ns: ap, ifname: 'apwl', offer: '10.78.0.57', gateway: '10.78.0.1', netmask: '255.255.255.0', mtu: 1500 });
  await server.start();
  t.teardown(() => server.stop());

  const proc = spawn('ip', ['netns', 'exec', sta, process.execPath, ...loader, path.join(here, 'wlan-dhcp-child.ts'), 'wlan0'], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, DUOCELL_LOG_LEVEL: process.env.DUOCELL_LOG_LEVEL ?? 'silent' },
  });
  t.teardown(() => {
    if (proc.exitCode === null) proc.kill('SIGKILL');
  });
  const child = events(proc);
  await child.wait((e) => e.ev === 'ready', 120_000, 'child ready'); // it compiles its TypeScript first
  const addr = async (): Promise<string> => ip('-n', sta, '-4', '-o', 'addr', 'show', 'dev', 'wlan0');

  t.notMatch(await addr(), /inet /, 'wlan0 starts without an address');
  const t0 = Date.now();
  proc.stdin!.write('up\n');
  const lease = await child.wait((e) => e.ev === 'lease', 30_000, 'first lease');
  t.comment(`measured: lease applied ${Date.now() - t0} ms after the link came up (udhcpc + dnsmasq + rtnetlink)`);
  t.same({ address: lease.address, prefixLength: lease.prefixLength, gateway: lease.gateway }, { address: '10.78.0.57', prefixLength: 24, gateway: '10.78.0.1' }, 'the lease dnsmasq offered');
  t.match(await addr(), /inet 10\.78\.0\.57\/24 /, 'wlan0 carries the leased address, put there by duocell');
  t.match(await ip('-n', sta, 'route', 'show', 'default'), /default via 10\.78\.0\.1 dev wlan0 proto 220 metric 20/, 'main table: default via the lease router (metric 20)');

  // disassociated: the client stops, the address stays; re-connected: it asks again
  const from = child.list.length;
  proc.stdin!.write('down\n');
  await new Promise((r) => setTimeout(r, 500));
  t.match(await addr(), /inet 10\.78\.0\.57\/24 /, 'a link loss keeps the address (the next association asks again)');
  t.notOk(child.list.slice(from).some((e) => e.ev === 'lost'), 'no lease lost on a link loss');
  proc.stdin!.write('up\n');
  const again = await child.wait((e) => e.ev === 'lease', 30_000, 'lease after re-connection', from);
  t.equal(again.address, '10.78.0.57', 're-connected: the same lease, asked for again');

  proc.stdin!.write('stop\n');
  await child.wait((e) => e.ev === 'stopped', 15_000, 'child stopped');
  t.notMatch(await addr(), /inet 10\.78\.0\.57/, 'stop removes the leased address');
  t.notMatch(await ip('-n', sta, 'route', 'show', 'default'), /10\.78\.0\.1/, 'and the default route via the lease');
  t.match(await ip('-n', sta, 'link', 'show', 'wlan0'), /[<,]UP[,>]/, 'the link stays up (it is wpa_supplicant\'s)');
});

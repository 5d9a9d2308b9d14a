// Needs root and network namespaces (runs in CI as root). The product's path measurement by ICMP
// echo (services/paths/measure.ts + drivers/probe/icmp.ts: ping sockets bound to each uplink's
// device and address) against the link emulator: a cell with a cellular uplink shaped `lte`
// (40 ms RTT) and a WLAN uplink shaped `wlan` (8 ms, also over IPv6), both to one network host.
// The far side runs NO responder: its plain kernel answers ping, as a real gateway does. The
// cell's ping_group_range is the shipped drop-in's (systemd/60-duocell.conf).
//   1. RTT per path (IPv4 and ICMPv6) within ±2 ms of the emulator's setting (the bound),
//      and never below the link's floor (it left through its own uplink).
//   2. A path that policy forbids, or that is down, sends no probe: echo requests are counted
//      per interface at the far end (nft), with the other path probed as the positive control.
//   3. Bad ICMP sent at the probe socket (wrong identifier, unknown sequence, truncated, wrong
//      type, noise) is dropped: the meter keeps measuring, no crash, the RTT stays right.
//   4. Without the drop-in's ping_group_range the probe socket is refused with a clear code.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Topology, netnsUnavailable, type Host } from '../helpers/hosts.js';
import { profileShape } from '../../src/sim/links.js';
import { realtime } from '../../src/sim/realtime.js';
import type { PathMeasure } from '../../src/services/paths/measure.js';
import { parseSysctlConf, SHIPPED_SYSCTL } from '../../bench/sysctl.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CHILD = path.resolve(here, 'paths-icmp-child.ts');
const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript') || (a.startsWith('--import=') && a.includes('tsx')));
const why = await netnsUnavailable();

type Out = { figures: Record<string, PathMeasure | null>; counters: { sent: number; received: number; dropped: number }; icmp: { sent: number; matched: number; dropped: number } };
type PathCfg = { name: string; access: 'cellular' | 'wlan'; interface: string; local: string; gateway: string; state: 'up' | 'down' };

const CELL = { c4: '10.183.1.2', w4: '10.183.2.2', w6: 'fd00:183:2::2' };
const GW = { c4: '10.183.1.1', w4: '10.183.2.1', w6: 'fd00:183:2::1' };
const PATHS: Record<'cellular' | 'wlan' | 'wlan6', PathCfg> = {
  cellular: { name: 'cellular', access: 'cellular', interface: 'wwan0', local: CELL.c4, gateway: GW.c4, state: 'up' },
  wlan: { name: 'wlan', access: 'wlan', interface: 'wlan0', local: CELL.w4, gateway: GW.w4, state: 'up' },
  wlan6: { name: 'wlan6', access: 'wlan', interface: 'wlan0', local: CELL.w6, gateway: GW.w6, state: 'up' },
};

/** Start the child in the cell; resolves with a function that awaits its final line. */
async function runChild(cell: Host, cfg: { intervalMs: number; durationMs: number; forbid?: string[]; paths: PathCfg[] }): Promise<{ done: Promise<Out>; exit: Promise<number | null> }> {
  const c = cell.spawn(...realtime([process.execPath, ...loader, CHILD, JSON.stringify(cfg)]));
  let buf = '';
  let err = '';
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  c.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const l = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (l.startsWith('{"ready"') || l.startsWith('{"figures"')) lines.push(l);
      waiters.splice(0).forEach((w) => w());
    }
  });
  c.stderr!.on('data', (d: Buffer) => void (err += d.toString()));
  const exit = new Promise<number | null>((resolve) => c.once('exit', (code) => resolve(code)));
  const line = (n: number): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (lines.length > n) resolve(lines[n]!);
        else waiters.push(check);
      };
      void exit.then((code) => (lines.length > n ? resolve(lines[n]!) : reject(new Error(`child exited ${code} before line ${n}: ${err.slice(-2000)}`))));
      check();
    });
  await line(0);
  return { done: line(1).then((l) => JSON.parse(l) as Out), exit };
}

async function echoRequests(inet: Host): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const n of ['c0', 'w0', 'w0v6']) {
    const text = await inet.exec('nft', ['list', 'counter', 'inet', 'icmpcount', n]);
    out[n] = Number(/packets (\d+)/.exec(text)?.[1] ?? NaN);
  }
  return out;
}

const delta = (a: Record<string, number>, b: Record<string, number>): Record<string, number> => Object.fromEntries(Object.keys(b).map((k) => [k, b[k]! - (a[k] ?? 0)]));

t.test('path measurement by ICMP echo: RTT per path, no probe on a forbidden or down path, bad ICMP ignored (needs root, namespaces)', { skip: why === false ? false : why, timeout: 240_000 }, async (t) => {
  const topo = new Topology(`icmp${process.pid}`);
  t.teardown(() => topo.destroy());
  const cell = await topo.host('cell');
  const inet = await topo.host('net', { forward: true });
  const lte = profileShape('lte');
  const wlan = profileShape('wlan');
  await topo.link(cell, 'wwan0', inet, 'c0', { a: [`${CELL.c4}/24`], b: [`${GW.c4}/24`], ...lte });
  await topo.link(cell, 'wlan0', inet, 'w0', { a: [`${CELL.w4}/24`, `${CELL.w6}/64`], b: [`${GW.w4}/24`, `${GW.w6}/64`], ...wlan });
  // per-uplink source routing, as the routing keeper installs it on the box
  await cell.sourceRoute(CELL.c4, 'wwan0', GW.c4, 201);
  await cell.sourceRoute(CELL.w4, 'wlan0', GW.w4, 202);
  await cell.sourceRoute(CELL.w6, 'wlan0', GW.w6, 202);
  // IPv6 addresses usable (duplicate address detection done) before any probe binds to them
  for (let i = 0; i < 100; i++) {
    const tent = (await cell.ip('-6', 'addr', 'show', 'tentative')) + (await inet.ip('-6', 'addr', 'show', 'tentative'));
    if (!tent.includes('inet6')) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  // the box's ping_group_range, from the shipped drop-in (a new namespace starts at "1 0": nobody)
  const pgr = parseSysctlConf(fs.readFileSync(SHIPPED_SYSCTL, 'utf8'), '60-duocell.conf').find((s) => s.key === 'net.ipv4.ping_group_range');
  t.ok(pgr !== undefined, 'the shipped sysctl drop-in sets net.ipv4.ping_group_range');
  // echo requests counted per interface where they arrive (no responder: the kernel answers)
  const rules = [
    'add table inet icmpcount',
    'add counter inet icmpcount c0',
    'add counter inet icmpcount w0',
    'add counter inet icmpcount w0v6',
    'add chain inet icmpcount in { type filter hook input priority 0; policy accept; }',
    'add rule inet icmpcount in iifname "c0" icmp type echo-request counter name "c0"',
    'add rule inet icmpcount in iifname "w0" icmp type echo-request counter name "w0"',
    'add rule inet icmpcount in iifname "w0" icmpv6 type echo-request counter name "w0v6"',
  ];
  // nft joins its arguments into one command: each rule goes as one argument
  for (const r of rules) await inet.exec('nft', ['--', r]);

  await t.test('without the drop-in the kernel refuses the ping socket: DC_PROBE_PING_DENIED, nothing sent', async (t) => {
    await cell.sysctl('net.ipv4.ping_group_range', '1 0');
    const c = await runChild(cell, { intervalMs: 100, durationMs: 800, paths: [PATHS.wlan] });
    const out = await c.done;
    t.equal(out.figures.wlan, null, 'the path is not measured');
    t.equal(out.counters.sent, 0, 'no probe sent');
    t.equal(await c.exit, 0, 'no crash');
  });
  await cell.sysctl('net.ipv4.ping_group_range', pgr!.value);

  await t.test('RTT per path within ±2 ms of the emulator (lte 40 ms, wlan 8 ms, wlan over ICMPv6)', async (t) => {
    const before = await echoRequests(inet);
    // 10 probes/s (a test setting; the product's default is 1/s) for 15 s: ~150 samples per path
    const c = await runChild(cell, { intervalMs: 100, durationMs: 15_000, paths: [PATHS.cellular, PATHS.wlan, PATHS.wlan6] });
    const res = await c.done;
    t.equal(await c.exit, 0, 'the child exits cleanly');
    const got = delta(before, await echoRequests(inet));
    for (const [name, shape] of [['cellular', lte], ['wlan', wlan], ['wlan6', wlan]] as const) {
      const f = res.figures[name]!;
      const want = 2 * shape.delayMs!;
      t.comment(`${name}: configured RTT ${want} ms ±${2 * shape.jitterMs!}; measured median ${f.rttMs?.median} ms, p95 ${f.rttMs?.p95} ms, min ${f.rttMs?.min} ms, jitter ${f.jitterMs} ms, loss ${f.lossPct} % over ${f.samples} probes (target ${f.target})`);
      t.ok(f.samples >= 100, `${name}: probed continuously (${f.samples} samples)`);
      t.ok(f.received >= f.samples * 0.8, `${name}: most probes answered by the plain kernel (${f.received}/${f.samples})`);
      t.ok(Math.abs(f.rttMs!.median - want) <= 2, `${name}: median ${f.rttMs!.median} ms within ±2 ms of the configured ${want} ms`);
      t.ok(f.rttMs!.min >= want - 2 * shape.jitterMs! - 0.5, `${name}: no RTT below the link's floor (the probe left through this uplink)`);
      t.match(f.target, /^icmp:/, `${name}: shown as an ICMP target`);
    }
    t.ok(got.c0! >= 100 && got.w0! >= 100 && got.w0v6! >= 100, `echo requests arrived on each uplink's own interface (${JSON.stringify(got)})`);
    t.ok(Math.abs(got.c0! - res.figures.cellular!.samples) <= 5, `cellular's probes all came in on c0 (${got.c0} ≈ ${res.figures.cellular!.samples})`);
  });

  await t.test('a path that policy forbids, or that is down, sends no probe (counted at the far end)', async (t) => {
    let before = await echoRequests(inet);
    let c = await runChild(cell, { intervalMs: 100, durationMs: 3000, forbid: ['cellular'], paths: [PATHS.cellular, PATHS.wlan] });
    let res = await c.done;
    let got = delta(before, await echoRequests(inet));
    t.equal(got.c0, 0, `policy forbids cellular: no echo request on c0 (${JSON.stringify(got)})`);
    t.ok(got.w0! >= 20, `the allowed WLAN path is probed meanwhile (${got.w0} requests)`);
    t.equal(res.figures.cellular, null, 'the forbidden path has no figures');
    before = await echoRequests(inet);
    c = await runChild(cell, { intervalMs: 100, durationMs: 3000, paths: [PATHS.cellular, { ...PATHS.wlan, state: 'down' }] });
    res = await c.done;
    got = delta(before, await echoRequests(inet));
    t.equal(got.w0, 0, `the WLAN path is down (its link still carries frames): no echo request on w0 (${JSON.stringify(got)})`);
    t.ok(got.c0! >= 20, `the cellular path is probed meanwhile (${got.c0} requests)`);
    t.equal(res.figures.wlan, null, 'the down path has no figures');
  });

  await t.test('an IPv6 gateway known by its link-local address (as router advertisements give it) is probed on its link', async (t) => {
    const ll = /inet6 (fe80::[0-9a-f:]+)\/64/.exec(await inet.ip('-6', 'addr', 'show', 'dev', 'w0', 'scope', 'link'))?.[1];
    t.ok(ll !== undefined, `the far end's link-local address (${ll})`);
    const before = await echoRequests(inet);
    const c = await runChild(cell, { intervalMs: 100, durationMs: 2500, paths: [{ ...PATHS.wlan6, gateway: ll! }] });
    const res = await c.done;
    const got = delta(before, await echoRequests(inet));
    t.ok((res.figures.wlan6?.received ?? 0) >= 15, `answered (${res.figures.wlan6?.received}/${res.figures.wlan6?.samples})`);
    t.ok(got.w0v6! >= 15, `ICMPv6 echo requests arrived on w0 (${got.w0v6})`);
  });

  await t.test('bad ICMP at the probe socket is dropped: wrong id, unknown sequence, truncated, wrong type, noise', async (t) => {
    const c = await runChild(cell, { intervalMs: 100, durationMs: 10_000, paths: [PATHS.wlan] });
    // the ping socket's identifier is its port: /proc/net/icmp lists it (address in host order hex)
    const id = pingId(await cell.exec('cat', ['/proc/net/icmp']), CELL.w4);
    t.ok(id !== undefined, `the probe socket is listed in /proc/net/icmp (id ${id})`);
    const sent = await inet.exec('python3', ['-c', INJECT, CELL.w4, String(id)]).catch((e: Error) => `failed: ${e.message}`);
    t.comment(`injected: ${sent.trim()}`);
    t.match(sent, /'truncated': \d+/, 'the bad messages were sent');
    const res = await c.done;
    t.equal(await c.exit, 0, 'the child survived and exited cleanly');
    const f = res.figures.wlan!;
    t.ok(res.icmp.dropped > 0, `bad replies that reached the socket were dropped (${res.icmp.dropped})`);
    t.comment(`meter: ${JSON.stringify(res.counters)}; ICMP transport: ${JSON.stringify(res.icmp)} (a forged reply to a probe in flight takes its place: that probe counts as lost, the meter drops the forged payload)`);
    // the injection lasts ~3.5 s of the 10 s: at least the probes after it are answered
    t.ok(f.samples >= 80 && f.received >= 40, `the path is still measured (${f.received}/${f.samples})`);
    t.ok(Math.abs(f.rttMs!.median - 2 * wlan.delayMs!) <= 2, `its median RTT is still right (${f.rttMs!.median} ms)`);
    t.ok(f.rttMs!.min >= 2 * wlan.delayMs! - 2 * wlan.jitterMs! - 0.5, `no sample from a forged reply (min ${f.rttMs!.min} ms)`);
  });
});

/** The port (= echo identifier) of the ping socket bound to `addr` in /proc/net/icmp. */
function pingId(text: string, addr: string): number | undefined {
  const hex = addr
    .split('.')
    .map((o) => Number(o).toString(16).padStart(2, '0'))
    .reverse()
    .join('')
    .toUpperCase();
  for (const l of text.split('\n').slice(1)) {
    const local = l.trim().split(/\s+/)[1];
    if (local?.startsWith(`${hex}:`)) return parseInt(local.split(':')[1]!, 16);
  }
  return undefined;
}

// Sent from the far end on a raw socket at the cell's WLAN address, 20 ms apart in rounds while
// the meter probes: replies with another identifier, ours with sequences never sent, ours
// truncated to the header (no probe inside), ours with a garbage probe, other ICMP types with
// our identifier, and random noise. Prints how many of each.
const INJECT = String.raw`
import socket, struct, sys, time, random
dst, ident = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
def cks(b):
    if len(b) % 2: b += b'\0'
    x = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while x >> 16: x = (x & 0xffff) + (x >> 16)
    return ~x & 0xffff
def icmp(t, c, i, q, data):
    h = struct.pack('!BBHHH', t, c, 0, i, q) + data
    return h[:2] + struct.pack('!H', cks(h)) + h[4:]
n = {}
def send(kind, b):
    try:
        s.sendto(b, (dst, 0)); n[kind] = n.get(kind, 0) + 1
    except OSError:
        n['unsendable'] = n.get('unsendable', 0) + 1
random.seed(7)
for r in range(150):
    send('wrong-id', icmp(0, 0, (ident + 1) & 0xffff, r, b'DCPM' + bytes(60)))
    send('unknown-seq', icmp(0, 0, ident, 40000 + r, b'DCPM' + bytes(60)))
    # the meter sends 10/s and we send ~45 rounds/s: sequences around r / 4.5 are in flight
    for q in range(max(0, r * 2 // 9 - 5), r * 2 // 9 + 20):
        send('truncated', icmp(0, 0, ident, q, b''))
        if q % 4 == 0: send('garbage-probe', icmp(0, 0, ident, q, bytes(random.getrandbits(8) for _ in range(64))))
    send('wrong-type', icmp(13, 0, ident, r, bytes(12)))
    send('unreachable', icmp(3, 1, 0, 0, bytes(28)))
    send('noise', bytes(random.getrandbits(8) for _ in range(random.randrange(4, 80))))
    time.sleep(0.02)
print(n)
`;

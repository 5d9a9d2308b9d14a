import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Host } from '../src/sim/hosts.js';
import { PROFILES, profileShape } from '../src/sim/links.js';
import type { RttReport } from '../src/sim/probe.js';
import { CELL_ADDR, WLAN_ADDR, mono, start, steerWorld, stopChild, type Sink } from '../src/sim/udp-steer.js';
import type { PathMeasure } from '../src/services/paths/measure.js';
import { fromRuns, runsWanted, sleep, type BenchResult } from './lib.js';

/**
 * `udp`: UDP steering per flow (issue 18) in the steering world of the kernel tests
 * (src/sim/udp-steer.ts: lan ─ cell ═ wwan0 / wlan0 ═ net), the product's UdpSteering with the
 * real nft / ip rule / conntrack backend in the cell; each figure the median of ≥ 5 runs.
 *   udp-failover    ms from the WLAN uplink going down (its far end) until a UDP flow's packets
 *                   arrive via cellular (active-standby, 1 flow at 200 pps). Target ≤ 500.
 *                   Baseline: from the down to the cell's path-down event (detection alone).
 *   udp-steer-cost  packets/s delivered through the cell, steered (nft marks + fwmark rules +
 *                   NAT per uplink) over unsteered (a plain default route, no table), the same
 *                   offered load (20 flows) in the same run, alternating. Target ratio ≥ 0.95.
 *   rtt-accuracy    the product's path meter (UDP echo probes, 10/s) against the link
 *                   emulator's profiles (lte on wwan0, wlan on wlan0): median RTT minus the
 *                   profile's RTT, per path. Baseline: the simulator's own probe (probe.js rtt)
 *                   on the same link. Target |error| ≤ 2 ms.
 *   quic-fallback   ms until ngtcp2's example client (gtlsclient, handshake timeout 5 s) gives up
 *                   on a `quic: block` policy. It ignores the ICMP port-unreachable (unconnected
 *                   socket), so this is its handshake timeout, not a fall-back: reported with
 *                   met = false against the issue's < 1000 ms (browsers see ECONNREFUSED).
 *   quic-fallback-browser  ms from a browser-like client's first QUIC Initial (connected UDP
 *                   socket) until its TCP/443 fall-back is connected; baseline: quic-fallback's
 *                   runs, interleaved with these. Target < 1000.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PROBE = path.join(ROOT, 'dist/src/sim/probe.js');
const SINK = '10.182.9.1';

const med = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const r1 = (x: number): string => x.toFixed(1);
const attempt = async (f: () => Promise<number>): Promise<number | Error> => f().catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));

export async function udpBenches(): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  const runs = runsWanted();
  {
    const { topo, lan, cell, inet, cfg } = await steerWorld(`bud${process.pid}`);
    try {
      out.push(await failover(runs, lan, cell, inet, cfg));
      out.push(await steerCost(runs, lan, cell, inet, cfg));
      out.push(...(await quicFallback(runs, lan, cell, inet, cfg)));
    } finally {
      await topo.destroy();
    }
  }
  out.push(...(await rttAccuracy(runs)));
  return out;
}

type Cfg = (policy: object, extra?: object) => string;

async function failover(runs: number, lan: Host, cell: Host, inet: Host, cfg: Cfg): Promise<BenchResult> {
  const values: Array<number | Error> = [];
  const detect: Array<number | Error> = [];
  for (let i = 0; i < runs; i++) {
    const c = start(cell, ['cell', cfg({ mode: 'active-standby' })]);
    try {
      await c.line(0);
      const sink = start(inet, ['sink', String(7300 + i), '1500', '1']);
      await sink.line(0);
      const flows = start(lan, ['flows', SINK, String(7300 + i), '1', '200', '4000']);
      await sink.line(1);
      await sleep(500);
      const down = mono();
      await inet.ip('link', 'set', 'w0', 'down');
      await flows.line(0);
      const r = (await sink.line(2)) as unknown as Sink;
      const f = r.flows['0'] ?? {};
      const ev = c.lines.find((l) => l.event === 'path-down');
      values.push(f[CELL_ADDR] === undefined || f[WLAN_ADDR] === undefined ? new Error('the flow did not move to cellular') : f[CELL_ADDR].first - down);
      detect.push(ev === undefined ? new Error('no path-down event') : (ev.at as number) - down);
    } catch (e) {
      values.push(e as Error);
      detect.push(e as Error);
    } finally {
      await stopChild(c.child);
      await inet.ip('link', 'set', 'w0', 'up');
      await sleep(1000); // carrier back: the next run's cell finds both uplinks up
    }
  }
  const nums = (xs: Array<number | Error>): string => xs.map((x) => (typeof x === 'number' ? r1(x) : 'failed')).join(', ');
  return fromRuns('udp-failover', 'ms', values, detect, 'down → the cell\'s path-down event (detection alone)', {
    judge: ({ value }) => value <= 500,
    target: '<= 500 ms',
    links: 'plain veth',
    note: `active-standby, 1 flow at 200 pps, WLAN far end down; from the down to the first packet via cellular per run: ${nums(values)} ms; detection per run: ${nums(detect)} ms`,
  });
}

/** Packets/s that arrive at the sink from 20 flows sending for 2 s. */
async function pps(lan: Host, inetSink: () => Promise<Sink>, port: number): Promise<number> {
  const flows = start(lan, ['flows', SINK, String(port), '20', '1000', '2000']);
  await flows.line(0);
  const r = await inetSink();
  let n = 0;
  let first = Infinity;
  let last = 0;
  for (const by of Object.values(r.flows)) for (const x of Object.values(by)) {
    n += x.n;
    first = Math.min(first, x.first);
    last = Math.max(last, x.last);
  }
  if (n === 0 || last <= first) throw new Error('nothing arrived');
  return (n * 1000) / (last - first);
}

async function steerCost(runs: number, lan: Host, cell: Host, inet: Host, cfg: Cfg): Promise<BenchResult> {
  const steered: Array<number | Error> = [];
  const plain: Array<number | Error> = [];
  for (let i = 0; i < 2 * runs; i++) {
    const withSteering = i % 2 === 0;
    const port = 7400 + i;
    const run = async (): Promise<number> => {
      const sink = start(inet, ['sink', String(port), '1000']);
      await sink.line(0);
      const report = async (): Promise<Sink> => (await sink.line(1)) as unknown as Sink;
      if (withSteering) {
        const c = start(cell, ['cell', cfg({ mode: 'active-standby' })]);
        try {
          await c.line(0);
          return await pps(lan, report, port);
        } finally {
          await stopChild(c.child);
        }
      }
      await cell.ip('route', 'replace', 'default', 'via', '10.182.2.1', 'dev', 'wlan0');
      try {
        return await pps(lan, report, port);
      } finally {
        await cell.ip('route', 'del', 'default', 'via', '10.182.2.1', 'dev', 'wlan0');
      }
    };
    (withSteering ? steered : plain).push(await attempt(run));
  }
  const list = (xs: Array<number | Error>): string => xs.map((x) => (typeof x === 'number' ? Math.round(x) : 'failed')).join(', ');
  return fromRuns('udp-steer-cost', 'packets/s', steered, plain, 'unsteered: a plain default route, no steering table', {
    judge: ({ ratio }) => ratio >= 0.95,
    target: 'ratio >= 0.95',
    links: 'plain veth',
    note: `20 flows × 1000 pps offered for 2 s (64-byte datagrams from node: the sender bounds the rate), steered and unsteered alternating; steered ${list(steered)}; unsteered ${list(plain)} packets/s`,
  });
}

/**
 * `quic: block`, per run interleaved: ngtcp2's example client until it gives up, and the
 * browser-like client (udp-steer-child.ts quic-browser: connected UDP socket) until its TCP/443
 * fall-back is connected (a TCP listener at the sink address).
 */
async function quicFallback(runs: number, lan: Host, cell: Host, inet: Host, cfg: Cfg): Promise<BenchResult[]> {
  const ngtcp2: Array<number | Error> = [];
  const browser: Array<number | Error> = [];
  const refused: Array<number | Error> = [];
  const c = start(cell, ['cell', cfg({ mode: 'active-standby', quic: 'block' })]);
  const tcp = start(inet, ['tcp-listen', SINK, '443']);
  // the fall-back's TCP is plain routed in this world (no proxy): a route to the sink via WLAN
  // and back (UDP is masqueraded by the steering; this TCP is not)
  await cell.ip('route', 'replace', `${SINK}/32`, 'via', '10.182.2.1', 'dev', 'wlan0');
  await inet.ip('route', 'replace', '192.168.77.0/24', 'via', WLAN_ADDR);
  try {
    await c.line(0);
    await tcp.line(0);
    for (let i = 0; i < runs; i++) {
      ngtcp2.push(
        await attempt(async () => {
          const t0 = mono();
          const cl = lan.spawn('gtlsclient', ['-q', '--handshake-timeout=5s', SINK, '443', `https://${SINK}/`]);
          await new Promise<void>((resolve, reject) => {
            cl.once('error', reject);
            cl.once('exit', () => resolve());
          });
          return mono() - t0;
        }),
      );
      await sleep(1000); // the per-source reject budget (1/s) refills between clients
      const b = start(lan, ['quic-browser', SINK]);
      const step = async (n: number, key: string): Promise<{ code?: string; ms: number } | undefined> => (await b.line(n))[key] as { code?: string; ms: number } | undefined;
      refused.push(
        await attempt(async () => {
          const q = await step(0, 'quic');
          if (q?.code !== 'ECONNREFUSED') throw new Error(`no ECONNREFUSED: ${JSON.stringify(b.lines)}`);
          return q.ms;
        }),
      );
      browser.push(
        await attempt(async () => {
          const x = await step(1, 'tcp');
          if (x === undefined) throw new Error(`no TCP fall-back: ${JSON.stringify(b.lines)}`);
          return x.ms;
        }),
      );
      await stopChild(b.child);
      await sleep(1000);
    }
  } finally {
    await cell.ip('route', 'del', `${SINK}/32`);
    await inet.ip('route', 'del', '192.168.77.0/24');
    await stopChild(tcp.child);
    await stopChild(c.child);
  }
  const list = (xs: Array<number | Error>): string => xs.map((x) => (typeof x === 'number' ? r1(x) : 'failed')).join(', ');
  return [
    fromRuns('quic-fallback', 'ms', ngtcp2, ngtcp2.map(() => 5000), 'the client\'s handshake timeout (5 s, configured)', {
      judge: ({ value }) => value < 1000,
      target: '< 1000 ms',
      links: 'plain veth',
      note: `quic: block rejects UDP/443 with ICMP port-unreachable at the cell (counted, limited per source); ngtcp2's example client (Debian 12 gtlsclient 0.12.1) never sees it: its socket is bound but not connected (sendmsg with an address), and without IP_RECVERR Linux reports no ICMP error to such a socket, so it gives up only at its handshake timeout: not the fall-back a browser makes (quic-fallback-browser); per run ${list(ngtcp2)} ms`,
    }),
    fromRuns('quic-fallback-browser', 'ms', browser, ngtcp2, 'ngtcp2\'s example client giving up (quic-fallback), same runs, interleaved', {
      judge: ({ value }) => value < 1000,
      target: '< 1000 ms',
      links: 'plain veth',
      note: `quic: block as a browser meets it: a connected UDP socket (as Chromium's QUIC stack uses; it closes the session on a read error) sends a 1200-byte Initial to ${SINK}:443, gets ECONNREFUSED from the cell's ICMP port-unreachable and falls back to TCP/443 (plain TCP through the cell here; the MPTCP re-origination is test/kernel/udp-quic-fallback.test.ts); ms from the first datagram to TCP connected per run ${list(browser)}; to ECONNREFUSED ${list(refused)}`,
    }),
  ];
}

async function rttAccuracy(runs: number): Promise<BenchResult[]> {
  const { topo, cell, inet, cfg } = await steerWorld(`bur${process.pid}`, {}, { cellular: profileShape('lte'), wlan: profileShape('wlan') });
  const want = { cellular: PROFILES.lte.rttMs, wlan: PROFILES.wlan.rttMs };
  const gw = { cellular: '10.182.1.1', wlan: '10.182.2.1' };
  try {
    const echo = inet.spawn(process.execPath, [PROBE, 'echo', '7']);
    await sleep(500);
    const err: Record<'cellular' | 'wlan', Array<number | Error>> = { cellular: [], wlan: [] };
    const floor: Record<'cellular' | 'wlan', Array<number | Error>> = { cellular: [], wlan: [] };
    for (let i = 0; i < runs; i++) {
      const c = start(cell, ['cell', cfg({ mode: 'active-standby' }, { probe: { cellular: { address: gw.cellular, port: 7 }, wlan: { address: gw.wlan, port: 7 } }, probeMs: 100 })]);
      try {
        await c.line(0);
        await sleep(4000);
        const n = c.lines.length;
        c.child.kill('SIGUSR2');
        const m = (await c.line(n)).measure as Record<string, PathMeasure | undefined>;
        for (const p of ['cellular', 'wlan'] as const) {
          const r = m[p]?.rttMs?.median;
          err[p].push(r === undefined ? new Error(`no RTT measured on ${p}`) : r - want[p]);
        }
      } catch (e) {
        err.cellular.push(e as Error);
        err.wlan.push(e as Error);
      } finally {
        await stopChild(c.child);
      }
      for (const p of ['cellular', 'wlan'] as const) {
        floor[p].push(
          await attempt(async () => {
            const o = await cell.exec(process.execPath, [PROBE, 'rtt', gw[p], '7', '30', '100']);
            const r = JSON.parse(o.trim().split('\n').pop()!) as RttReport;
            return med(r.rttMs) - want[p];
          }),
        );
      }
    }
    echo.kill('SIGTERM');
    return (['cellular', 'wlan'] as const).map((p) =>
      fromRuns(`rtt-accuracy-${p}`, 'ms', err[p], floor[p], 'the simulator\'s probe (probe.js rtt) on the same link, minus the profile RTT', {
        judge: ({ value }) => Math.abs(value) <= 2,
        target: '|value| <= 2 ms',
        links: p === 'cellular' ? 'lte' : 'wlan',
        note: `the product's path meter (UDP echo to the uplink's far end, 10 probes/s, ~40 samples per run), median RTT minus the ${p === 'cellular' ? 'lte' : 'wlan'} profile's ${want[p]} ms; error per run: ${err[p].map((x) => (typeof x === 'number' ? r1(x) : 'failed')).join(', ')} ms`,
      }),
    );
  } finally {
    await topo.destroy();
  }
}

// Children of the UDP steering world (udp-steer.ts: the kernel tests and bench/udp.ts), each run
// inside one namespace:
//   cell CONFIG_JSON          the product's paths service (rtnetlink, routing keeper) + UdpSteering
//                             with the real nft/ip/conntrack backend; prints {"ready":…} then a
//                             status line per path event; stops cleanly on SIGTERM. With
//                             `probe: {PATH: {address, port}}` the product's path meter probes
//                             each path (every `probeMs`, 100 by default); SIGUSR2 prints
//                             {"measure": {PATH: PathMeasure}}
//   flows HOST PORT N PPS MS [BIND] [FIRST]
//                             N UDP flows (one socket each, bound to BIND) at PPS each for MS;
//                             datagram: flow (numbered from FIRST), seq
//   echo PORT                 a UDP echo responder (the path probes' target)
//   sink PORT IDLE_MS [N]     per flow and source address: count, first and last arrival (ms,
//                             monotonic; namespaces share the clock); one JSON line after IDLE_MS quiet
//                             ({"seen":N} first, once N flows arrived)
//   quic-browser HOST [hold]  QUIC as a browser meets quic: block: a *connected* UDP socket (as
//                             Chromium's QUIC stack uses; Linux reports an ICMP error on it as a
//                             socket error) sends a QUIC-Initial-sized datagram (1200 bytes, again
//                             every 1 s as a PTO would) to HOST:443; on the first socket error it
//                             prints {"quic": {code, syscall, ms}} (ms from the first datagram) and
//                             falls back to TCP HOST:443, sends 4 bytes, prints {"tcp": {ms, local}}
//                             (or {"tcpError": code}); with `hold` it keeps that connection until
//                             killed or closed, else it exits. No error in 20 s: {"quic": {code: "none"}}
//   tcp-listen HOST PORT      accepts TCP connections and holds them (the fallback's far end)
import dgram from 'node:dgram';
import net from 'node:net';
import { EventEmitter } from 'node:events';
import { openNetlinkStack } from '../drivers/netlink/stack.js';
import { PathsService } from '../services/paths/index.js';
import { UdpSteering, type UdpPolicy } from '../services/udp/steering.js';
import { udpBackend } from '../wiring/udp.js';
import { PathMeter } from '../services/paths/measure.js';
import { udpProbeTransport } from '../drivers/probe/udp.js';

const [mode, ...a] = process.argv.slice(2);
const out = (o: unknown): void => void process.stdout.write(JSON.stringify(o) + '\n');
/** CLOCK_MONOTONIC in ms: the same clock in every namespace and process. */
const mono = (): number => Number(process.hrtime.bigint()) / 1e6;

if (mode === 'cell') {
  const cfg = JSON.parse(a[0]!) as { uplinks: Array<{ name: string; access: 'cellular' | 'wlan'; interface: string; table: number; gateway4: string }>; lan: string[]; policy: UdpPolicy; perSourceFlows?: number; probe?: Record<string, { address: string; port: number }>; probeMs?: number };
  const stack = await openNetlinkStack();
  const paths = new PathsService({ uplinks: cfg.uplinks, net: stack.rtnl, routing: stack.routing, sampleMs: 0 });
  await paths.start();
  const pol = new EventEmitter();
  const steer = new UdpSteering({
    lanInterfaces: cfg.lan,
    paths,
    policy: { groups: () => [], fallback: () => cfg.policy, onChange: (f) => pol.on('c', f) },
    backend: udpBackend,
    recheckMs: 0,
    ...(cfg.perSourceFlows === undefined ? {} : { perSourceFlows: cfg.perSourceFlows }),
  });
  await steer.start();
  const meter = cfg.probe === undefined ? undefined : new PathMeter({ transport: udpProbeTransport, targets: cfg.probe, intervalMs: cfg.probeMs ?? 100, timeoutMs: 1000, window: 600 });
  if (meter !== undefined) {
    for (const p of paths.list()) meter.update(p);
    process.on('SIGUSR2', () => out({ measure: Object.fromEntries(paths.list().map((p) => [p.name, meter.get(p.name)])) }));
  }
  paths.on('event', (e) => {
    meter?.update(e.path);
    const at = mono();
    void steer.reconcile('event').then(() => out({ event: e.type, path: e.path.name, at, status: steer.status() }));
  });
  out({ ready: paths.list().map((p) => `${p.name}:${p.state}`) });
  process.on('SIGTERM', () => {
    meter?.stop();
    void steer.stop().finally(() => {
      paths.stop();
      stack.close();
      process.exit(0);
    });
  });
} else if (mode === 'flows') {
  const [host, port, n, pps, ms] = [a[0]!, Number(a[1]), Number(a[2]), Number(a[3]), Number(a[4])];
  const bind = a[5];
  const first = Number(a[6] ?? 0);
  const socks = Array.from({ length: n }, () => dgram.createSocket('udp4'));
  await Promise.all(socks.map((s) => new Promise<void>((r) => s.bind(0, bind, () => r()))));
  let seq = 0;
  const t0 = performance.now();
  const tick = setInterval(() => {
    const b = Buffer.alloc(64);
    b.writeUInt32BE(seq, 4);
    socks.forEach((s, i) => {
      const c = Buffer.from(b);
      c.writeUInt32BE(first + i, 0);
      s.send(c, port, host);
    });
    seq++;
    if (performance.now() - t0 >= ms) {
      clearInterval(tick);
      setTimeout(() => {
        socks.forEach((s) => s.close());
        out({ sent: seq * n });
      }, 20);
    }
  }, 1000 / pps);
} else if (mode === 'echo') {
  const s = dgram.createSocket('udp4');
  s.on('message', (m, r) => s.send(m, r.port, r.address));
  s.bind(Number(a[0]), () => out({ listening: Number(a[0]) }));
} else if (mode === 'sink') {
  const [port, idle, expect] = [Number(a[0]), Number(a[1]), Number(a[2] ?? 0)];
  let told = false;
  const s = dgram.createSocket('udp4');
  const flows: Record<string, Record<string, { n: number; first: number; last: number }>> = {};
  let timer: NodeJS.Timeout | undefined;
  s.on('message', (m, r) => {
    const at = mono();
    if (m.length < 8) return;
    const f = String(m.readUInt32BE(0));
    const by = (flows[f] ??= {});
    const x = (by[r.address] ??= { n: 0, first: at, last: at });
    x.n++;
    x.last = at;
    if (!told && expect > 0 && Object.keys(flows).length >= expect) {
      told = true;
      out({ seen: expect });
    }
    clearTimeout(timer);
    timer = setTimeout(() => {
      s.close();
      out({ flows });
    }, idle);
  });
  s.bind(port, () => out({ listening: port }));
} else if (mode === 'quic-browser') {
  const [host, hold] = [a[0]!, a[1] === 'hold'];
  const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  let t0 = 0;
  let pto: NodeJS.Timeout | undefined;
  let giveUp: NodeJS.Timeout | undefined;
  s.once('error', (e: NodeJS.ErrnoException) => {
    const ms = mono() - t0;
    clearInterval(pto);
    clearTimeout(giveUp);
    s.close();
    out({ quic: { code: e.code, syscall: e.syscall, ms } });
    const c = net.connect({ host, port: 443 }, () => {
      c.write(Buffer.alloc(4));
      out({ tcp: { ms: mono() - t0, local: `${c.localAddress}:${c.localPort}` } });
      if (!hold) process.exit(0);
    });
    c.on('error', (err: NodeJS.ErrnoException) => {
      out({ tcpError: err.code ?? err.message });
      process.exit(1);
    });
    c.on('close', () => process.exit(0));
  });
  s.connect(443, host, () => {
    const initial = Buffer.alloc(1200);
    initial[0] = 0xc0; // long header, Initial
    initial.writeUInt32BE(1, 1); // QUIC version 1
    t0 = mono();
    s.send(initial);
    pto = setInterval(() => s.send(initial), 1000);
    giveUp = setTimeout(() => {
      out({ quic: { code: 'none', ms: mono() - t0 } });
      process.exit(2);
    }, 20000).unref();
  });
} else if (mode === 'tcp-listen') {
  const held: net.Socket[] = [];
  const srv = net.createServer((c) => {
    c.on('error', () => undefined);
    held.push(c);
  });
  srv.listen(Number(a[1]), a[0], () => out({ listening: Number(a[1]) }));
}

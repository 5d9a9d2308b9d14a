// The concentrator pool's routing (issue 15, part 3), in namespaces pol<pid>a-* (needs root and
// BIRD 2, Debian package bird2; runs in CI as root): two instances announce one anycast address
// over BGP with BFD to an edge router, which installs an ECMP route hashed on L4
// (fib_multipath_hash_policy=1). Connections from a client spread over both instances; when one
// instance goes silent (every packet dropped, as a host losing power: no FIN or RST) BFD takes
// its route out and new connections land on the survivor.
//
//   cl 10.70.0.2 ── rtr (BIRD, AS 65000) ──10.71.1.0/24── i1 (BIRD AS 65100, 10.80.0.1 on lo)
//                                         ──10.71.2.0/24── i2 (BIRD AS 65100, 10.80.0.1 on lo)
//
// What is not here: duocell driving its own announcement (announce only while healthy,
// withdraw first on SIGTERM), `duocell sim up --concentrators N`; the instances run a plain
// server on the anycast address, not the concentrator preset.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { netnsUnavailable, Topology, type Host } from '../helpers/hosts.js';
import { BIRD_BFD, birdMissing } from '../helpers/bird.js';
import { birdAnnouncer } from '../../src/drivers/bird/index.js';
import { startAnycast } from '../../src/wiring/anycast.js';
import { isDuocellError } from '../../src/core/errors.js';
import { birdConfig } from '../../src/drivers/bird/config.js';
import { instanceBird, POOL_ANYCAST } from '../../src/sim/pool.js';

const ANYCAST = POOL_ANYCAST;


const reason = (await netnsUnavailable()) || birdMissing();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const bfd = BIRD_BFD;

function routerConf(): string {
  const peer = (n: number): string => `protocol bgp i${n} {
  local 10.71.${n}.1 as 65000;
  neighbor 10.71.${n}.2 as 65100;
  bfd on;
  hold time 3; keepalive time 1;
  ipv4 { import all; export none; };
}`;
  return `router id 10.71.0.1;
protocol device { scan time 1; }
${bfd}
protocol kernel { ipv4 { export all; }; merge paths on; }
${peer(1)}
${peer(2)}
`;
}

// An instance's BIRD configuration is the product's (duocell anycast bird-config; the same
// profile as the simulated pool's instances): the announcement starts disabled, enabled below.
const instanceConf = (n: number): string => birdConfig('anycast', instanceBird(n), `pol-i${n}`);

/** The next hops of the anycast route in the router (empty: no route). */
async function nexthops(rtr: Host): Promise<string[]> {
  const out = await rtr.exec('ip', ['-4', 'route', 'show', `${ANYCAST}/32`], { allowFail: true });
  return [...out.matchAll(/via (\d+\.\d+\.\d+\.\d+)/g)].map((m) => m[1]!).sort();
}

/** `n` connections from the client, each from its own source port; the instance names that answered. */
async function spread(cl: Host, n: number): Promise<string[]> {
  const script = `const net=require('net');const out=[];let left=${n};
for(let i=0;i<${n};i++){const s=net.connect({host:'${ANYCAST}',port:8000});let b='';
s.on('data',d=>b+=d);s.on('error',e=>b='error:'+e.code);s.setTimeout(3000,()=>s.destroy(new Error('timeout')));
s.on('close',()=>{out.push(b||'none');if(--left===0)console.log(JSON.stringify(out));});}`;
  return JSON.parse(await cl.exec(process.execPath, ['-e', script])) as string[];
}

t.test('kernel, root, netns, bird2: anycast pool over BGP + ECMP + BFD, an instance dies', { skip: reason, timeout: 180_000 }, async (t) => {
  const topo = new Topology(`pol${process.pid}a`);
  t.teardown(() => topo.destroy());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pol-bird-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const cl = await topo.host('cl');
  const rtr = await topo.host('rtr', { forward: true });
  const inst = [await topo.host('i1'), await topo.host('i2')];
  await rtr.sysctl('net.ipv4.fib_multipath_hash_policy', 1);
  await topo.link(cl, 'eth0', rtr, 'eth0', { a: ['10.70.0.2/24'], b: ['10.70.0.1/24'] });
  await cl.ip('route', 'add', 'default', 'via', '10.70.0.1');
  const procs: Array<{ bird: ChildProcess; server: ChildProcess }> = []; // killed by topo.destroy()
  const spawnBird = (h: Host, name: string, conf: string): ChildProcess => {
    fs.writeFileSync(path.join(dir, `${name}.conf`), conf);
    const c = h.spawn('bird', ['-f', '-c', path.join(dir, `${name}.conf`), '-s', path.join(dir, `${name}.ctl`), '-P', path.join(dir, `${name}.pid`)]);
    let err = '';
    c.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    c.on('exit', (code, sig) => {
      if (code !== 0 && sig !== 'SIGKILL') t.comment(`bird ${name} exited ${code ?? sig}: ${err}`);
    });
    return c;
  };
  for (const [i, h] of inst.entries()) {
    const n = i + 1;
    await topo.link(rtr, `eth${n}`, h, 'eth0', { a: [`10.71.${n}.1/24`], b: [`10.71.${n}.2/24`] });
    await h.ip('addr', 'add', `${ANYCAST}/32`, 'dev', 'lo');
    await h.ip('route', 'add', 'default', 'via', `10.71.${n}.1`);
    const server = h.spawn(process.execPath, ['-e', `require('net').createServer(c=>{c.on('error',()=>{});c.end('i${n}')}).listen(8000,'${ANYCAST}',()=>console.log('ready'))`]);
    await new Promise<void>((r) => server.stdout!.once('data', () => r()));
    procs.push({ bird: spawnBird(h, `i${n}`, instanceConf(n)), server });
  }
  // Announce on both (what duocell does once it can serve): BIRD's socket first.
  for (const n of [1, 2]) {
    const ctl = path.join(dir, `i${n}.ctl`);
    for (let i = 0; i < 400 && !fs.existsSync(ctl); i++) await sleep(50);
    await birdAnnouncer(ctl, 'anycast').announce();
  }
  spawnBird(rtr, 'rtr', routerConf());

  // both sessions up: an ECMP route with both instances
  const deadline = Date.now() + 60_000;
  let hops: string[] = [];
  while (Date.now() < deadline && (hops = await nexthops(rtr)).length < 2) await sleep(100);
  t.same(hops, ['10.71.1.2', '10.71.2.2'], 'the router has one ECMP route to the anycast address through both instances');
  await sleep(1500); // BFD sessions up as well (they come up after BGP)
  const bfdState = await rtr.exec('birdc', ['-s', path.join(dir, 'rtr.ctl'), 'show', 'bfd', 'sessions'], { allowFail: true });
  t.match(bfdState, /10\.71\.1\.2\s+\S+\s+Up/, `BFD up to i1: ${bfdState.trim()}`);

  const before = await spread(cl, 40);
  const count = (xs: string[], v: string): number => xs.filter((x) => x === v).length;
  t.ok(count(before, 'i1') > 0 && count(before, 'i2') > 0, `40 connections spread over both instances (i1 ${count(before, 'i1')}, i2 ${count(before, 'i2')})`);
  t.equal(count(before, 'i1') + count(before, 'i2'), 40, 'every connection answered');

  // i1 goes silent as a host that loses power would: every packet in and out of it dropped, so
  // no FIN or RST ends its BGP session; only BFD (3 × 100 ms) or the BGP hold timer (3 s) notice.
  const routeEvents: Array<{ at: number; line: string }> = [];
  const monitor = rtr.spawn('ip', ['-4', 'monitor', 'route']);
  monitor.stdout!.on('data', (d: Buffer) => {
    const at = Date.now();
    for (const line of d.toString().split('\n')) if (line.includes(ANYCAST)) routeEvents.push({ at, line });
  });
  await sleep(200); // the monitor is listening
  const nft = (...a: string[]): Promise<string> => inst[0]!.exec('nft', a);
  await nft('add', 'table', 'inet', 'polbh');
  const killAt = Date.now();
  await nft('add', 'chain', 'inet', 'polbh', 'in', '{', 'type', 'filter', 'hook', 'input', 'priority', '-300', ';', 'policy', 'drop', ';', '}');
  await nft('add', 'chain', 'inet', 'polbh', 'out', '{', 'type', 'filter', 'hook', 'output', 'priority', '-300', ';', 'policy', 'drop', ';', '}');
  let withdrawnAt: number | undefined;
  while (Date.now() - killAt < 10_000) {
    const h = await nexthops(rtr);
    if (h.length === 1 && h[0] === '10.71.2.2') {
      // when the kernel changed it: the monitor's event, not the poll that saw it (an exec under load)
      withdrawnAt = routeEvents.find((e) => e.at >= killAt && !/nexthop/.test(e.line))?.at ?? Date.now();
      break;
    }
    await sleep(5);
  }
  const withdrawMs = withdrawnAt === undefined ? Infinity : withdrawnAt - killAt;
  t.ok(withdrawMs < 1000, `the dead instance's route was withdrawn ${withdrawMs} ms after it went silent (issue: under 1 s; BFD 3 × 100 ms)`);
  const after = await spread(cl, 40);
  t.equal(count(after, 'i2'), 40, `after: every new connection lands on the survivor (${JSON.stringify([...new Set(after)])})`);

  // duocell's own announcement (src/wiring/anycast.ts through src/drivers/bird): withdraw on
  // stop, announce on start, against i2's real BIRD.
  const i2 = birdAnnouncer(path.join(dir, 'i2.ctl'), 'anycast');
  const withdrawAt = Date.now();
  const stop = startAnycast({ protocol: 'anycast' }, { announce: async () => undefined, withdraw: i2.withdraw });
  await (await stop)();
  let goneMs = Infinity;
  while (Date.now() - withdrawAt < 10_000) {
    if ((await nexthops(rtr)).length === 0) {
      goneMs = Date.now() - withdrawAt;
      break;
    }
    await sleep(5);
  }
  t.ok(goneMs < 1000, `a withdrawal by duocell reached the router in ${goneMs} ms`);
  const announceAt = Date.now();
  await startAnycast({ protocol: 'anycast' }, i2);
  let backMs = Infinity;
  while (Date.now() - announceAt < 20_000) {
    if ((await nexthops(rtr)).includes('10.71.2.2')) {
      backMs = Date.now() - announceAt;
      break;
    }
    await sleep(20);
  }
  t.ok(Number.isFinite(backMs), `announced again: the route is back after ${backMs} ms`);
  let code = 'ok';
  try {
    await birdAnnouncer(path.join(dir, 'i2.ctl'), 'no_such_protocol').announce();
  } catch (e) {
    code = isDuocellError(e) ? e.code : String(e);
  }
  t.equal(code, 'DC_BIRD_COMMAND', 'a protocol BIRD does not know is an error with a code, not silence');
  t.comment(`duocell withdraw → route gone at the router: ${goneMs} ms; announce → route back: ${backMs} ms`);
  t.comment(`figures: spread before i1 ${count(before, 'i1')} / i2 ${count(before, 'i2')} of 40; withdrawal ${withdrawMs} ms after i1 went silent (time of the router's route event)`);
});

// The concentrator pool end to end (issue 15, "what must be shown"), in namespaces pool<pid>-*
// (needs root, the kernel's MPTCP and BIRD 2, Debian package bird2; runs in CI as root).
// Instances of `duocell run` with the concentrator preset share one anycast address; each
// instance's BIRD announces it over BGP with BFD to an edge router, which installs an ECMP route
// hashed on L4 (fib_multipath_hash_policy=1). duocell itself enables the announcement once its
// listeners are up (board `anycast`) and withdraws it first on SIGTERM. Each instance sets the
// C flag and announces its unique address (ADD_ADDR, port 5125), so only initial subflows follow
// the anycast route; joins go to the instance that holds the connection.
//
//   cellA 10.70.1.2 ─┐                      ┌─10.71.1.0/24─ i1 (duocell + BIRD, 10.80.0.1 on lo)
//   cellB 10.70.2.2 ─┼── rtr (BIRD AS 65000)┼─10.71.2.0/24─ i2
//   srv 10.72.0.2  ──┘   ECMP, BFD          ├─10.71.3.0/24─ i3
//   (10.63.0.1 echo)                        └─10.71.4.0/24─ i4 (added later)
//
// Cells run the product's selecting connector with the pool as their one off-path candidate;
// the server is reachable only through an instance (it has no route back to the cells).
//
// Phases: 30 long sessions spread and join correctly → kill -9 the busiest instance's duocell
// while its BIRD freezes (SIGSTOP: the host hangs, no BGP close reaches the router, only BFD can
// notice) → i4 added (rehash measured) → SIGTERM another (drain).
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { netnsUnavailable, Topology, type Host } from '../helpers/hosts.js';
import { followRole, SLOW_FILE_MS, START_MS, tsLoader, type Role } from '../helpers/roles.js';
import { BIRD_BFD, birdMissing } from '../helpers/bird.js';
import { BIN } from '../helpers/appliance.js';
import { instanceBird, POOL_ANYCAST } from '../../src/sim/pool.js';
import type { Report } from '../../bench/pool-child.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const loader = tsLoader();
const ANYCAST = POOL_ANYCAST;
const COOKIE = 'pool-cells';

const reason = (await netnsUnavailable()) || birdMissing();
type Session = Report;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const bfd = BIRD_BFD;
const routerConf = (n: number): string =>
  `router id 10.71.0.1;
protocol device { scan time 1; }
${bfd}
protocol kernel { ipv4 { export all; }; merge paths on; }
` +
  Array.from({ length: n }, (_, i) => i + 1)
    .map((k) => `protocol bgp i${k} { local 10.71.${k}.1 as 65000; neighbor 10.71.${k}.2 as 65100; bfd on; hold time 3; keepalive time 1; connect retry time 1; ipv4 { import all; export none; }; }`)
    .join('\n') +
  '\n';
// An instance's BIRD configuration is what the product prints for its board (`duocell anycast
// bird-config`, below): the anycast route starts disabled, duocell enables it once it can serve.

t.setTimeout(SLOW_FILE_MS); // start-up waits of up to START_MS each (helpers/roles.ts)
t.test('kernel, root, netns, bird2: a pool of 3 concentrators (duocell run) behind BGP + ECMP + BFD', { skip: reason, timeout: SLOW_FILE_MS - 60_000 }, async (t) => {
  const topo = new Topology(`pool${process.pid}`);
  t.teardown(() => topo.destroy());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pool-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const rtr = await topo.host('rtr', { forward: true });
  await rtr.sysctl('net.ipv4.fib_multipath_hash_policy', 1);
  const cells = [await topo.host('ca'), await topo.host('cb')];
  for (const [i, c] of cells.entries()) {
    await topo.link(c, 'eth0', rtr, `c${i}`, { a: [`10.70.${i + 1}.2/24`], b: [`10.70.${i + 1}.1/24`] });
    await c.ip('route', 'add', 'default', 'via', `10.70.${i + 1}.1`);
    await c.mptcpLimits(2, 2); // accept the instance's ADD_ADDR and join it
  }
  const srv = await topo.host('srv');
  await topo.link(srv, 'eth0', rtr, 'srv', { a: ['10.72.0.2/24'], b: ['10.72.0.1/24'] });
  await srv.ip('addr', 'add', '10.63.0.1/32', 'dev', 'lo');
  await srv.ip('route', 'add', '10.71.0.0/16', 'via', '10.72.0.1'); // back to the instances only
  await rtr.ip('route', 'add', '10.63.0.1/32', 'via', '10.72.0.2');
  const inst: Host[] = [];
  for (let n = 1; n <= 4; n++) {
    const h = await topo.host(`i${n}`);
    await topo.link(rtr, `eth${n}`, h, 'eth0', { a: [`10.71.${n}.1/24`], b: [`10.71.${n}.2/24`] });
    await h.ip('addr', 'add', `${ANYCAST}/32`, 'dev', 'lo');
    await h.ip('route', 'add', 'default', 'via', `10.71.${n}.1`);
    inst.push(h);
  }

  const spawnBird = (h: Host, name: string, conf: string): ChildProcess => {
    fs.writeFileSync(path.join(dir, `${name}.conf`), conf);
    return h.spawn('bird', ['-f', '-c', path.join(dir, `${name}.conf`), '-s', path.join(dir, `${name}.ctl`), '-P', path.join(dir, `${name}.pid`)]);
  };
  spawnBird(rtr, 'rtr', routerConf(4));
  const birdc = (name: string, ...a: string[]): Promise<string> => rtr.exec('birdc', ['-s', path.join(dir, `${name}.ctl`), ...a], { allowFail: true });
  const nexthops = async (): Promise<string[]> => {
    const out = await rtr.exec('ip', ['-4', 'route', 'show', `${ANYCAST}/32`], { allowFail: true });
    return [...out.matchAll(/via (\d+\.\d+\.\d+\.\d+)/g)].map((m) => m[1]!).sort();
  };
  const until = async (what: string, ms: number, f: () => Promise<boolean>, step = 20): Promise<number> => {
    const t0 = Date.now();
    while (Date.now() - t0 < ms) {
      if (await f()) return Date.now() - t0;
      await sleep(step);
    }
    throw new Error(`timed out (${ms} ms): ${what}`);
  };

  interface Instance {
    n: number;
    bird: ChildProcess;
    duo: Role;
  }
  const startInstance = async (n: number): Promise<Instance> => {
    const h = inst[n - 1]!;
    const board = {
      name: `pool-i${n}`,
      preset: 'concentrator',
      uplinks: [],
      lan: { interfaces: [] },
      web: { listen: [{ host: '127.0.0.1', port: 18181 }] },
      listeners: [{ kind: 'convert', host: '::', port: 5124, mptcp: true, upstream: 'tcp', options: { cookies: [{ cookie: COOKIE, subscriber: 'cells' }] } }],
      accessNetworks: [],
      policy: { allowUnknownSubscribers: true },
      explicitSteering: { refuseInitialJoins: true, announce: [{ address: `10.71.${n}.2`, port: 5125, interface: 'eth0' }], subflows: 4 },
      anycast: { protocol: 'anycast', birdSocket: path.join(dir, `i${n}.ctl`), intervalMs: 500, upstreamCheck: { host: '10.63.0.1', port: 8000, timeoutMs: 500 }, bird: instanceBird(n) },
    };
    fs.writeFileSync(path.join(dir, `i${n}.json`), JSON.stringify(board));
    const conf = execFileSync(process.execPath, [BIN, 'anycast', 'bird-config', '--board', path.join(dir, `i${n}.json`)], { encoding: 'utf8' });
    const bird = spawnBird(h, `i${n}`, conf);
    // BIRD's control socket first: duocell's announcement is refused while BIRD is not there
    await until(`i${n}'s BIRD socket`, 20_000, async () => fs.existsSync(path.join(dir, `i${n}.ctl`)));
    const child = h.spawn(process.execPath, [BIN, 'run', '--board', path.join(dir, `i${n}.json`), '--state-dir', path.join(dir, `i${n}-state`)], {
      env: { ...process.env, DUOCELL_LOG_LEVEL: 'info' },
    });
    const duo = followRole(child, `i${n}`);
    await duo.wait((l) => l.msg === 'duocell running', `i${n} running`, START_MS);
    return { n, bird, duo };
  };
  const srvP = followRole(srv.spawn(process.execPath, [...loader, path.join(here, '../../bench/pool-child.ts'), 'srv'], { env: { ...process.env, DUOCELL_LOG_LEVEL: 'silent' } }), 'srv');
  await srvP.wait((l) => l.ready !== undefined, 'srv ready', START_MS);
  const instances: Array<Instance | undefined> = [];
  for (const n of [1, 2, 3]) instances[n] = await startInstance(n);
  t.teardown(() => {
    for (const i of instances) {
      i?.duo.child.kill('SIGKILL');
      i?.bird.kill('SIGKILL');
    }
  });
  // (on failure, say what BIRD saw: a loaded machine can starve BFD's timers and flap sessions)
  await until('an ECMP route through i1..i3', 90_000, async () => (await nexthops()).length === 3, 100).catch(async (e: unknown) => {
    const seen = `${await birdc('rtr', 'show', 'protocols')}\n${await birdc('rtr', 'show', 'bfd', 'sessions')}\nnext hops: ${(await nexthops()).join(' ')}`;
    throw new Error(`${e instanceof Error ? e.message : String(e)}; the edge router's BIRD:\n${seen}`);
  });
  await until('BFD up to i1..i3', 20_000, async () => ((await birdc('rtr', 'show', 'bfd', 'sessions')).match(/\bUp\b/g) ?? []).length >= 3, 100);
  t.same(await nexthops(), ['10.71.1.2', '10.71.2.2', '10.71.3.2'], 'the edge router has one ECMP route through the three instances (announced by duocell)');
  /** An instance's GET /health (its web listens on loopback in its namespace). */
  const health = async (n: number): Promise<{ status: string; checks: Record<string, boolean>; anycast?: { state: string; healthy: boolean; bgp: Array<{ info: string }>; bfd: Array<{ state: string }>; problems: string[] } }> => {
    const script = `const u='127.0.0.1:18181/health';const get=(m,url)=>new Promise((res,rej)=>require(m).get(url,{rejectUnauthorized:false},(r)=>{let b='';r.on('data',d=>b+=d);r.on('end',()=>res(b))}).on('error',rej));
get('http','http://'+u).then(b=>{JSON.parse(b);return b}).catch(()=>get('https','https://'+u)).then(b=>console.log(b),e=>console.log(JSON.stringify({error:String(e)})))`;
    return JSON.parse(await inst[n - 1]!.exec(process.execPath, ['-e', script])) as Awaited<ReturnType<typeof health>>;
  };
  let h1 = await health(1);
  await until('i1 reports its BGP and BFD sessions up', 20_000, async () => (h1 = await health(1)).anycast?.healthy === true, 200).catch(() => undefined);
  t.equal(h1.anycast?.state, 'announced', `/health of an instance: announced (${JSON.stringify(h1.anycast?.problems)})`);
  t.ok(h1.checks.anycast === true && h1.anycast?.bgp[0]?.info === 'Established' && h1.anycast.bfd[0]?.state === 'Up', `/health shows BIRD's BGP session Established and BFD Up (${JSON.stringify(h1.anycast)})`);

  const cellP = cells.map((c, i) => followRole(c.spawn(process.execPath, [...loader, path.join(here, '../../bench/pool-child.ts'), 'cell', i === 0 ? 'A' : 'B'], { env: { ...process.env, DUOCELL_LOG_LEVEL: 'silent' }, stdio: ['pipe', 'pipe', 'pipe'] }), `cell${i}`));
  for (const c of cellP) await c.wait((l) => l.ready !== undefined, 'cell ready', START_MS);
  const both = (cmd: object): void => {
    for (const c of cellP) c.child.stdin!.write(JSON.stringify(cmd) + '\n');
  };
  const holder = (id: string): string | undefined => {
    const c = srvP.lines.find((l) => (l.conn as { id: string } | undefined)?.id === id);
    const peer = (c?.conn as { peer: string } | undefined)?.peer;
    return peer === undefined ? undefined : `i${peer.split('.')[2]}`;
  };
  const connsOf = (tag: string): Array<{ id: string; peer: string; at: number }> =>
    srvP.lines.map((l) => l.conn as { id: string; peer: string; at: number } | undefined).filter((c): c is { id: string; peer: string; at: number } => c !== undefined && c.id.split('-')[1] === tag);
  const sessionsOf = (tag: string): Session[] => cellP.flatMap((c) => c.lines.map((l) => l.session as Session | undefined).filter((s): s is Session => s?.tag === tag));
  const spreadOf = (tag: string): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const c of connsOf(tag)) out[`i${c.peer.split('.')[2]}`] = (out[`i${c.peer.split('.')[2]}`] ?? 0) + 1;
    return out;
  };
  const allReported = (tag: string, n: number, ms: number): Promise<number> => until(`${n} sessions "${tag}" reported`, ms, async () => sessionsOf(tag).length >= n);

  /** Per instance: tokens of the MPTCP connections whose initial subflow (anycast :5124) and whose joins (unique address :5125) are established there. */
  const subflows = async (n: number): Promise<{ initial: string[]; joins: string[] }> => {
    const out = await inst[n - 1]!.exec('ss', ['-tniH', 'state', 'established', '( sport = :5124 or sport = :5125 )'], { allowFail: true });
    const initial: string[] = [];
    const joins: string[] = [];
    let port = '';
    for (const line of out.split('\n')) {
      const sock = /\S+:(5124|5125)\s+\S+/.exec(line);
      if (sock !== null && !/tcp-ulp-mptcp/.test(line)) port = sock[1]!;
      const tok = /tcp-ulp-mptcp.*?token:([0-9a-f]+)/.exec(line);
      if (tok !== null && port !== '') (port === '5124' ? initial : joins).push(tok[1]!);
    }
    return { initial, joins };
  };
  const nstat = async (n: number): Promise<Record<string, number>> => {
    const out = await inst[n - 1]!.exec('nstat', ['-asz', 'MPTcpExtMPCapableSYNRX', 'MPTcpExtMPJoinSynRx', 'MPTcpExtMPJoinNoTokenFound', 'MPTcpExtMPJoinAckRx'], { allowFail: true });
    return Object.fromEntries([...out.matchAll(/^(\S+)\s+(\d+)/gm)].map((m) => [m[1]!, Number(m[2])]));
  };

  // ── 1. 30 long sessions from two cells: spread, joins at the holder, bytes intact ───────────
  both({ long: { n: 15, tag: 'a' } });
  await until('30 sessions "a" at the server', 120_000, async () => connsOf('a').length >= 30);
  const spreadA = spreadOf('a');
  t.ok(Object.keys(spreadA).length >= 2, `30 pooled sessions from two cells land on at least 2 instances (${JSON.stringify(spreadA)})`);
  // every session's join is up: at each instance, each connection holds its initial subflow and its join
  let sub: Array<{ initial: string[]; joins: string[] }> = [];
  const joinWait = await until('a join for every connection', 60_000, async () => {
    sub = await Promise.all([1, 2, 3].map((n) => subflows(n)));
    return [1, 2, 3].every((n, i) => (spreadA[`i${n}`] ?? 0) <= sub[i]!.joins.length && (spreadA[`i${n}`] ?? 0) <= sub[i]!.initial.length);
  }, 200).catch(() => -1);
  for (const [i, s] of sub.entries()) {
    const n = i + 1;
    const stray = s.joins.filter((tok) => !s.initial.includes(tok));
    t.same(stray, [], `i${n}: every join captured at i${n} belongs to a connection whose initial subflow is at i${n} (${s.joins.length} joins, ${s.initial.length} initial subflows)`);
  }
  t.ok(joinWait >= 0, `every connection has its join at its own instance (${sub.map((s, i) => `i${i + 1} ${s.joins.length}/${s.initial.length}`).join(', ')})`);
  const counters1 = await Promise.all([1, 2, 3].map((n) => nstat(n)));
  t.same(counters1.map((c) => c.MPTcpExtMPJoinNoTokenFound ?? 0), [0, 0, 0], 'no instance received a join for a connection it does not hold (MPJoinNoTokenFound)');
  const joinSyns = counters1.reduce((a, c) => a + (c.MPTcpExtMPJoinSynRx ?? 0), 0);
  t.ok(joinSyns >= 30, `MP_JOIN SYNs received at the instances: ${counters1.map((c, i) => `i${i + 1} ${c.MPTcpExtMPJoinSynRx ?? 0}`).join(', ')} (≥ 30)`);

  // ── 2. kill -9 one instance mid-transfer ────────────────────────────────────────────────────
  const victim = Object.entries(spreadA).sort((a, b) => b[1] - a[1])[0]![0]; // the busiest
  const vn = Number(victim.slice(1));
  const routeEvents: Array<{ at: number; line: string }> = [];
  const monitor = rtr.spawn('ip', ['-4', 'monitor', 'route']);
  monitor.stdout!.on('data', (d: Buffer) => {
    const at = Date.now();
    for (const line of d.toString().split('\n')) if (line.includes(ANYCAST)) routeEvents.push({ at, line });
  });
  await sleep(300);
  const onVictim = connsOf('a').filter((c) => `i${c.peer.split('.')[2]}` === victim).map((c) => c.id);
  const v = instances[vn]!;
  const killAt = Date.now();
  v.duo.child.kill('SIGKILL');
  // Its BIRD freezes (SIGSTOP) rather than dies: a dying BIRD's kernel would close the BGP session
  // with a FIN and the router would withdraw at once; frozen, only BFD (3 × 100 ms) can notice.
  v.bird.kill('SIGSTOP');
  t.teardown(() => void v.bird.kill('SIGKILL'));
  instances[vn] = undefined;
  await until(`${victim} withdrawn`, 10_000, async () => !(await nexthops()).includes(`10.71.${vn}.2`), 5);
  const wEvent = routeEvents.find((e) => e.at >= killAt);
  const withdrawMs = (wEvent?.at ?? Date.now()) - killAt;
  t.ok(withdrawMs < 1000, `BFD: the killed instance's route was withdrawn ${withdrawMs} ms after kill -9 (issue: under 1 s)`);
  t.match(await birdc('rtr', 'show', 'protocols', `i${vn}`), /BFD session down|Error|Connect|Active/, `the router's BGP session to ${victim} went down (BFD)`);
  const survivors = [1, 2, 3].filter((n) => n !== vn);
  // new sessions at once on the survivors
  const newAt = Date.now();
  both({ short: { n: 10, tag: 'b' } });
  await allReported('b', 20, 120_000);
  const b = sessionsOf('b');
  t.same(b.filter((s) => !s.ok).map((s) => s.err), [], 'new sessions right after the withdrawal: all succeed, bytes intact');
  t.ok(b.every((s) => holder(s.id) !== victim), `... on the survivors (${JSON.stringify(spreadOf('b'))})`);
  const firstNewMs = Math.min(...b.map((s) => s.end)) - killAt;
  // the victim's sessions end with an error toward the client within 2 s
  await until(`the ${onVictim.length} sessions on ${victim} end`, 10_000, async () => onVictim.every((id) => sessionsOf('a').some((s) => s.id === id)));
  const victimEnds = sessionsOf('a').filter((s) => onVictim.includes(s.id));
  const lastEnd = Math.max(...victimEnds.map((s) => s.end)) - killAt;
  t.ok(victimEnds.length > 0 && victimEnds.every((s) => !s.ok && s.err !== undefined), `the ${victimEnds.length} sessions on ${victim} ended with an error (${[...new Set(victimEnds.map((s) => s.err))].join(', ')}), not a clean close`);
  t.ok(lastEnd < 2000, `... all within ${lastEnd} ms of the kill (issue: within 2 s)`);
  // the survivors' sessions are undisturbed
  both({ finish: 'a' });
  await allReported('a', 30, 120_000);
  const survA = sessionsOf('a').filter((s) => !onVictim.includes(s.id));
  t.same(survA.filter((s) => !s.ok).map((s) => `${s.id} ${s.err}`), [], `the ${survA.length} sessions on the survivors completed with every byte intact`);

  // ── 3. an instance is added: new sessions reach it; rehash on the join subflows ─────────────
  both({ long: { n: 15, tag: 'c' } });
  await until('30 sessions "c" at the server', 120_000, async () => connsOf('c').length >= 30);
  await until('every "c" connection joined', 60_000, async () => {
    const s = await Promise.all(survivors.map((n) => subflows(n)));
    return s.reduce((a, x) => a + x.joins.length, 0) >= 30;
  }, 200).catch(() => undefined);
  const beforeAdd = await Promise.all(survivors.map((n) => subflows(n)));
  const initialBefore = beforeAdd.reduce((a, s) => a + s.initial.length, 0);
  instances[4] = await startInstance(4);
  const addMs = await until('i4 in the ECMP route', 30_000, async () => (await nexthops()).includes('10.71.4.2'), 20);
  both({ short: { n: 15, tag: 'd' } });
  await allReported('d', 30, 120_000);
  const d = sessionsOf('d');
  const spreadD = spreadOf('d');
  t.same(d.filter((s) => !s.ok).map((s) => s.err), [], 'new sessions after the instance was added: all succeed');
  t.ok((spreadD.i4 ?? 0) > 0, `new sessions reach the added instance (${JSON.stringify(spreadD)})`);
  await sleep(1500); // the rehashed initial subflows meet i4's reset; their connections go on over their joins
  const afterAdd = await Promise.all(survivors.map((n) => subflows(n)));
  const initialAfter = afterAdd.reduce((a, s) => a + s.initial.length, 0);
  both({ finish: 'c' });
  await allReported('c', 30, 120_000);
  const c = sessionsOf('c');
  const cOk = c.filter((s) => s.ok).length;
  const moved = Math.max(0, initialBefore - initialAfter);
  t.ok(cOk >= 30 - moved, `M-sessions surviving the rehash: ${cOk}/30 (${moved} initial subflows lost to the rehash; a session with its join survives)`);

  // ── 4. SIGTERM: withdraw first, no new sessions, existing complete, exit 0 ──────────────────
  both({ long: { n: 10, tag: 'e' } });
  await until('20 sessions "e" at the server', 120_000, async () => connsOf('e').length >= 20);
  await sleep(1000); // joined
  const drainN = survivors[0]!;
  const drain = instances[drainN]!;
  const onDrain = connsOf('e').filter((x) => x.peer === `10.71.${drainN}.2`).map((x) => x.id);
  const termAt = Date.now();
  drain.duo.child.kill('SIGTERM');
  const withdrawTermMs = await until(`i${drainN} withdrawn`, 10_000, async () => !(await nexthops()).includes(`10.71.${drainN}.2`), 5);
  both({ short: { n: 10, tag: 'f' } });
  await allReported('f', 20, 120_000);
  const f = sessionsOf('f');
  t.same(f.filter((s) => !s.ok).map((s) => s.err), [], 'new sessions while an instance drains: all succeed');
  t.ok(f.every((s) => holder(s.id) !== `i${drainN}`), `... none on the draining instance i${drainN} (${JSON.stringify(spreadOf('f'))})`);
  both({ finish: 'e' });
  await allReported('e', 20, 120_000);
  const eOnDrain = sessionsOf('e').filter((s) => onDrain.includes(s.id));
  t.same(eOnDrain.filter((s) => !s.ok).map((s) => `${s.id} ${s.err}`), [], `the ${eOnDrain.length} sessions on the draining instance completed, bytes intact`);
  const code = await Promise.race([drain.duo.exited, sleep(20_000).then(() => 'hung' as const)]);
  const exitMs = Date.now() - termAt;
  t.equal(code, 0, `the drained instance exited 0 (${exitMs} ms after SIGTERM)`);
  t.ok(withdrawTermMs < exitMs, `it withdrew first (${withdrawTermMs} ms after SIGTERM), then exited`);
  // ── 5. announce only while healthy: i4 loses its upstream, withdraws, and comes back ───────
  const i4 = inst[3]!;
  await i4.exec('nft', ['add', 'table', 'inet', 'poolup']);
  await i4.exec('nft', ['add', 'chain', 'inet', 'poolup', 'out', '{', 'type', 'filter', 'hook', 'output', 'priority', '0', ';', '}']);
  const cutAt = Date.now();
  await i4.exec('nft', ['add', 'rule', 'inet', 'poolup', 'out', 'ip', 'daddr', '10.63.0.1', 'drop']);
  const unhealthyMs = await until('i4 withdrawn for its upstream', 15_000, async () => !(await nexthops()).includes('10.71.4.2'), 20).catch(() => Infinity);
  t.ok(Number.isFinite(unhealthyMs), `an instance that cannot reach its upstream withdraws (${unhealthyMs} ms after the cut; check every 500 ms, 500 ms connect timeout)`);
  const h4 = await health(4);
  t.ok(h4.status === 'degraded' && h4.checks.anycast === false && (h4.anycast?.problems ?? []).includes('check upstream fails'), `... and says why in /health (${JSON.stringify(h4.anycast?.problems)})`);
  await i4.exec('nft', ['delete', 'table', 'inet', 'poolup']);
  const backMs = await until('i4 announced again', 15_000, async () => (await nexthops()).includes('10.71.4.2'), 20).catch(() => Infinity);
  t.ok(Number.isFinite(backMs), `upstream back: announced again (${backMs} ms)`);
  monitor.kill('SIGKILL');
  for (const c of cellP) c.child.stdin!.end();

  t.comment(
    `figures: spread of 30 ${JSON.stringify(spreadA)}; joins at the holder ${sub.map((s, i) => `i${i + 1} ${s.joins.length}/${s.initial.length}`).join(', ')}; ` +
      `MP_JOIN SYN rx ${counters1.map((x) => x.MPTcpExtMPJoinSynRx ?? 0).join('/')}; kill -9 ${victim}: route withdrawn ${withdrawMs} ms, its ${victimEnds.length} sessions ended by ${lastEnd} ms, ` +
      `first new session done ${firstNewMs} ms after the kill (${newAt - killAt} ms to open); ` +
      `add i4: in the route after ${addMs} ms, new sessions ${JSON.stringify(spreadD)}, initial subflows ${initialBefore} → ${initialAfter}, M-sessions surviving ${cOk}/30; ` +
      `SIGTERM i${drainN}: withdrawn ${withdrawTermMs} ms, ${eOnDrain.length} draining sessions ok, exit after ${exitMs} ms; ` +
      `upstream cut at i4: withdrawn after ${unhealthyMs} ms (cut ${cutAt - termAt} ms after the SIGTERM phase), back ${backMs} ms after the repair`,
  );
});

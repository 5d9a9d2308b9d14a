import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { DuocellError } from '../core/errors.js';
import type { Host, Topology } from './hosts.js';
import { birdConfig, type BirdProfile } from '../drivers/bird/config.js';

/**
 * A concentrator pool in namespaces (issue 15): N instances of `duocell run` (concentrator
 * preset) behind an edge router. Each instance's BIRD 2 announces the shared anycast address
 * over BGP with BFD (100 ms × 3) once duocell enables it; the router installs an ECMP route hashed
 * on L4 (fib_multipath_hash_policy=1). Each instance sets the C flag and announces its unique
 * address (ADD_ADDR, port 5125). Instances sit at sites: a site is the delay of their link to
 * the router (the link emulator), so two sites have different RTTs.
 *
 *   cell1 10.70.1.2 ─┐                         ┌─10.71.1.0/24─ i1  (site A)
 *   cell2 10.70.2.2 ─┼── rtr  (BIRD AS 65000) ─┼─10.71.2.0/24─ i2  (site A)
 *   srv   10.72.0.2 ─┘   10.63.0.1 echo/server └─10.71.k.0/24─ ik  (site B, …)
 *
 * The server has no route back to the cells: a session reaches it only through an instance.
 * Used by `duocell sim up --concentrators N`, the pool benchmarks and the pool test.
 */
export const POOL_ANYCAST = '10.80.0.1';
export const POOL_SERVER = '10.63.0.1';
export const POOL_COOKIE = 'pool-cells';
export const POOL_MAX = 16;

const bfd = `protocol bfd { interface "*" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }; }`;

export function routerConf(n: number): string {
  const peers = Array.from({ length: n }, (_, i) => i + 1).map(
    (k) => `protocol bgp i${k} { local 10.71.${k}.1 as 65000; neighbor 10.71.${k}.2 as 65100; bfd on; hold time 3; keepalive time 1; connect retry time 1; ipv4 { import all; export none; }; }`,
  );
  return `router id 10.71.0.1;\nprotocol device { scan time 1; }\n${bfd}\nprotocol kernel { ipv4 { export all; }; merge paths on; }\n${peers.join('\n')}\n`;
}

/** Instance n's BIRD profile (board `anycast.bird`): AS 65100 toward the router's AS 65000, BFD 100 ms × 3, fast BGP timers. */
export function instanceBird(n: number): BirdProfile {
  return {
    routerId: `10.71.${n}.2`,
    localAs: 65100,
    prefixes: [`${POOL_ANYCAST}/32`],
    neighbors: [{ address: `10.71.${n}.1`, as: 65000, local: `10.71.${n}.2` }],
    bfd: { intervalMs: 100, multiplier: 3 },
    holdTime: 3,
    keepaliveTime: 1,
    connectRetryTime: 1,
    scanTime: 1,
  };
}

/**
 * Instance n's BIRD configuration: what `duocell anycast bird-config --board` prints for its
 * board (drivers/bird/config.ts, the one generator). The announcement starts disabled: duocell
 * enables it once it can serve.
 */
export function instanceConf(n: number): string {
  return birdConfig('anycast', instanceBird(n), `pool-i${n}`);
}

export function instanceBoard(n: number, dir: string): Record<string, unknown> {
  return {
    name: `pool-i${n}`,
    preset: 'concentrator',
    description: `Concentrator ${n} of the simulated anycast pool`,
    uplinks: [],
    lan: { interfaces: [] },
    web: { listen: [{ host: '127.0.0.1', port: 18181 }] },
    listeners: [{ kind: 'convert', host: '::', port: 5124, mptcp: true, upstream: 'tcp', options: { cookies: [{ cookie: POOL_COOKIE, subscriber: 'cells' }] } }],
    accessNetworks: [],
    policy: { allowUnknownSubscribers: true },
    explicitSteering: { refuseInitialJoins: true, announce: [{ address: `10.71.${n}.2`, port: 5125, interface: 'eth0' }], subflows: 4 },
    anycast: { protocol: 'anycast', birdSocket: path.join(dir, `i${n}.ctl`), intervalMs: 500, upstreamCheck: { host: POOL_SERVER, port: 8000, timeoutMs: 500 }, bird: instanceBird(n) },
  };
}

export interface PoolOptions {
  /** Instances built (namespaces and links); started: `start` of them (default all). */
  instances: number;
  start?: number;
  cells?: number;
  /** One-way delay of each instance's link to the router, by site (default none). */
  siteDelayMs?: (n: number) => number;
  /** Where configurations, sockets and state go. */
  dir: string;
  /** `bin/duocell.js` */
  bin: string;
  logLevel?: string;
  /** Namespace names start with this (default ''): `duocell sim up` uses 'pool-' beside dc-srv. */
  names?: string;
  /** How instance processes start (default: attached, via Host.spawn); the sim detaches them. */
  spawn?: (h: Host, name: string, argv: string[], env?: NodeJS.ProcessEnv) => ChildProcess;
}

export interface PoolInstance {
  n: number;
  bird: ChildProcess;
  duocell: ChildProcess;
  exited: Promise<number | null>;
  log: () => string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class Pool {
  readonly rtr: Host;
  readonly srv: Host;
  readonly cells: Host[];
  readonly hosts: Host[];
  readonly running = new Map<number, PoolInstance>();
  readonly #o: PoolOptions;

  private constructor(o: PoolOptions, rtr: Host, srv: Host, cells: Host[], hosts: Host[]) {
    this.#o = o;
    this.rtr = rtr;
    this.srv = srv;
    this.cells = cells;
    this.hosts = hosts;
  }

  static async build(topo: Topology, o: PoolOptions): Promise<Pool> {
    if (!Number.isInteger(o.instances) || o.instances < 1 || o.instances > POOL_MAX) throw new DuocellError('DC_USAGE', `concentrators: 1–${POOL_MAX}`);
    fs.mkdirSync(o.dir, { recursive: true });
    const nm = o.names ?? '';
    const rtr = await topo.host(`${nm}rtr`, { forward: true });
    await rtr.sysctl('net.ipv4.fib_multipath_hash_policy', 1);
    const cells: Host[] = [];
    for (let i = 1; i <= (o.cells ?? 2); i++) {
      const c = await topo.host(`${nm}cell${i}`);
      await topo.link(c, 'eth0', rtr, `c${i}`, { a: [`10.70.${i}.2/24`], b: [`10.70.${i}.1/24`] });
      await c.ip('route', 'add', 'default', 'via', `10.70.${i}.1`);
      await c.mptcpLimits(2, 2); // accept the instance's ADD_ADDR and join it
      cells.push(c);
    }
    const srv = await topo.host(`${nm}srv`);
    await topo.link(srv, 'eth0', rtr, 'srv', { a: ['10.72.0.2/24'], b: ['10.72.0.1/24'] });
    await srv.ip('addr', 'add', `${POOL_SERVER}/32`, 'dev', 'lo');
    await srv.ip('route', 'add', '10.71.0.0/16', 'via', '10.72.0.1'); // back to the instances only
    await rtr.ip('route', 'add', `${POOL_SERVER}/32`, 'via', '10.72.0.2');
    const hosts: Host[] = [];
    for (let n = 1; n <= o.instances; n++) {
      const h = await topo.host(`${nm}i${n}`);
      const delayMs = o.siteDelayMs?.(n) ?? 0;
      await topo.link(rtr, `eth${n}`, h, 'eth0', { a: [`10.71.${n}.1/24`], b: [`10.71.${n}.2/24`], ...(delayMs > 0 ? { delayMs } : {}) });
      await h.ip('addr', 'add', `${POOL_ANYCAST}/32`, 'dev', 'lo');
      await h.ip('route', 'add', 'default', 'via', `10.71.${n}.1`);
      hosts.push(h);
    }
    const pool = new Pool(o, rtr, srv, cells, hosts);
    fs.writeFileSync(path.join(o.dir, 'rtr.conf'), routerConf(o.instances));
    pool.#spawn(rtr, 'rtr-bird', ['bird', '-f', '-c', path.join(o.dir, 'rtr.conf'), '-s', path.join(o.dir, 'rtr.ctl'), '-P', path.join(o.dir, 'rtr.pid')]);
    for (let n = 1; n <= (o.start ?? o.instances); n++) await pool.startInstance(n);
    return pool;
  }

  #spawn(h: Host, name: string, argv: string[], env?: NodeJS.ProcessEnv): ChildProcess {
    if (this.#o.spawn !== undefined) return this.#o.spawn(h, name, argv, env);
    return h.spawn(argv[0]!, argv.slice(1), env === undefined ? {} : { env: { ...process.env, ...env } });
  }

  /** Start instance n: its BIRD, then `duocell run`; resolves once the router has its announcement (the server must be up: duocell announces only while it reaches it). */
  async startInstance(n: number, timeoutMs = 150_000): Promise<PoolInstance> {
    const h = this.hosts[n - 1];
    if (h === undefined) throw new DuocellError('DC_USAGE', `no instance ${n}`);
    const dir = this.#o.dir;
    const ctl = path.join(dir, `i${n}.ctl`);
    fs.rmSync(ctl, { force: true });
    fs.writeFileSync(path.join(dir, `i${n}.conf`), instanceConf(n));
    const bird = this.#spawn(h, `i${n}-bird`, ['bird', '-f', '-c', path.join(dir, `i${n}.conf`), '-s', ctl, '-P', path.join(dir, `i${n}.pid`)]);
    for (let i = 0; i < 400 && !fs.existsSync(ctl); i++) await sleep(50);
    fs.writeFileSync(path.join(dir, `i${n}.json`), JSON.stringify(instanceBoard(n, dir)));
    const duocell = this.#spawn(h, `i${n}`, [process.execPath, this.#o.bin, 'run', '--board', path.join(dir, `i${n}.json`), '--state-dir', path.join(dir, `i${n}-state`)], { DUOCELL_LOG_LEVEL: this.#o.logLevel ?? 'info' });
    let log = '';
    const exited = new Promise<number | null>((r) => duocell.on('exit', (c) => r(c)));
    duocell.stdout?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));
    duocell.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));
    // running and healthy once the router has its announcement (duocell announces only then)
    const died = exited.then((c) => Promise.reject(new DuocellError('DC_INTERNAL', `instance ${n} exited (${c}) at start: ${log.slice(-1500)}`)));
    died.catch(() => undefined);
    // (after a kill -9 the restart waits for the killed run's subflows to free the signal port: up to a minute)
    await Promise.race([this.waitRoute((hops) => hops.includes(n), timeoutMs, 50), died]).catch((e: Error) => {
      throw new DuocellError('DC_TIMEOUT', `instance ${n} not announced: ${e.message}: ${log.slice(-1500)}`);
    });
    const inst: PoolInstance = { n, bird, duocell, exited, log: () => log };
    this.running.set(n, inst);
    return inst;
  }

  /** kill -9 its duocell and freeze its BIRD (a hung host: only BFD notices); `revive` cleans up. */
  kill(n: number): void {
    const i = this.running.get(n);
    if (i === undefined) return;
    i.duocell.kill('SIGKILL');
    i.bird.kill('SIGSTOP');
  }

  /** After kill(): the frozen BIRD is killed so that the instance can start again. */
  async reap(n: number): Promise<void> {
    const i = this.running.get(n);
    if (i === undefined) return;
    i.bird.kill('SIGKILL');
    await new Promise<void>((r) => (i.bird.exitCode !== null || i.bird.signalCode !== null ? r() : i.bird.once('exit', () => r())));
    await i.exited;
    this.running.delete(n);
  }

  /** SIGTERM: withdraw, drain, exit; resolves with the exit code. */
  async terminate(n: number): Promise<number | null> {
    const i = this.running.get(n);
    if (i === undefined) return null;
    i.duocell.kill('SIGTERM');
    const code = await i.exited;
    i.bird.kill('SIGTERM');
    this.running.delete(n);
    return code;
  }

  /** The next hops of the anycast route at the router (instance numbers). */
  async nexthops(): Promise<number[]> {
    const out = await this.rtr.exec('ip', ['-4', 'route', 'show', `${POOL_ANYCAST}/32`], { allowFail: true });
    return [...out.matchAll(/via 10\.71\.(\d+)\.2/g)].map((m) => Number(m[1])).sort((a, b) => a - b);
  }

  /** Wait until the route's next hops satisfy `pred`; the milliseconds it took. */
  async waitRoute(pred: (hops: number[]) => boolean, ms = 30_000, stepMs = 10): Promise<number> {
    const t0 = Date.now();
    while (Date.now() - t0 < ms) {
      if (pred(await this.nexthops())) return Date.now() - t0;
      await sleep(stepMs);
    }
    throw new DuocellError('DC_TIMEOUT', `the anycast route did not change as awaited within ${ms} ms (now via ${JSON.stringify(await this.nexthops())})`);
  }

  close(): void {
    for (const i of this.running.values()) {
      i.duocell.kill('SIGKILL');
      i.bird.kill('SIGKILL');
    }
    this.running.clear();
  }
}

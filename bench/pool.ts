import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { netnsUnavailable, Topology, type Host } from '../src/sim/hosts.js';
import { Pool } from '../src/sim/pool.js';
import { ProxySelector } from '../src/services/proxy/selection.js';
import { normalizeProxies } from '../src/store/validate.js';
import { benchRoot } from './root.js';
import { failure, fromRuns, runsWanted, sleep, type BenchResult } from './lib.js';

/**
 * The concentrator pool (issue 15), on src/sim/pool.ts: 3 instances of `duocell run` behind an
 * edge router (BIRD, BGP + BFD, ECMP on L4), a 4th added and removed; two cells run the
 * product's selecting connector with the pool's anycast address as their candidate.
 *
 *   failover-new-session  ms: an instance is killed (kill -9 duocell, its BIRD frozen) while each
 *                         cell opens a session every 20 ms; from the kill until new sessions
 *                         succeed for good (the end of the first success after the last failure).
 *                         Baseline: the router's withdrawal of the route (BFD), the floor.
 *   pool-spread           fraction: the busiest instance's share of 300 sessions on 3. Baseline 1/3.
 *   rehash-survival       fraction of 30 long M-sessions (C flag, joined) completing intact when a
 *                         4th instance joins the ECMP group. Baseline: the fraction of their initial
 *                         subflows that stayed on their instance, which is what plain TCP keeps.
 *   selection-overhead    µs per choose() with 10 candidates; baseline with 1.
 */
const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = benchRoot();
const BIN = path.join(ROOT, 'bin/duocell.js');
const CHILD = path.join(here, fs.existsSync(path.join(here, 'pool-child.js')) ? 'pool-child.js' : 'pool-child.ts');

interface Line {
  session?: { id: string; tag: string; ok: boolean; err?: string; start: number; end: number };
  conn?: { id: string; peer: string; at: number };
  ready?: boolean;
}

class Child {
  readonly lines: Line[] = [];
  constructor(readonly p: ChildProcess) {
    let buf = '';
    p.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        try {
          this.lines.push(JSON.parse(buf.slice(0, i)) as Line);
        } catch {
          /* a log line */
        }
        buf = buf.slice(i + 1);
      }
    });
    p.stderr!.resume();
  }
  send(o: object): void {
    this.p.stdin!.write(JSON.stringify(o) + '\n');
  }
  async ready(ms = 60_000): Promise<void> {
    const t0 = Date.now();
    while (!this.lines.some((l) => l.ready === true)) {
      if (Date.now() - t0 > ms || this.p.exitCode !== null) throw new Error('pool child not ready');
      await sleep(50);
    }
  }
}

function spawnChild(h: Host, args: string[]): Child {
  const loader = CHILD.endsWith('.ts') ? process.execArgv : [];
  return new Child(h.spawn(process.execPath, [...loader, CHILD, ...args], { env: { ...process.env, DUOCELL_LOG_LEVEL: 'silent' }, stdio: ['pipe', 'pipe', 'pipe'] }));
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export function selectionOverhead(): BenchResult {
  const mk = (n: number): ProxySelector =>
    new ProxySelector({
      candidates: () => normalizeProxies(Array.from({ length: n }, (_, i) => ({ name: `c${i}`, address: `192.0.2.${i + 1}`, port: 5124, protocol: 'convert', priority: i % 3, apps: i % 4 === 0 ? [{ name: 'video', ports: [443], prefixes: ['198.51.100.0/24'] }] : [] }))),
      probe: async () => 10,
    });
  const time = (s: ProxySelector): number => {
    const N = 200_000;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) s.choose({ policy: null, address: `198.51.100.${i & 255}`, port: i & 1 ? 443 : 80 });
    return Number(process.hrtime.bigint() - t0) / 1000 / N;
  };
  const ten = mk(10);
  const one = mk(1);
  time(ten); // warm up
  time(one);
  const runs = runsWanted();
  const v: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < runs; r++) {
    v.push(time(ten));
    b.push(time(one));
  }
  return fromRuns('selection-overhead', 'µs/session', v, b, '1 candidate', { note: 'ProxySelector.choose() with 10 candidates (apps on some), 200k calls per run' });
}

function birdMissing(): string | false {
  try {
    execFileSync('bird', ['--version'], { stdio: 'ignore' });
    return false;
  } catch {
    return 'needs BIRD 2 (bird2)';
  }
}

export async function poolBenches(): Promise<BenchResult[]> {
  const out: BenchResult[] = [selectionOverhead()];
  const why = (await netnsUnavailable()) || birdMissing();
  const names: Array<[string, string, string]> = [
    ['failover-new-session', 'ms', 'route withdrawn at the router (BFD)'],
    ['pool-spread', 'fraction', 'an even spread (1/3)'],
    ['rehash-survival', 'fraction', 'initial subflows kept (plain TCP)'],
  ];
  if (why !== false) return [...out, ...names.map(([n, u, b]) => failure(n, u, b, why))];
  const topo = new Topology(`bpool${process.pid}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bpool-'));
  let pool: Pool | undefined;
  const kids: Child[] = [];
  try {
    pool = await Pool.build(topo, { instances: 4, start: 0, cells: 2, dir, bin: BIN, logLevel: 'warn' });
    const p = pool;
    const srv = spawnChild(p.srv, ['srv']);
    kids.push(srv);
    await srv.ready();
    for (const n of [1, 2, 3]) await p.startInstance(n);
    await p.waitRoute((h) => h.length === 3, 60_000, 100);
    await sleep(2000); // BFD up after BGP
    const cells = p.cells.map((c, i) => spawnChild(c, ['cell', `C${i + 1}`]));
    kids.push(...cells);
    for (const c of cells) await c.ready();
    const both = (o: object): void => cells.forEach((c) => c.send(o));
    const sessions = (tag: string): NonNullable<Line['session']>[] => cells.flatMap((c) => c.lines.flatMap((l) => (l.session?.tag === tag ? [l.session] : [])));
    const conns = (tag: string): NonNullable<Line['conn']>[] => srv.lines.flatMap((l) => (l.conn !== undefined && l.conn.id.split('-')[1] === tag ? [l.conn] : []));
    const waitFor = async (what: string, f: () => boolean, ms = 60_000): Promise<void> => {
      const t0 = Date.now();
      while (!f()) {
        if (Date.now() - t0 > ms) throw new Error(`timed out: ${what}`);
        await sleep(20);
      }
    };
    const runs = runsWanted();

    // pool-spread
    const spreadV: number[] = [];
    const spreadSeen: string[] = [];
    for (let r = 0; r < Math.max(3, Math.min(runs, 5)); r++) {
      const tag = `p${r}`;
      both({ short: { n: 150, tag } });
      await waitFor('300 spread sessions', () => sessions(tag).length >= 300);
      const bad = sessions(tag).filter((s) => !s.ok);
      if (bad.length > 0) throw new Error(`pool-spread: ${bad.length} sessions failed (${bad[0]!.err})`);
      const per = new Map<string, number>();
      for (const c of conns(tag)) per.set(c.peer, (per.get(c.peer) ?? 0) + 1);
      spreadV.push(Math.max(...per.values()) / 300);
      spreadSeen.push(JSON.stringify(Object.fromEntries(per)));
    }
    out.push(fromRuns('pool-spread', 'fraction', spreadV, spreadV.map(() => 1 / 3), 'an even spread (1/3)', { target: '≤ 0.40', judge: ({ value }) => value <= 0.4, note: `300 sessions from 2 cells on 3 instances, L4 ECMP hash; per run: ${spreadSeen.join(' ')}` }));

    // failover-new-session
    const failV: number[] = [];
    const failB: number[] = [];
    for (let r = 0; r < runs; r++) {
      const victim = 1 + (r % 3);
      const tag = `f${r}`;
      both({ stream: { everyMs: 20, tag } });
      await sleep(1000);
      const killAt = Date.now();
      p.kill(victim);
      const withdrawMs = await p.waitRoute((h) => !h.includes(victim), 10_000, 5);
      await sleep(3000);
      both({ stop: tag });
      await sleep(2500); // the last sessions of the stream end (4 KiB each; a failure is a reset, fast)
      const after = sessions(tag).filter((s) => s.start >= killAt).sort((a, b) => a.start - b.start);
      let lastFail = -1;
      after.forEach((s, i) => {
        if (!s.ok) lastFail = i;
      });
      const firstGood = after.slice(lastFail + 1).sort((a, b) => a.end - b.end)[0];
      failV.push(firstGood === undefined ? Infinity : firstGood.end - killAt);
      failB.push(withdrawMs);
      await p.reap(victim);
      await p.startInstance(victim);
      await p.waitRoute((h) => h.includes(victim), 60_000, 50);
      await sleep(2000); // BFD up again
    }
    out.push(fromRuns('failover-new-session', 'ms', failV, failB, 'route withdrawn at the router (BFD)', { target: '≤ 1000', judge: ({ value }) => value <= 1000, censored: true, note: 'kill -9 an instance (BIRD frozen) while 2 cells open a session every 20 ms each; until sessions succeed for good' }));

    // rehash-survival
    const survV: number[] = [];
    const survB: number[] = [];
    const initial = async (): Promise<number> => {
      let n = 0;
      for (const [k, h] of p.hosts.entries()) {
        if (!p.running.has(k + 1)) continue;
        const o = await h.exec('ss', ['-tnH', 'state', 'established', '( sport = :5124 )'], { allowFail: true });
        n += o.split('\n').filter((l) => /10\.70\./.test(l)).length;
      }
      return n;
    };
    for (let r = 0; r < Math.max(3, Math.min(runs, 5)); r++) {
      const tag = `r${r}`;
      both({ long: { n: 15, tag } });
      await waitFor('30 long sessions', () => conns(tag).length >= 30);
      await sleep(1500); // joined
      const before = await initial();
      await p.startInstance(4);
      await p.waitRoute((h) => h.includes(4), 30_000, 20);
      await sleep(2000);
      const kept = await initial();
      both({ finish: tag });
      await waitFor('30 long sessions end', () => sessions(tag).length >= 30);
      survV.push(sessions(tag).filter((s) => s.ok).length / 30);
      survB.push(before === 0 ? 0 : Math.min(1, kept / before));
      await p.terminate(4);
      await p.waitRoute((h) => !h.includes(4), 30_000, 20);
      await sleep(500);
    }
    out.push(fromRuns('rehash-survival', 'fraction', survV, survB, 'initial subflows kept (plain TCP)', { note: '30 joined M-sessions on 3 instances when a 4th joins the ECMP group; the rehashed initial subflows are reset, the joins carry on' }));
  } catch (e) {
    const have = new Set(out.map((r) => r.name));
    for (const [n, u, b] of names) if (!have.has(n)) out.push(failure(n, u, b, (e as Error).message.slice(0, 1500)));
  } finally {
    for (const k of kids) k.p.kill('SIGKILL');
    pool?.close();
    await topo.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { DuocellError } from '../src/core/errors.js';
import { applyRuleset, interceptNft, NftElements } from '../src/drivers/nft/index.js';
import { Intercept } from '../src/services/intercept/index.js';

/**
 * CPU of the liveness renewals (issue 17): the Intercept service with livenessMs 1500 (a
 * renewal every 500 ms) for D seconds in a namespace of its own, once per mode, all modes at once:
 *   netlink  renewals over the nfnetlink socket (drivers/nft/netlink.ts), what ships
 *   nft      renewals through the `nft` program (the fallback, and what shipped before)
 *   idle     the same process with steering started but no renewals (livenessMs 0)
 * Each child reads its own /proc/self/stat: utime+stime (itself) and cutime+cstime (the nft
 * processes it waited for); with --loop-delay also the event loop's delay
 * (monitorEventLoopDelay, 1 ms resolution: what a connection in flight waits). Needs root and nft.
 *
 *   node --import=@tapjs/typescript/import bench/liveness-cpu.ts [seconds=60] [--loop-delay]
 */

const TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

function ticks(): { self: number; children: number } {
  const s = readFileSync('/proc/self/stat', 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { self: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) };
}

async function child(mode: 'netlink' | 'nft' | 'idle', seconds: number, loopDelay: boolean): Promise<void> {
  const elements = new NftElements({
    program: { applyRuleset },
    ...(mode === 'nft' ? { open: () => Promise.reject(new DuocellError('DC_NETLINK_SOCKET', 'forced off for the comparison')) } : {}),
  });
  const i = new Intercept({ table: 'nftnlcpu', lanInterfaces: ['lan0'], ports: [{ port: 8000, claim: 'mptcp' }, { port: 8002, claim: 'all' }], mark: 0x10, routeTable: 110, mserverTtlS: 60, synRate: 100, synBurst: 200, perSourceMax: 10, livenessMs: mode === 'idle' ? 0 : 1500 }, interceptNft(elements));
  await i.start();
  await new Promise((r) => setTimeout(r, 1000)); // the first renewal chose its path
  // optional: the 1 ms sampling timer costs about as much CPU as the renewals themselves
  const h = loopDelay ? monitorEventLoopDelay({ resolution: 1 }) : undefined;
  h?.enable();
  const t0 = ticks();
  const w0 = Date.now();
  const keep = setInterval(() => {}, 1000); // renewals' timer is unref'd
  await new Promise((r) => setTimeout(r, seconds * 1000));
  clearInterval(keep);
  const t1 = ticks();
  h?.disable();
  const wall = (Date.now() - w0) / 1000;
  const ms = (n: number): number => Math.round((n * 1000) / TCK);
  process.stdout.write(JSON.stringify({
    mode,
    via: elements.via ?? 'none',
    wallS: Math.round(wall),
    renewals: i.renewals,
    selfCpuMs: ms(t1.self - t0.self),
    childrenCpuMs: ms(t1.children - t0.children),
    // how long the event loop was held up (a connection in flight waits that long)
    ...(h === undefined ? {} : { loopDelayMs: { p50: Number((h.percentile(50) / 1e6).toFixed(2)), p99: Number((h.percentile(99) / 1e6).toFixed(2)), max: Number((h.max / 1e6).toFixed(2)) } }),
    totalCpuPct: Number((((ms(t1.self - t0.self) + ms(t1.children - t0.children)) / 1000 / wall) * 100).toFixed(2)),
  }) + '\n');
  await i.stop();
}

async function main(seconds: number, loopDelay: boolean): Promise<void> {
  const modes = ['netlink', 'nft', 'idle'] as const;
  const loader = process.execArgv.filter((a) => a.startsWith('--import'));
  const file = new URL(import.meta.url).pathname;
  const results = await Promise.all(modes.map(async (m) => {
    const ns = `nftnl-cpu-${m}-${process.pid}`;
    execFileSync('ip', ['netns', 'add', ns]);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    try {
      const c = spawn('ip', ['netns', 'exec', ns, process.execPath, ...loader, file, '--child', m, String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, DUOCELL_LOG_LEVEL: 'silent' } });
      let out = '';
      c.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const code = await new Promise((r) => c.on('exit', r));
      try {
        return JSON.parse(out.trim().split('\n').at(-1) ?? '') as Record<string, unknown>;
      } catch {
        return { mode: m, error: `child exited ${String(code)} without a result` };
      }
    } finally {
      execFileSync('ip', ['netns', 'del', ns]);
    }
  }));
  process.stdout.write(JSON.stringify({ seconds, clkTck: TCK, nproc: Number(execFileSync('nproc').toString().trim()), loadavg: readFileSync('/proc/loadavg', 'utf8').trim(), results }, null, 1) + '\n');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const i = process.argv.indexOf('--child');
  const loopDelay = process.argv.includes('--loop-delay');
  if (i >= 0) await child(process.argv[i + 1] as 'netlink' | 'nft' | 'idle', Number(process.argv[i + 2]), loopDelay);
  else await main(Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 60), loopDelay);
}

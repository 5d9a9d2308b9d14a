import path from 'node:path';
import { removeBenchDirs, type BenchResult } from './lib.js';
import { assembleLatest, currentStamp, RESULTS_DIR, stampEntries, writeJson } from './results.js';
import { updateReadme } from './readme.js';

/**
 * `npm run bench`: every benchmark against its baseline, in this run. Each group writes its own
 * stamped file bench/results/<group>.json; latest.json is then assembled from all group files
 * (entries measured before code that can change them are marked stale) and README.md's figures
 * table regenerated from it (bench/README.md). `npm run bench -- NAME…` runs only those groups.
 * BENCH_LINKS=realistic,ideal chooses the link worlds, BENCH_RUNS the runs per figure (5);
 * BENCH_RESULTS_DIR=DIR writes the files there instead and leaves README.md alone (trial runs).
 */
type Group = () => Promise<BenchResult[]>;
const groups: Record<string, Group> = {
  relay: async () => (await import('./engine.js')).relayLoopback(),
  setup: async () => (await import('./engine.js')).setupBench(),
  memory: async () => (await import('./engine.js')).sessionsMemory(),
  netns: async () => (await import('./netns.js')).netnsBenches(),
  convert: async () => (await import('./convert.js')).convertBenches(),
  pm: async () => (await import('./pm.js')).pmBenches(),
  links: async () => (await import('./links.js')).linksBenches(),
  ota: async () => ((await import('./ota.js')) as { run(): Promise<BenchResult[]> }).run(),
  udp: async () => (await import('./udp.js')).udpBenches(),
  pool: async () => (await import('./pool.js')).poolBenches(),
  flood: async () => (await import('./flood.js')).floodBenches(),
  'setup-cell': async () => (await import('./setup-cell.js')).setupCellBench(),
};

/** Entries of groups that do not say their world or path manager (in-process, no links). */
const DEFAULTS = { links: 'n/a', pm: 'n/a' };

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const unknown = only.filter((n) => groups[n] === undefined);
  if (unknown.length > 0) {
    process.stderr.write(`no benchmark group ${unknown.join(', ')} (groups: ${Object.keys(groups).join(', ')})\n`);
    process.exitCode = 2;
    return;
  }
  const names = only.length > 0 ? only : Object.keys(groups);
  const dir = process.env.BENCH_RESULTS_DIR ?? RESULTS_DIR;
  const t0 = Date.now();
  for (const name of names) {
    const g0 = Date.now();
    // the commit is what the group measured: taken before it runs (the date when it is done)
    const atStart = currentStamp();
    let rs: BenchResult[];
    try {
      rs = await groups[name]!();
    } catch (e) {
      process.stderr.write(`bench ${name} failed: ${(e as Error).stack}\n`);
      rs = [{ name: `${name} (group)`, unit: '', baselineName: '', error: `the group failed: ${(e as Error).message}`.slice(0, 2000) }];
    } finally {
      removeBenchDirs(); // the group's board and state directories
    }
    const entries = stampEntries(name, rs, { ...atStart, date: new Date().toISOString() }, DEFAULTS);
    for (const r of entries) {
      const v = r.error !== undefined ? `FAILED: ${r.error}` : `${r.value} ${r.unit} (${r.min}–${r.max}, ${r.runs} runs; baseline ${r.baseline}, ${r.baselineName}; ratio ${r.ratio})`;
      process.stdout.write(`${r.name} [${r.links}]: ${v}\n`);
    }
    writeJson(path.join(dir, `${name}.json`), entries);
    process.stdout.write(`group ${name}: ${((Date.now() - g0) / 1000).toFixed(0)} s, wrote ${path.join(dir, `${name}.json`)}\n`);
  }
  const all = assembleLatest(Object.keys(groups), dir);
  if (dir === RESULTS_DIR) updateReadme();
  process.stdout.write(`wrote ${path.join(dir, 'latest.json')} (${all.length} entries, ${all.filter((e) => e.stale === true).length} stale) and README.md's figures in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
}
void main();

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchResult } from './lib.js';

/**
 * `npm run bench`: every benchmark against its baseline, in this run; JSON to
 * bench/results/latest.json. `npm run bench -- NAME…` runs only those groups.
 */
const groups: Record<string, () => Promise<BenchResult[]>> = {
  relay: async () => (await import('./engine.js')).relayLoopback(),
  setup: async () => (await import('./engine.js')).setupBench(),
  memory: async () => (await import('./engine.js')).sessionsMemory(),
  netns: async () => (await import('./netns.js')).netnsBenches(),
  convert: async () => (await import('./convert.js')).convertBenches(),
  pm: async () => (await import('./pm.js')).pmBenches(),
  links: async () => (await import('./links.js')).linksBenches(),
};

const extra: Record<string, string> = {
  ota: './ota.js',
};

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const out: BenchResult[] = [];
  const names = only.length > 0 ? only : [...Object.keys(groups), ...Object.keys(extra)];
  for (const name of names) {
    try {
      let rs: BenchResult[];
      if (groups[name] !== undefined) rs = await groups[name]();
      else if (extra[name] !== undefined) rs = await ((await import(extra[name])) as { run(): Promise<BenchResult[]> }).run();
      else throw new Error(`no benchmark group ${name}`);
      for (const r of rs) process.stdout.write(`${r.name}: ${r.value} ${r.unit} (baseline ${r.baseline}, ${r.baselineName}; ratio ${r.ratio})\n`);
      out.push(...rs);
    } catch (e) {
      process.stderr.write(`bench ${name} failed: ${(e as Error).stack}\n`);
    }
  }
  const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bench/results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'latest.json');
  let merged: BenchResult[] = out;
  if (only.length > 0 && fs.existsSync(file)) {
    const old = JSON.parse(fs.readFileSync(file, 'utf8')) as BenchResult[];
    merged = [...old.filter((o) => !out.some((n) => n.name === o.name)), ...out];
  }
  fs.writeFileSync(file, JSON.stringify(merged, null, 2) + '\n');
  process.stdout.write(`wrote ${file}\n`);
}
void main();

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { Store } from '../src/store/index.js';
import { OtaService } from '../src/ota/index.js';
import { OPERATOR, synthSet, fullDoc, signed } from '../test/unit/ota-fixtures.js';
import { killRounds } from '../test/unit/ota-kill-harness.js';
import { fromRuns, type BenchResult } from './lib.js';

/**
 * `ota-apply`: seconds to verify and apply a signed 10,000-subscriber bundle (each with an
 * IPv4 address, an IPv6 /64 and a MAC) over a store holding another 10,000-subscriber
 * version — signature, schema, content checks, the rollback snapshot, the replace, the audit
 * row, one durable commit. Baseline: the same rows written by one plain INSERT transaction
 * into an empty file with the same tables (no checks, no snapshot).
 * `policy-lookup`: median µs of Store.resolvePolicy() (longest-prefix match, IPv4 and IPv6)
 * with those 10,000 subscribers. Baseline: a plain Map lookup of the address string.
 *
 * `node --import ./scripts/ts-loader.mjs bench/ota.ts --soak 100` runs the kill -9 soak.
 */

const N = 10_000;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function applyOnce(dir: string, b1: string, b2: string): Promise<number> {
  fs.rmSync(dir, { recursive: true, force: true });
  const store = await Store.open({ dir, backups: false });
  try {
    const ota = new OtaService({ store, boardKeys: [OPERATOR.publicB64] });
    ota.apply(b1, 'cli');
    const t0 = performance.now();
    ota.apply(b2, 'cli');
    const s = (performance.now() - t0) / 1000;
    if (store.countSubscribers() !== N || store.otaState().currentVersion !== 2) throw new Error('apply did not land');
    return s;
  } finally {
    store.close();
  }
}

function plainInsertOnce(file: string, set: ReturnType<typeof synthSet>): number {
  for (const f of [file, `${file}-wal`, `${file}-shm`]) fs.rmSync(f, { force: true });
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec(`CREATE TABLE subscribers (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, policy TEXT, enabled INTEGER NOT NULL);
      CREATE TABLE subscriber_ids (kind TEXT NOT NULL, value TEXT NOT NULL, subscriber_id INTEGER NOT NULL, PRIMARY KEY (kind, value)) WITHOUT ROWID;`);
    const ins = db.prepare('INSERT INTO subscribers (name, policy, enabled) VALUES (?, ?, 1)');
    const id = db.prepare('INSERT INTO subscriber_ids (kind, value, subscriber_id) VALUES (?, ?, ?)');
    const t0 = performance.now();
    db.transaction(() => {
      for (const s of set.subscribers) {
        const sid = ins.run(s.name, s.policy ?? null).lastInsertRowid;
        for (const a of s.addresses ?? []) id.run('prefix', a, sid);
        for (const m of s.macs ?? []) id.run('mac', m, sid);
      }
    })();
    return (performance.now() - t0) / 1000;
  } finally {
    db.close();
  }
}

export async function run(): Promise<BenchResult[]> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-bench-ota-'));
  try {
    const set2 = synthSet(N, 'new');
    const b1 = signed(fullDoc(1, synthSet(N, 'old')));
    const b2 = signed(fullDoc(2, set2));
    const applies: number[] = [];
    const plains: number[] = [];
    for (let i = 0; i < 3; i++) {
      applies.push(await applyOnce(path.join(work, 'store'), b1, b2));
      plains.push(plainInsertOnce(path.join(work, 'plain.db'), set2));
    }

    const store = await Store.open({ dir: path.join(work, 'store'), backups: false });
    const addrs = Array.from({ length: 1000 }, (_, i) => {
      const k = (i * 7919) % N;
      return i % 2 === 0 ? `10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}` : `2001:db8:${(k >> 16).toString(16)}:${(k & 0xffff).toString(16)}::42`;
    });
    const map = new Map<string, unknown>(addrs.map((a) => [a, store.resolvePolicy(a)]));
    let sink = 0;
    const batches: number[] = [];
    const plainBatches: number[] = [];
    for (let b = 0; b < 200; b++) {
      let t0 = performance.now();
      for (const a of addrs) if (store.resolvePolicy(a).subscriber !== null) sink++;
      batches.push(((performance.now() - t0) * 1000) / addrs.length);
      t0 = performance.now();
      for (const a of addrs) if (map.get(a) !== undefined) sink++;
      plainBatches.push(((performance.now() - t0) * 1000) / addrs.length);
    }
    store.close();
    if (sink !== 400 * addrs.length) throw new Error(`lookups missed: ${sink}`);
    return [
      fromRuns('ota-apply', 's', applies, plains, 'one plain INSERT transaction of the same 10k subscribers + 30k identifiers', {
        judge: ({ value }) => value < 1,
        target: '< 1 s',
        note: `verify + snapshot + replace + audit, 10k over 10k, median of ${applies.length}: ${applies.map((x) => x.toFixed(3)).join(', ')}`,
      }),
      fromRuns('policy-lookup', 'µs', batches, plainBatches, 'Map.get of the address string', {
        judge: ({ value }) => value <= 50,
        target: '≤ 50 µs median',
        note: 'Store.resolvePolicy, longest-prefix match over 10k subscribers (IPv4 /32 + IPv6 /64), median of 200 batches of 1000',
      }),
    ];
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** The kill -9 soak: `bench/ota.ts --soak ROUNDS [SEED]`. */
async function soak(rounds: number, seed: number): Promise<void> {
  const rep = await killRounds(rounds, {
    seed,
    onRound: (r, i) => process.stdout.write(`round ${i}: ${r.killed ? `killed after ${r.delayMs} ms` : 'completed'} → v${r.version} ${r.ok ? 'ok' : 'FAIL ' + r.problems.join('; ')}\n`),
  });
  const bad = rep.rounds.filter((r) => !r.ok).length;
  const v1 = rep.rounds.filter((r) => r.version === 1).length;
  const v2 = rep.rounds.filter((r) => r.version === 2).length;
  const killed = rep.rounds.filter((r) => r.killed).length;
  process.stdout.write(`kill soak: ${rounds} rounds, ${killed} killed mid-way, ${v1} at old version, ${v2} at new version, ${bad} failures (clean apply ${rep.applyMs.toFixed(0)} ms)\n`);
  if (bad > 0) process.exitCode = 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const i = process.argv.indexOf('--soak');
  if (i !== -1) await soak(Number(process.argv[i + 1] ?? 100), Number(process.argv[i + 2] ?? 1));
  else for (const r of await run()) process.stdout.write(`${JSON.stringify(r)}\n`);
}

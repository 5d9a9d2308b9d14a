/**
 * Kill -9 during apply: a child process applies a signed 10,000-subscriber bundle (v2) over a
 * store holding another 10,000-subscriber version (v1) and is killed with SIGKILL after a
 * random delay. Afterwards the store must hold exactly v1 or exactly v2 (same policy digest
 * as a clean apply), pass PRAGMA integrity_check and foreign_key_check, and the audit log's
 * last bundle row must name the version in force.
 * Used by test/unit/ota-kill.test.ts (a few rounds) and bench/ota.ts (the full 100).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Store } from '../../src/store/index.js';
import { OtaService } from '../../src/ota/index.js';
import { OPERATOR, synthSet, fullDoc, signed } from './ota-fixtures.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CHILD = path.join(here, 'ota-kill-child.ts');

/** node flags that let the child run TypeScript, taken from our own process. */
function tsFlags(): string[] {
  const keep: string[] = [];
  const a = process.execArgv;
  for (let i = 0; i < a.length; i++) {
    const f = a[i]!;
    const next = a[i + 1];
    if ((f === '--import' || f === '--loader' || f === '--experimental-loader') && next !== undefined) {
      if (/typescript|ts-loader|ts-node|tsx|tsimp/.test(next)) keep.push(f, next);
      i++;
    } else if (/^--(import|loader|experimental-loader)=/.test(f) && /typescript|ts-loader|ts-node|tsx|tsimp/.test(f)) {
      keep.push(f);
    }
  }
  if (keep.length === 0) {
    const tap = path.resolve(here, '../../node_modules/@tapjs/typescript/dist/esm/import.mjs');
    keep.push(`--import=${new URL(`file://${tap}`).href}`);
  }
  return keep;
}

export interface KillRound {
  delayMs: number;
  killed: boolean;
  version: number;
  ok: boolean;
  problems: string[];
}

export interface KillReport {
  rounds: KillRound[];
  applyMs: number;
  oldCount: number;
  newCount: number;
}

function runChild(dir: string, bundle: string, killAfterReadyMs: number | null): Promise<{ killed: boolean; ms: number | null }> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, DUOCELL_LOG_LEVEL: 'silent', TS_NODE_TRANSPILE_ONLY: '1' };
    delete env.NODE_OPTIONS;
    const c = spawn(process.execPath, [...tsFlags(), CHILD, dir, bundle, OPERATOR.publicB64], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    let err = '';
    let timer: NodeJS.Timeout | undefined;
    c.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (killAfterReadyMs !== null && timer === undefined && out.includes('ready\n')) {
        timer = setTimeout(() => c.kill('SIGKILL'), killAfterReadyMs);
      }
    });
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    c.on('error', reject);
    c.on('close', (code, sig) => {
      if (timer !== undefined) clearTimeout(timer);
      const m = /done ([0-9.]+)/.exec(out);
      if (sig === 'SIGKILL') resolve({ killed: true, ms: null });
      else if (code === 0 && m !== null) resolve({ killed: false, ms: Number(m[1]) });
      else reject(new Error(`child exited ${code ?? sig}: ${err.slice(-2000)}`));
    });
  });
}

/** Deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

export async function killRounds(rounds: number, o: { subscribers?: number; seed?: number; onRound?: (r: KillRound, i: number) => void } = {}): Promise<KillReport> {
  const n = o.subscribers ?? 10_000;
  const rand = prng(o.seed ?? 7);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-ota-kill-'));
  try {
    const oldBundle = path.join(work, 'v1.json');
    const newBundle = path.join(work, 'v2.json');
    fs.writeFileSync(oldBundle, signed(fullDoc(1, synthSet(n, 'old', { credentials: true }))));
    fs.writeFileSync(newBundle, signed(fullDoc(2, synthSet(n, 'new', { credentials: true }))));

    // the template store at v1, and the expected digests of v1 and v2
    const tpl = path.join(work, 'tpl');
    const s = await Store.open({ dir: tpl, backups: false });
    new OtaService({ store: s, boardKeys: [OPERATOR.publicB64] }).apply(fs.readFileSync(oldBundle), 'cli');
    const digest1 = s.policyDigest();
    s.close(); // checkpoints the WAL into duocell.db
    const fresh = (dir: string): void => {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir);
      fs.copyFileSync(path.join(tpl, 'duocell.db'), path.join(dir, 'duocell.db'));
    };
    const cal = path.join(work, 'cal');
    fresh(cal);
    const c = await runChild(cal, newBundle, null);
    const applyMs = c.ms!;
    const s2 = await Store.open({ dir: cal, backups: false });
    const digest2 = s2.policyDigest();
    s2.close();

    const out: KillRound[] = [];
    const dir = path.join(work, 'run');
    for (let i = 0; i < rounds; i++) {
      fresh(dir);
      // from just after "ready" to a little past the measured apply time
      const delayMs = Math.floor(rand() * applyMs * 1.3);
      const r = await runChild(dir, newBundle, delayMs);
      const problems: string[] = [];
      const st = await Store.open({ dir, backups: false });
      let version = -1;
      try {
        const ic = st.integrityCheck();
        if (ic !== 'ok') problems.push(`integrity_check: ${ic}`);
        const fk = st.foreignKeyViolations();
        if (fk > 0) problems.push(`foreign_key_check: ${fk} rows`);
        version = st.otaState().currentVersion;
        const d = st.policyDigest();
        if (version === 1 && d !== digest1) problems.push('at v1 but content differs from v1');
        else if (version === 2 && d !== digest2) problems.push('at v2 but content differs from v2');
        else if (version !== 1 && version !== 2) problems.push(`version ${version}`);
        const bundles = st.listAudit({ limit: 10 }).filter((a) => a.entity === 'bundle');
        if (bundles[0]?.key !== String(version)) problems.push(`audit's last bundle is ${bundles[0]?.key}, store at ${version}`);
        if (bundles.length !== version) problems.push(`${bundles.length} bundle audit rows at version ${version}`);
        if (!r.killed && version !== 2) problems.push('child finished but store not at v2');
      } finally {
        st.close();
      }
      const round = { delayMs, killed: r.killed, version, ok: problems.length === 0, problems };
      o.onRound?.(round, i);
      out.push(round);
    }
    return { rounds: out, applyMs, oldCount: n, newCount: n };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

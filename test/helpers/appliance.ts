import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Host } from '../../src/sim/hosts.js';
import type { PeerReport } from '../../src/sim/peer.js';

/** Run compiled duocell pieces inside test namespaces (npm test builds dist/ first). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const PEER = path.join(ROOT, 'dist/src/sim/peer.js');
export const BIN = path.join(ROOT, 'bin/duocell.js');

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
}

/** Start `duocell run` in a namespace with a board written to a temp dir; resolves once the web API answers. */
export async function startCell(h: Host, board: object, webPort: number): Promise<{ child: ChildProcess; dir: string; logs: string[] }> {
  const dir = tmpDir('dc-board');
  fs.writeFileSync(path.join(dir, 'board.json'), JSON.stringify(board));
  const child = h.spawn(process.execPath, [BIN, 'run', '--board', path.join(dir, 'board.json'), '--state-dir', path.join(dir, 'state')], {
    env: { ...process.env, DUOCELL_LOG_LEVEL: 'info' },
  });
  const logs: string[] = [];
  child.stdout?.on('data', (d: Buffer) => logs.push(d.toString()));
  child.stderr?.on('data', (d: Buffer) => logs.push(d.toString()));
  const end = Date.now() + 60_000; // a start-up bound, not a timing claim: a loaded 2-core host needs it
  for (;;) {
    const r = await nsFetch(h, `http://127.0.0.1:${webPort}/api/v1/health`).catch(() => undefined);
    if (r !== undefined && r.status === 200) break;
    if (child.exitCode !== null || Date.now() > end) throw new Error(`cell did not start:\n${logs.join('')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return { child, dir, logs };
}

/** fetch() from inside a namespace (a short node process there). */
export async function nsFetch(h: Host, url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const script = `const r = await fetch(${JSON.stringify(url)}, ${JSON.stringify(init)});
const headers = {}; r.headers.forEach((v, k) => { headers[k] = v; });
const sc = r.headers.getSetCookie ? r.headers.getSetCookie() : [];
if (sc.length) headers['set-cookie'] = sc.map((c) => c.split(';')[0]).join('; ');
process.stdout.write(JSON.stringify({ status: r.status, headers, body: await r.text() }));`;
  const out = await h.exec(process.execPath, ['--input-type=module', '-e', script]);
  return JSON.parse(out) as { status: number; headers: Record<string, string>; body: string };
}

/** Log in as admin through the first-boot set-up; returns headers for authenticated calls. */
export async function adminSession(h: Host, base: string, password = 'correct horse battery staple'): Promise<Record<string, string>> {
  const st = await nsFetch(h, `${base}/api/v1/auth/state`);
  const pre = st.headers['set-cookie'] ?? '';
  const csrf = (JSON.parse(st.body) as { csrf: string }).csrf;
  const r = await nsFetch(h, `${base}/api/v1/auth/setup`, {
    method: 'POST',
    headers: { cookie: pre, 'x-csrf-token': csrf, 'content-type': 'application/json' },
    body: JSON.stringify({ password }),
  });
  if (r.status !== 200) throw new Error(`setup failed: ${r.status} ${r.body}`);
  const cookie = [pre, r.headers['set-cookie'] ?? ''].filter((x) => x !== '').join('; ');
  return { cookie, 'x-csrf-token': (JSON.parse(r.body) as { csrf: string }).csrf };
}

/** Start the traffic peer's server in a namespace; reports arrive as parsed JSON lines. */
export function startPeerServerIn(h: Host, host: string, port: number, mptcp: boolean): { child: ChildProcess; reports: PeerReport[]; ready: Promise<void> } {
  const child = h.spawn(process.execPath, [PEER, 'server', host, String(port), ...(mptcp ? ['--mptcp'] : [])]);
  const reports: PeerReport[] = [];
  let errText = '';
  child.stderr?.on('data', (d: Buffer) => (errText += d.toString()));
  child.once('exit', (code, sig) => {
    if (code !== 0 && sig !== 'SIGKILL' && sig !== 'SIGTERM') process.stderr.write(`peer server ${host}:${port} in ${h.ns} exited (${code ?? sig}): ${errText}\n`);
  });
  let buf = '';
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((r) => (onReady = r));
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const j = JSON.parse(line) as PeerReport | { listening: unknown };
      if ('listening' in j) onReady();
      else reports.push(j);
    }
  });
  return { child, reports, ready };
}

/** Run the peer client in a namespace and parse its report. */
export async function peerClient(h: Host, host: string, port: number, send: number, receive: number, opts: { mptcp: boolean; from?: string; timeoutMs?: number }): Promise<PeerReport> {
  const out = await h.exec(process.execPath, [PEER, 'client', host, String(port), String(send), String(receive), ...(opts.mptcp ? ['--mptcp'] : []), ...(opts.from === undefined ? [] : ['--from', opts.from]), ...(opts.timeoutMs === undefined ? [] : ['--timeout', String(opts.timeoutMs)])], { allowFail: true });
  return JSON.parse(out.trim().split('\n').pop() ?? '{}') as PeerReport;
}

export async function waitFor<T>(f: () => T | undefined | Promise<T | undefined>, ms = 20_000, step = 100): Promise<T | undefined> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) return undefined;
    await new Promise((r) => setTimeout(r, step));
  }
}

/**
 * `duocell run` with `board` in h (no web page), resolved once its path manager runs and its
 * listener on `port` is up; the process and its log lines (stdout and stderr). Throws with the
 * log's tail when it exits or is not up within 90 s.
 */
export async function startDuocellRun(h: Host, board: object, env: Record<string, string>, opts: { tmpPrefix: string; port?: number }): Promise<{ child: ChildProcess; logs: string[] }> {
  const dir = tmpDir(opts.tmpPrefix);
  fs.writeFileSync(path.join(dir, 'board.json'), JSON.stringify(board));
  const child = h.spawn(process.execPath, [BIN, 'run', '--board', path.join(dir, 'board.json'), '--state-dir', path.join(dir, 'state')], {
    env: { ...process.env, ...env },
  });
  const logs: string[] = [];
  child.stdout?.on('data', (d: Buffer) => logs.push(d.toString()));
  child.stderr?.on('data', (d: Buffer) => logs.push(d.toString()));
  const ok = await waitFor(async () => {
    if (child.exitCode !== null) return false;
    if (!logs.join('').includes('path manager running')) return undefined;
    return (await h.exec('ss', ['-Hltn', `sport = :${opts.port ?? 9000}`], { allowFail: true })).trim() !== '' ? true : undefined;
  }, 90_000, 200);
  if (ok !== true) {
    child.kill('SIGKILL');
    throw new Error(`duocell did not start:\n${logs.join('').slice(-3000)}`);
  }
  return { child, logs };
}

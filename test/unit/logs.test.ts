// Logs: repeated events rate-limited per code with a summary line; one `msg` per line (web
// lines carried it twice); `--json` commands print one JSON document on stdout with the logs
// on stderr (a fresh state directory's migration lines used to land on stdout); a terminal
// gets readable lines, anything else JSON.
import t from 'tap';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { LogLimiter } from '../../src/core/log-limit.js';
import { formatLogLine } from '../../src/core/log-format.js';
import { setLevel, getLevel } from '../../src/core/logger.js';
import { ProxyEngine } from '../../src/services/proxy/engine.js';
import { socks5Front } from '../../src/services/proxy/fronts/socks5.js';
import { directConnector } from '../../src/services/proxy/connector.js';
import { startServer } from './web-helpers.js';
import { socketIo } from '../../src/drivers/sockets/io.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Capture what the logger writes (it writes to process.stdout by default) at `level`. */
function capture(t: { teardown(fn: () => void): void }, level = 'warn'): string[] {
  const lines: string[] = [];
  const was = getLevel();
  const write = process.stdout.write.bind(process.stdout);
  setLevel(level as never);
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    const s = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    if (s.startsWith('{"level"')) {
      lines.push(...s.split('\n').filter((l) => l !== ''));
      return true;
    }
    return write(chunk as never, ...(rest as []));
  }) as typeof process.stdout.write;
  t.teardown(() => {
    process.stdout.write = write;
    setLevel(was as never);
  });
  return lines;
}

t.test('LogLimiter: first line written, the rest counted, one summary per window', async (t) => {
  const out: Array<{ fields: Record<string, unknown>; msg: string }> = [];
  const rec = (fields: Record<string, unknown>, msg: string): void => void out.push({ fields, msg });
  let now = 0;
  const timers: Array<{ fn: () => void; at: number; live: boolean }> = [];
  const lim = new LogLimiter({
    log: { warn: rec, info: rec, error: rec } as never,
    windowMs: 60_000,
    now: () => now,
    setTimer: (fn, ms) => {
      const x = { fn, at: now + ms, live: true };
      timers.push(x);
      return { cancel: () => void (x.live = false) };
    },
  });
  t.equal(lim.warn('DC_X', { a: 1 }, 'handshake timed out'), true, 'the first is written');
  for (let i = 0; i < 41; i++) t.equal(lim.warn('DC_X', { a: i }, 'handshake timed out'), false);
  t.equal(lim.warn('DC_Y', {}, 'other code'), true, 'another code has its own window');
  t.equal(out.length, 2);
  t.equal(lim.suppressed('DC_X'), 41);
  now = 60_000;
  for (const x of timers) if (x.live && x.at <= now) x.fn();
  t.equal(out.length, 3, 'the window closed with one summary line');
  t.equal(out[2]!.msg, '41 more DC_X in 60 s');
  t.match(out[2]!.fields, { code: 'DC_X', suppressed: 41, windowS: 60 });
  t.equal(lim.warn('DC_X', {}, 'handshake timed out'), true, 'a new window writes again');
  lim.warn('DC_X', {}, 'x');
  lim.flush();
  t.equal(out.at(-1)!.msg, '1 more DC_X in 60 s', 'flush writes the pending summary');
});

t.test('a flood of unauthenticated handshake timeouts: every one counted, logged once', async (t) => {
  const lines = capture(t, 'warn');
  const engine = new ProxyEngine({ io: socketIo, handshakeTimeoutMs: 100 });
  const a = await engine.listen({ name: 'socks', host: '127.0.0.1', port: 0, mptcp: false, front: socks5Front({ allowAnonymous: true, requestTimeoutMs: 60_000 }), connector: directConnector });
  // Only the engine's handshake timer may fire: with the front's own request timer as short, a
  // loaded machine let either win per connection, and two codes make two windows (CI, 2 lines).
  const N = 40;
  const socks = await Promise.all(
    Array.from({ length: N }, () => new Promise<net.Socket>((r) => { const s = net.connect(a.port, '127.0.0.1', () => r(s)); s.on('error', () => undefined); })),
  );
  for (let i = 0; i < 1000 && [...engine.refusals.values()].reduce((x, y) => x + y, 0) < N; i++) await new Promise((r) => setTimeout(r, 20));
  const counted = [...engine.refusals.values()].reduce((x, y) => x + y, 0);
  t.equal(counted, N, `all ${N} timeouts counted`);
  const refused = lines.filter((l) => l.includes('"session refused"'));
  t.equal(refused.length, 1, 'one "session refused" line in the window');
  await engine.close(10);
  for (const s of socks) s.destroy();
  const summary = lines.find((l) => / more DC_\w+ in 60 s/.test(l));
  t.ok(summary !== undefined, 'the summary line says how many were left out');
  t.match(summary, new RegExp(`"suppressed":${N - 1}`));
});

t.test('one msg per line: the web server\'s failed-request line', async (t) => {
  const lines = capture(t, 'warn');
  const h = await startServer({}, (d) => ({ ...d, paths: () => { throw new Error('boom'); } }));
  t.teardown(() => h.close());
  const c = h.client();
  await c.setup();
  t.equal((await c.get('/api/v1/paths')).status, 500);
  const failed = lines.filter((l) => l.includes('web request failed'));
  t.ok(failed.length >= 1, 'the failure was logged');
  for (const l of lines) t.equal(l.match(/"msg":/g)?.length ?? 0, 1, `one msg in ${l.slice(0, 80)}`);
});

function cli(args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));
  const code = `import('${path.join(ROOT, 'src/cli/main.ts')}').then((m) => m.main(${JSON.stringify(args)})).then((c) => { process.exitCode = c; });`;
  const r = spawnSync(process.execPath, [...loader, '--input-type=module', '-e', code], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, TAP: '0', DUOCELL_LOG_LEVEL: 'info', ...env },
    timeout: 150_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

t.test('--json on a fresh state directory: one JSON document on stdout, logs on stderr', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-logs-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const r = cli(['subscribers', 'list', '--json', '--state-dir', path.join(dir, 'state')]);
  t.equal(r.status, 0, r.stderr);
  t.same(JSON.parse(r.stdout), [], 'stdout is exactly one JSON document');
  t.match(r.stderr, /schema migrated/, 'the migration lines went to stderr');
  const first = r.stderr.split('\n').find((l) => l.includes('schema migrated'))!;
  t.doesNotThrow(() => JSON.parse(first), 'not a terminal: the log lines stay JSON');
});

t.test('readable log lines for a person', async (t) => {
  const line = JSON.stringify({ level: 40, time: '2026-12-06T17:14:30.466Z', pid: 1, ns: 'duocell:proxy', code: 'DC_TIMEOUT', client: { address: '10.0.0.2', port: 5 }, note: 'two words', msg: 'session refused' });
  t.equal(formatLogLine(line), '17:14:30.466 WARN  duocell:proxy session refused  code=DC_TIMEOUT client={"address":"10.0.0.2","port":5} note="two words"\n');
  t.equal(formatLogLine('not json\n'), 'not json\n', 'anything else unchanged');
  t.match(formatLogLine(line, { color: true }), /\u001b\[33mWARN /, 'WARN in colour on a terminal');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-logs-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const r = cli(['subscribers', 'list', '--state-dir', path.join(dir, 'state')], { DUOCELL_LOG_FORMAT: 'pretty' });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stderr, /^\d\d:\d\d:\d\d\.\d{3} INFO  duocell:store schema migrated {2}version=1/m, 'time, level, component, message, fields');
  t.notMatch(r.stderr, /\{"level"/, 'no JSON left');
});

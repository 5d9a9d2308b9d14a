// The benchmarks' native load generator and echo server (build/connload, native/connload.c,
// built by scripts/setup.sh) on loopback: a connection counts only if its echoed byte came back,
// failures are counted by reason, and the JSON lines are those the bench groups parse.
import t, { type Test } from 'tap';
import net from 'node:net';
import path from 'node:path';
import { spawn, execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const LOAD = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../build/connload');

interface Rate {
  rate: number;
  ok: number;
  failed: number;
  errors: Record<string, number>;
  cpuS: number;
}

function run<T>(args: string[]): Promise<T> {
  return new Promise((resolve, reject) =>
    execFile(LOAD, args, { timeout: 30_000 }, (e, out) => (e !== null ? reject(e) : resolve(JSON.parse(out.trim().split('\n').pop()!) as T))),
  );
}

/** A server on an ephemeral loopback port that handles each connection with `onConn`. */
async function server(t: Test, onConn: (s: net.Socket, i: number) => void): Promise<number> {
  let i = 0;
  const s = net.createServer({ allowHalfOpen: true }, (c) => {
    c.on('error', () => c.destroy());
    onConn(c, i++);
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', 1024, r));
  t.teardown(() => new Promise<void>((r) => s.close(() => r())));
  return (s.address() as net.AddressInfo).port;
}

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** The native echo server on a free port; resolves once it prints that it listens. */
async function echo(t: Test): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const port = await closedPort();
    const child = spawn(LOAD, ['echo', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const line = await new Promise<string>((r) => {
      child.stdout.once('data', (d: Buffer) => r(d.toString()));
      child.once('exit', () => r(''));
    });
    if (line !== '') {
      t.teardown(() => void child.kill('SIGTERM'));
      t.same(JSON.parse(line), { listening: port }, 'the echo server says where it listens');
      return port;
    }
    if (attempt >= 3) throw new Error('the echo server did not start');
  }
}

t.test('rate: every connection to a closed port fails as refused', async (t) => {
  const r = await run<Rate>(['rate', '127.0.0.1', String(await closedPort()), '50', '8']);
  t.equal(r.ok, 0);
  t.equal(r.failed, 50);
  t.same(r.errors, { ECONNREFUSED: 50 });
  t.equal(r.rate, 0, 'failures are left out of the rate');
});

t.test('rate: a server that closes without echoing fails every connection', async (t) => {
  const port = await server(t, (c) => c.once('data', () => c.end()));
  const r = await run<Rate>(['rate', '127.0.0.1', String(port), '40', '4']);
  t.equal(r.ok, 0);
  t.same(r.errors, { 'closed without the echo': 40 });
});

t.test('rate: a server that resets after the echo fails the connection as reset', async (t) => {
  // the client awaits the server's FIN after its own: an RST comes instead
  const port = await server(t, (c) =>
    c.once('data', (d) => {
      c.write(d);
      c.once('end', () => c.resetAndDestroy());
    }),
  );
  const r = await run<Rate>(['rate', '127.0.0.1', String(port), '20', '4']);
  t.equal(r.ok, 0);
  t.same(r.errors, { ECONNRESET: 20 });
});

t.test('rate: only the echoed connections count (every other one is closed unanswered)', async (t) => {
  const port = await server(t, (c, i) =>
    c.once('data', (d) => {
      if (i % 2 === 0) {
        c.write(d);
        c.once('end', () => c.end());
      } else c.end();
    }),
  );
  const r = await run<Rate>(['rate', '127.0.0.1', String(port), '60', '1']);
  t.equal(r.ok, 30);
  t.equal(r.failed, 30);
  t.same(r.errors, { 'closed without the echo': 30 });
  t.ok(r.rate > 0);
});

t.test('rate, latency and hold against the native echo server', async (t) => {
  const port = await echo(t);
  const r = await run<Rate>(['rate', '127.0.0.1', String(port), '2000', '64']);
  t.equal(r.ok, 2000, 'every connection echoed');
  t.equal(r.failed, 0);
  t.same(r.errors, {});
  t.ok(r.rate > 0);
  t.ok(r.cpuS > 0 && r.cpuS < 60, `its own CPU time (${r.cpuS} s)`);

  const l = await run<{ medianMs?: number; meanMs: number; failed: number }>(['latency', '127.0.0.1', String(port), '50']);
  t.equal(l.failed, 0);
  t.ok(l.medianMs !== undefined && l.medianMs > 0, 'a median');
  t.ok(l.meanMs > 0);

  const holder = spawn(LOAD, ['hold', '127.0.0.1', String(port), '300'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((res) => holder.stdout.once('data', (d: Buffer) => res(d.toString())));
  t.same(JSON.parse(line), { open: 300 });
  const code = await new Promise<number | null>((res) => {
    holder.once('exit', (c) => res(c));
    holder.kill('SIGTERM');
  });
  t.equal(code, 0, 'hold ends cleanly on SIGTERM');
});

t.test('latency: gives up after 3 failures and prints no median', async (t) => {
  const l = await run<{ medianMs?: number; failed: number }>(['latency', '127.0.0.1', String(await closedPort()), '400']);
  t.equal(l.failed, 3);
  t.equal(l.medianMs, undefined);
});

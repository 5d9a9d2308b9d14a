/**
 * One role of proxy-failover.test.ts, run inside its namespace with `ip netns exec`:
 *   srv         echo server on 0.0.0.0:8000 (reached as 10.63.0.1)
 *   conc NAME   concentrator: Convert front on :5124 (MPTCP), plain TCP to servers; reports
 *               {concSession: NAME} per relayed session
 *   cell MS     a cell (until a line on stdin, at most MS ms): explicit listener 127.0.0.1:9000 → 10.63.0.1:8000 through the selecting
 *               connector over two candidates (c1 priority 10, c2 priority 5), probed with the
 *               RFC 8803 Info exchange. It runs its own clients for MS ms: one long session that
 *               sends a byte every 50 ms until it ends, and a new short session (1 KiB echoed)
 *               every 25 ms, and reports each with wall-clock times.
 * Prints JSON lines: {"ready":true}, then reports.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { ProxyEngine } from '../../src/services/proxy/engine.js';
import { directConnector } from '../../src/services/proxy/connector.js';
import { explicitFront } from '../../src/services/proxy/fronts/basic.js';
import { convertFront } from '../../src/services/proxy/fronts/convert.js';
import { probeConvert } from '../../src/services/proxy/convert-client.js';
import { ProxySelector } from '../../src/services/proxy/selection.js';
import { selectingConnector } from '../../src/services/proxy/select-connector.js';
import { normalizeProxies } from '../../src/store/validate.js';
import { socketIo } from '../../src/drivers/sockets/io.js';

const COOKIE = 'pol-cell-1';
const out = (o: Record<string, unknown>): void => void process.stdout.write(JSON.stringify(o) + '\n');
const [role, ...args] = process.argv.slice(2);

async function echoServer(): Promise<void> {
  const srv = net.createServer({ allowHalfOpen: true }, (c) => {
    c.on('error', () => undefined);
    c.pipe(c);
  });
  await new Promise<void>((r) => srv.listen(8000, '0.0.0.0', r));
}

/** One short session: 1 KiB out, the same back. */
/**
 * The proxy each session of the cell went through, by the N-UE's port, from the engine's session
 * events. Read when the session ends: a client port is reused by later sessions (tcp_tw_reuse
 * on loopback), so a look-up after the run would give the last session's proxy.
 */
const viaByPort = new Map<number, string>();

function shortSession(): Promise<{ start: number; end: number; ok: boolean; err?: string; via?: string; port: number }> {
  const start = Date.now();
  const data = randomBytes(1024);
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: 9000 });
    let got = Buffer.alloc(0);
    let port = 0;
    const timer = setTimeout(() => s.destroy(new Error('no echo in 5 s')), 5000);
    const done = (ok: boolean, err?: string): void => {
      clearTimeout(timer);
      s.destroy();
      const via = viaByPort.get(port);
      resolve({ start, end: Date.now(), ok, port, ...(err === undefined ? {} : { err }), ...(via === undefined ? {} : { via }) });
    };
    s.on('connect', () => {
      port = s.localPort ?? 0;
      s.write(data);
    });
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= data.length) done(got.equals(data));
    });
    s.on('error', (e) => done(false, e.message));
    s.on('end', () => done(false, `ended after ${got.length} bytes`));
  });
}

async function main(): Promise<void> {
  switch (role) {
    case 'srv':
      await echoServer();
      out({ ready: true });
      return;
    case 'conc': {
      const name = args[0]!;
      const e = new ProxyEngine({ io: socketIo });
      await e.listen({ name: 'convert', host: '0.0.0.0', port: 5124, mptcp: true, front: convertFront({ cookies: [{ cookie: COOKIE, subscriber: 'cell-1' }] }), connector: directConnector, upstream: { mptcp: false } });
      e.on('session', () => out({ concSession: name }));
      out({ ready: true, pid: process.pid });
      return;
    }
    case 'cell': {
      const runMs = Number(args[0] ?? 6000);
      const candidates = normalizeProxies([
        { name: 'c1', address: '10.61.1.2', port: 5124, protocol: 'convert', location: 'site-1', priority: 10 },
        { name: 'c2', address: '10.61.2.2', port: 5124, protocol: 'convert', location: 'site-2', priority: 5 },
      ]);
      const selector = new ProxySelector({
        candidates: () => candidates,
        probe: (c, signal) => probeConvert({ address: c.address, port: c.port }, { cookie: Buffer.from(COOKIE), options: { mptcp: true }, signal, timeoutMs: 600, io: socketIo }),
        // the shipped defaults (probe every 2 s, 500 ms once failing, 600 ms timeout; K = 2): the
        // failover below comes from failed sessions retried on the next candidate, not from probes
        failAfter: 2,
      });
      const e = new ProxyEngine({ io: socketIo });
      e.on('session', (v) => {
        if (v.proxy !== undefined) viaByPort.set(v.client.port, v.proxy);
      });
      await e.listen({
        name: 'lan', host: '127.0.0.1', port: 9000, mptcp: false,
        front: explicitFront({ host: '10.63.0.1', port: 8000 }),
        connector: selectingConnector({ selector, fallback: directConnector, convert: { cookie: COOKIE } }),
        upstream: { mptcp: true },
      });
      // health transitions, as they happen
      const last = new Map<string, boolean>();
      const watch = setInterval(() => {
        for (const { candidate, health } of selector.list()) {
          if (last.get(candidate.name) !== health.healthy) out({ health: { name: candidate.name, healthy: health.healthy, at: Date.now(), rttMs: health.rttMs, lastError: health.lastError } });
          last.set(candidate.name, health.healthy);
        }
      }, 10);
      selector.start();
      // wait for a first RTT of both
      let waited = 0;
      while (selector.list().some((x) => x.health.rttMs === undefined)) {
        await new Promise((r) => setTimeout(r, 20));
        if ((waited += 20) % 2000 === 0) out({ waiting: selector.list().map((x) => ({ name: x.candidate.name, ...x.health })) });
      }
      out({ ready: true, rtt: Object.fromEntries(selector.list().map((x) => [x.candidate.name, x.health.rttMs])) });
      // the long session (on c1, the preferred one)
      const long = net.connect({ host: '127.0.0.1', port: 9000 });
      const longR: Record<string, unknown> = { start: Date.now() };
      long.on('connect', () => (longR.port = long.localPort));
      const tick = setInterval(() => long.write('x'), 50);
      let echoed = 0;
      long.on('data', (d: Buffer) => (echoed += d.length));
      long.on('error', (err: NodeJS.ErrnoException) => (longR.err = err.code ?? err.message));
      long.on('close', () => {
        clearInterval(tick);
        longR.end = Date.now();
        longR.echoed = echoed;
      });
      const shorts: Array<Awaited<ReturnType<typeof shortSession>>> = [];
      // until the parent says stop (a line on stdin), at most runMs
      const until = Date.now() + runMs;
      let stop = false;
      process.stdin.on('data', () => (stop = true));
      const running: Array<Promise<void>> = [];
      while (Date.now() < until && !stop) {
        // each session as it ends too: the test waits on these instead of fixed sleeps
        running.push(shortSession().then((r) => void (shorts.push(r), out({ short: r }))));
        await new Promise((r) => setTimeout(r, 25));
      }
      await Promise.all(running);
      clearInterval(tick);
      long.destroy();
      clearInterval(watch);
      selector.stop();
      longR.via = viaByPort.get(Number(longR.port));
      out({ long: longR, shorts, downAt: selector.health('c1')?.downAt ?? null });
      await e.close(100);
      process.exit(0);
      return;
    }
    default:
      throw new Error(`unknown role ${role}`);
  }
}

main().catch((e: unknown) => {
  out({ fatal: String((e as Error)?.stack ?? e) });
  process.exit(1);
});

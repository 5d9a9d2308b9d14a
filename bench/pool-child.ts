/**
 * One role of the concentrator pool's test and benchmarks (test/kernel/proxy-pool.test.ts,
 * bench/pool.ts), run inside its namespace with `ip netns exec`:
 *   srv        echo server on 0.0.0.0:8000; each connection's first 16 bytes are the session's
 *              id, reported with the peer address (which pool instance relayed it):
 *              {"conn":{"id":"…","peer":"10.71.1.2","at":ms}}
 *   cell NAME  a cell: explicit listener 127.0.0.1:9000 → 10.63.0.1:8000 through the selecting
 *              connector over one off-path candidate, the pool's anycast address (Convert over
 *              MPTCP). Commands on stdin, one JSON per line:
 *                {"long":{"n":15,"tag":"a"}}   n sessions that write 1 KiB every 20 ms
 *                {"finish":"a"}                 they stop writing, half-close, await the echo
 *                {"short":{"n":10,"tag":"x"}}  n sessions of 64 KiB, echoed
 *                {"stream":{"everyMs":25,"tag":"s"}} a short session every everyMs until
 *                {"stop":"s"}
 *              and reports each session when it ends:
 *                {"session":{"id","tag","ok","err","start","end","sent","got"}}
 * Prints {"ready":true} first. Bytes are random; a session is ok only if the echo is identical.
 */
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import readline from 'node:readline';
import { ProxyEngine } from '../src/services/proxy/engine.js';
import { socketIo } from '../src/drivers/sockets/io.js';
import { directConnector } from '../src/services/proxy/connector.js';
import { explicitFront } from '../src/services/proxy/fronts/basic.js';
import { probeConvert } from '../src/services/proxy/convert-client.js';
import { ProxySelector } from '../src/services/proxy/selection.js';
import { selectingConnector } from '../src/services/proxy/select-connector.js';
import { normalizeProxies } from '../src/store/validate.js';

import { POOL_ANYCAST, POOL_COOKIE } from '../src/sim/pool.js';
const out = (o: Record<string, unknown>): void => void process.stdout.write(JSON.stringify(o) + '\n');
const [role, ...args] = process.argv.slice(2);

/** A session's timeout: one that neither completes nor fails is reported as failed. */
const SESSION_LIMIT_MS = 10_000;

async function echoServer(): Promise<void> {
  const srv = net.createServer({ allowHalfOpen: true }, (c) => {
    c.on('error', () => undefined);
    let head = Buffer.alloc(0);
    const peer = (c.remoteAddress ?? '').replace(/^::ffff:/, '');
    const onHead = (d: Buffer): void => {
      head = Buffer.concat([head, d]);
      if (head.length >= 16) {
        c.off('data', onHead);
        out({ conn: { id: head.subarray(0, 16).toString('latin1'), peer, at: Date.now() } });
      }
    };
    c.on('data', onHead);
    c.pipe(c);
  });
  await new Promise<void>((r) => srv.listen(8000, '0.0.0.0', r));
}

/** One session's line on stdout (also read by test/kernel/proxy-pool.test.ts). */
export interface Report {
  id: string;
  tag: string;
  ok: boolean;
  err?: string;
  start: number;
  end: number;
  sent: number;
  got: number;
}

let seq = 0;
const finishers = new Map<string, Array<() => void>>();

/** A session: a 16-byte id, then random bytes (all at once, or 1 KiB per 20 ms until finished). */
function session(cellName: string, tag: string, kind: 'long' | 'short', shortBytes = 64 * 1024): void {
  const id = `${cellName}-${tag}-${String(seq++)}`.padEnd(16, '.').slice(0, 16);
  const start = Date.now();
  const sentHash = createHash('sha256');
  const gotHash = createHash('sha256');
  let sent = 0;
  let got = 0;
  let done = false;
  let tick: NodeJS.Timeout | undefined;
  const s = net.connect({ host: '127.0.0.1', port: 9000, allowHalfOpen: true });
  if (kind === 'short') setTimeout(() => finish(false, `no complete echo in ${SESSION_LIMIT_MS} ms`), SESSION_LIMIT_MS).unref();
  const write = (b: Buffer): void => {
    sentHash.update(b);
    sent += b.length;
    s.write(b);
  };
  const finish = (ok: boolean, err?: string): void => {
    if (done) return;
    done = true;
    if (tick !== undefined) clearInterval(tick);
    s.destroy();
    const r: Report = { id, tag, ok, start, end: Date.now(), sent, got, ...(err === undefined ? {} : { err }) };
    out({ session: r });
  };
  let ended = false;
  const endWrite = (): void => {
    if (ended || done) return;
    ended = true;
    if (tick !== undefined) clearInterval(tick);
    s.end();
  };
  s.on('connect', () => {
    write(Buffer.from(id, 'latin1'));
    if (kind === 'short') {
      write(randomBytes(shortBytes));
      endWrite();
    } else {
      tick = setInterval(() => write(randomBytes(1024)), 20);
      const list = finishers.get(tag) ?? [];
      list.push(endWrite);
      finishers.set(tag, list);
    }
  });
  s.on('data', (d: Buffer) => {
    gotHash.update(d);
    got += d.length;
  });
  s.on('end', () => {
    if (!ended) return finish(false, `closed by the far end after ${got} bytes`);
    if (got !== sent) return finish(false, `echo ${got} of ${sent} bytes`);
    finish(sentHash.digest('hex') === gotHash.digest('hex'), undefined);
  });
  s.on('error', (e: NodeJS.ErrnoException) => finish(false, e.code ?? e.message));
  s.on('close', () => finish(false, 'closed'));
}

async function cell(name: string): Promise<void> {
  const candidates = normalizeProxies([{ name: 'pool', address: POOL_ANYCAST, port: 5124, protocol: 'convert', location: 'pool', priority: 10 }]);
  const selector = new ProxySelector({
    candidates: () => candidates,
    probe: (c, signal) => probeConvert({ address: c.address, port: c.port }, { cookie: Buffer.from(POOL_COOKIE), options: { mptcp: true }, signal, timeoutMs: 3000, io: socketIo }),
    intervalMs: 2000,
    timeoutMs: 3000,
    failAfter: 2,
  });
  const e = new ProxyEngine({ io: socketIo });
  await e.listen({
    name: 'lan',
    host: '127.0.0.1',
    port: 9000,
    mptcp: false,
    front: explicitFront({ host: '10.63.0.1', port: 8000 }),
    // the cell has no route to the server: a session not pooled through an instance fails
    connector: selectingConnector({ selector, fallback: directConnector, convert: { cookie: POOL_COOKIE } }),
    upstream: { mptcp: true },
  });
  selector.start();
  let waited = 0;
  while (selector.list().some((x) => x.health.rttMs === undefined)) {
    await new Promise((r) => setTimeout(r, 20));
    if ((waited += 20) % 2000 === 0) out({ waiting: selector.list().map((x) => ({ name: x.candidate.name, ...x.health })) });
  }
  out({ ready: true, rttMs: selector.list()[0]?.health.rttMs });
  const streams = new Map<string, NodeJS.Timeout>();
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    const cmd = JSON.parse(line) as { long?: { n: number; tag: string }; short?: { n: number; tag: string }; finish?: string; stream?: { everyMs: number; tag: string }; stop?: string };
    if (cmd.long !== undefined) for (let i = 0; i < cmd.long.n; i++) session(name, cmd.long.tag, 'long');
    if (cmd.short !== undefined) for (let i = 0; i < cmd.short.n; i++) session(name, cmd.short.tag, 'short');
    if (cmd.finish !== undefined) for (const f of finishers.get(cmd.finish) ?? []) f();
    if (cmd.stream !== undefined) {
      const tag = cmd.stream.tag;
      streams.set(tag, setInterval(() => session(name, tag, 'short', 4096), cmd.stream.everyMs));
    }
    if (cmd.stop !== undefined) clearInterval(streams.get(cmd.stop));
  });
  rl.on('close', () => process.exit(0));
}

async function main(): Promise<void> {
  if (role === 'srv') {
    await echoServer();
    out({ ready: true });
  } else if (role === 'cell') {
    await cell(args[0] ?? 'cell');
  } else throw new Error(`unknown role ${role}`);
}

main().catch((e: unknown) => {
  out({ fatal: String((e as Error)?.stack ?? e) });
  process.exit(1);
});

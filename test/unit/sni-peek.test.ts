// The peek under the transparent front's SNI rules (drivers/sockets/peek.ts, native peek and
// whenReadable): on loopback, with the proxy's own socket operations. The client's bytes stay
// queued (whoever reads next gets all of them), a ClientHello split across segments is waited
// for without spinning, and a client that sends nothing is given up on at the bound. Plain TCP
// always; MPTCP too when net.mptcp.enabled is 1 here.
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { peekAvailable, peekUntil } from '../../src/drivers/sockets/peek.js';
import { socketIo } from '../../src/drivers/sockets/io.js';
import { createConnectSocket } from '../../src/drivers/sockets/index.js';
import { MAX_PREFIX, parseClientHello } from '../../src/protocols/tls/index.js';
import { transparentSniFront } from '../../src/services/proxy/fronts/sni.js';
import type { FrontInfo } from '../../src/services/proxy/types.js';

const mptcpOn = (() => {
  try {
    return readFileSync('/proc/sys/net/mptcp/enabled', 'utf8').trim() === '1';
  } catch {
    return false;
  }
})();

const want = (b: Buffer): number => {
  const r = parseClientHello(b);
  return r.kind === 'need-more' ? r.need : 0;
};

/** A listener like the engine's (paused accepted sockets), and a client socket connected to it. */
async function pair(mptcp: boolean): Promise<{ server: net.Socket; client: net.Socket; close: () => void }> {
  let accepted!: (s: net.Socket) => void;
  const got = new Promise<net.Socket>((r) => (accepted = r));
  const srv = socketIo.server((c) => accepted(c));
  const fd = socketIo.createListenSocket({ host: '127.0.0.1', port: 0, mptcp });
  await new Promise<void>((r) => srv.listen({ fd }, r));
  const client = new net.Socket({ fd: createConnectSocket({ family: 4, mptcp }) });
  client.on('error', () => undefined);
  await new Promise<void>((r) => client.connect((srv.address() as net.AddressInfo).port, '127.0.0.1', r));
  const server = await got;
  server.on('error', () => undefined);
  return { server, client, close: () => (client.destroy(), server.destroy(), srv.close()) };
}

/** A synthetic ClientHello (record framing, a server_name) of about `size` octets. */
function hello(name: string, size: number): Buffer {
  const host = Buffer.from(name);
  const sni = Buffer.concat([Buffer.from([0, 0]), u16(host.length + 5), u16(host.length + 3), Buffer.from([0]), u16(host.length), host]);
  const pad = Buffer.concat([Buffer.from([0, 21]), u16(Math.max(0, size - 100)), Buffer.alloc(Math.max(0, size - 100))]);
  const exts = Buffer.concat([sni, pad]);
  const body = Buffer.concat([Buffer.from([3, 3]), randomBytes(32), Buffer.from([0]), u16(2), Buffer.from([0x13, 1]), Buffer.from([1, 0]), u16(exts.length), exts]);
  const msg = Buffer.concat([Buffer.from([1, 0]), u16(body.length), body]);
  return Buffer.concat([Buffer.from([22, 3, 1]), u16(msg.length), msg]);
}
function u16(n: number): Buffer {
  return Buffer.from([n >> 8, n & 0xff]);
}

/** Everything the accepted socket yields once it is read normally (what the relay would send on). */
function readAll(s: net.Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('end', () => resolve(Buffer.concat(parts)));
    s.resume();
  });
}

t.test('the addon can peek', async (t) => {
  t.ok(peekAvailable(), 'native peek and whenReadable present (rebuild the addon if not)');
});

for (const mptcp of [false, true]) {
  const label = mptcp ? 'MPTCP' : 'TCP';
  t.test(`${label}: peeked bytes stay queued, split hellos are awaited, silence ends at the bound`, { skip: mptcp && !mptcpOn ? 'net.mptcp.enabled is not 1' : false }, async (t) => {
    await t.test('a whole ClientHello: done at the first look, nothing consumed', async (t) => {
      const { server, client, close } = await pair(mptcp);
      t.teardown(close);
      const h = hello('video.example', 600);
      const rest = randomBytes(20_000);
      client.write(h);
      await new Promise((r) => setTimeout(r, 20));
      const r = await peekUntil(socketIo.fdOf(server)!, { max: MAX_PREFIX, timeoutMs: 2000, want });
      t.equal(r.outcome, 'done');
      t.match(parseClientHello(r.bytes), { kind: 'hello', serverName: 'video.example' });
      client.end(rest);
      const all = await readAll(server);
      t.ok(all.equals(Buffer.concat([h, rest])), `the reader gets every octet, in order (${all.length})`);
    });

    await t.test('a ClientHello in three segments 30 ms apart: woken per part, no spinning', async (t) => {
      const { server, client, close } = await pair(mptcp);
      t.teardown(close);
      client.setNoDelay(true);
      const h = hello('a.cdn.example', 3000);
      const p = peekUntil(socketIo.fdOf(server)!, { max: MAX_PREFIX, timeoutMs: 5000, want });
      for (const part of [h.subarray(0, 3), h.subarray(3, 1500), h.subarray(1500)]) {
        client.write(part);
        await new Promise((r) => setTimeout(r, 30));
      }
      const r = await p;
      t.equal(r.outcome, 'done');
      t.match(parseClientHello(r.bytes), { kind: 'hello', serverName: 'a.cdn.example' });
      // 60 ms of waiting: a spin on a ready descriptor would look thousands of times, a 5 ms
      // re-look (a socket without SO_RCVLOWAT) about a dozen; readiness at the low-water mark a few.
      t.ok(r.looks <= 20, `looked ${r.looks} times`);
      t.comment(`${label}: ${r.looks} looks for a hello in 3 segments`);
      client.end();
      t.ok((await readAll(server)).equals(h), 'all of it still there for the reader');
    });

    await t.test('a client that sends nothing: given up at the bound, socket untouched', async (t) => {
      const { server, client, close } = await pair(mptcp);
      t.teardown(close);
      const t0 = Date.now();
      const r = await peekUntil(socketIo.fdOf(server)!, { max: MAX_PREFIX, timeoutMs: 150, want });
      t.equal(r.outcome, 'timeout');
      t.ok(Date.now() - t0 >= 140, 'waited for the bound');
      t.equal(r.bytes.length, 0);
      client.end('late');
      t.equal((await readAll(server)).toString(), 'late', 'the socket reads normally afterwards');
    });

    await t.test('not TLS: done at once; FIN with nothing: ended', async (t) => {
      const a = await pair(mptcp);
      t.teardown(a.close);
      a.client.write('GET / HTTP/1.1\r\n');
      await new Promise((r) => setTimeout(r, 20));
      const r = await peekUntil(socketIo.fdOf(a.server)!, { max: MAX_PREFIX, timeoutMs: 2000, want });
      t.equal(r.outcome, 'done');
      t.match(parseClientHello(r.bytes), { kind: 'not-tls' });
      const b = await pair(mptcp);
      t.teardown(b.close);
      b.client.end();
      const e = await peekUntil(socketIo.fdOf(b.server)!, { max: MAX_PREFIX, timeoutMs: 2000, want });
      t.equal(e.outcome, 'ended');
    });
  });
}

t.test('Node closes the socket during a peek (shutdown): the peek ends at its bound, new sockets are unaffected', async (t) => {
  const a = await pair(false);
  t.teardown(a.close);
  const p = peekUntil(socketIo.fdOf(a.server)!, { max: MAX_PREFIX, timeoutMs: 200, want });
  a.server.destroy(); // Node's fd is closed; the number may be reused at once
  const b = await pair(false); // reuses descriptor numbers while the peek is pending
  t.teardown(b.close);
  b.client.end('still works');
  t.equal((await readAll(b.server)).toString(), 'still works', 'a socket opened meanwhile reads normally');
  const r = await p;
  t.ok(r.outcome === 'timeout' || r.outcome === 'ended', `the peek ended (${r.outcome})`);
});

t.test('the front: peeks only where a rule needs it, and says what it saw', async (t) => {
  const calls: number[] = [];
  const front = transparentSniFront({
    needsSni: (_i, port) => port === 443,
    peek: async (_c, o) => {
      calls.push(o.timeoutMs);
      return { bytes: hello('Video.Example', 300), outcome: 'done' };
    },
    waitMs: 123,
  });
  const info = (port: number): FrontInfo => ({ listener: {} as FrontInfo['listener'], local: { address: '::ffff:10.0.0.1', port }, remote: { address: '10.9.0.2', port: 5555 }, clientMptcp: false });
  const fake = {} as net.Socket;
  t.same(await front.accept(fake, info(80)), { target: { host: '10.0.0.1', port: 80 } }, 'no rule on the port: no peek, today\'s request');
  t.same(calls, []);
  t.same(await front.accept(fake, info(443)), { target: { host: '10.0.0.1', port: 443 }, sni: 'video.example' });
  t.same(calls, [123], 'peeked once, with the bound');
  const silent = transparentSniFront({ needsSni: () => true, peek: async () => ({ bytes: Buffer.alloc(0), outcome: 'timeout' }) });
  t.same(await silent.accept(fake, info(443)), { target: { host: '10.0.0.1', port: 443 } });
  t.equal(silent.counts.get('DC_TLS_SNI_TIMEOUT'), 1, 'counted as a timeout');
});

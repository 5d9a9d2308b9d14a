import t from 'tap';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { DuocellError, isDuocellError } from '../../src/core/errors.js';
import { Socks5ClientHandshake, encodeReply, socksReplyFault } from '../../src/protocols/socks5/index.js';
import { socks5Connector } from '../../src/services/proxy/socks5-client.js';
import { attemptVerdict, selectingConnector } from '../../src/services/proxy/select-connector.js';
import { ProxySelector } from '../../src/services/proxy/selection.js';
import { directConnector } from '../../src/services/proxy/connector.js';
import { normalizeProxies } from '../../src/store/validate.js';
import { Store } from '../../src/store/index.js';
import { proxyViews } from '../../src/wiring/proxies.js';
import { socketIo } from '../../src/drivers/sockets/io.js';
import type { ConnectRequest } from '../../src/services/proxy/types.js';

/** The SOCKS5 client: the pure handshake, the connector over real loopback sockets, the verdicts, the stored credentials. */

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function fault(fn: () => unknown): DuocellError {
  try {
    fn();
  } catch (e) {
    if (e instanceof DuocellError) return e;
    throw e;
  }
  throw new Error('no fault');
}

t.test('handshake without credentials: greeting, request, reply with the server bytes behind it', async (t) => {
  const hs = new Socks5ClientHandshake({ host: '192.0.2.1', port: 443 });
  t.same(hs.start(), hex('05 01 00'), 'greeting offers no authentication only');
  const step = hs.feed(hex('05 00'));
  t.same(step.send, hex('05 01 00 01 c0000201 01bb'), 'CONNECT 192.0.2.1:443 (ATYP 01)');
  t.equal(step.done, undefined);
  // The reply and the server's first bytes in one segment.
  const r = hs.feed(Buffer.concat([hex('05 00 00 01 0a000002 1f90'), Buffer.from('HELLO')]));
  t.same(r.done?.bound, { type: 'ipv4', host: '10.0.0.2', port: 8080 }, 'bound address as the reply gives it');
  t.equal(r.done?.rest.toString(), 'HELLO', 'bytes after the reply are handed back untouched');
  t.equal(hs.state, 'done');
  t.equal(fault(() => hs.feed(hex('00'))).code, 'DC_INTERNAL', 'nothing is read after done');
});

t.test('handshake fed one byte at a time: the same result', async (t) => {
  const hs = new Socks5ClientHandshake({ host: '2001:db8::1', port: 80 });
  hs.start();
  const sends: Buffer[] = [];
  let done;
  const reply = Buffer.concat([hex('05 00'), encodeReply(0, { host: '2001:db8::2', port: 1234 }), hex('00 ff 05')]);
  for (const byte of reply) {
    const s = hs.feed(Buffer.from([byte]));
    if (s.send !== undefined) sends.push(s.send);
    if (s.done !== undefined) {
      done = s.done;
      break;
    }
  }
  t.same(sends, [hex('05 01 00 04 20010db8000000000000000000000001 0050')], 'CONNECT with ATYP 04');
  t.same(done?.bound, { type: 'ipv6', host: '2001:db8::2', port: 1234 });
  t.same(done?.rest, Buffer.alloc(0), 'split: the trailing bytes come in later feeds, none is taken by the handshake');
});

t.test('handshake with username/password (RFC 1929), domain bound address', async (t) => {
  const hs = new Socks5ClientHandshake({ host: '198.51.100.7', port: 22, auth: { username: 'cell-1', password: 'pw' } });
  t.same(hs.start(), hex('05 02 02 00'), 'offers username/password first, then none');
  t.same(hs.feed(hex('05 02')).send, Buffer.concat([hex('01 06'), Buffer.from('cell-1'), hex('02'), Buffer.from('pw')]));
  t.same(hs.feed(hex('01 00')).send, hex('05 01 00 01 c6336407 0016'));
  const r = hs.feed(Buffer.concat([hex('05 00 00 03 0b'), Buffer.from('example.net'), hex('0050')]));
  t.same(r.done?.bound, { type: 'domain', host: 'example.net', port: 80 });
  // A server that accepts no authentication although we have credentials is fine too.
  const hs2 = new Socks5ClientHandshake({ host: '198.51.100.7', port: 22, auth: { username: 'u', password: 'p' } });
  hs2.start();
  t.same(hs2.feed(hex('05 00')).send, hex('05 01 00 01 c6336407 0016'), 'method 00: straight to the request');
});

t.test('handshake refusals: stable codes, origin peer', async (t) => {
  const at = (o: ConstructorParameters<typeof Socks5ClientHandshake>[0], ...chunks: string[]): DuocellError => {
    const hs = new Socks5ClientHandshake(o);
    hs.start();
    return fault(() => chunks.forEach((c) => hs.feed(hex(c))));
  };
  const plain = { host: '192.0.2.1', port: 80 };
  const cred = { ...plain, auth: { username: 'u', password: 'p' } };
  let e = at(plain, '05 ff');
  t.same([e.code, e.origin], ['DC_SOCKS_PEER_AUTH', 'peer'], 'no acceptable method');
  e = at(cred, '05 02', '01 01');
  t.same([e.code, e.detail.status], ['DC_SOCKS_PEER_AUTH', 1], 'credentials refused');
  t.equal(at(plain, '05 02').code, 'DC_SOCKS_MALFORMED', 'a method we did not offer');
  t.equal(at(plain, '04 00').code, 'DC_SOCKS_VERSION', 'not SOCKS5');
  e = at(plain, '05 00', '04 00 00 01 00000000 0000');
  t.same([e.code, e.origin], ['DC_SOCKS_VERSION', 'peer'], 'reply with the wrong version');
  t.equal(at(plain, '05 00', '05 00 00 09').code, 'DC_SOCKS_ADDRESS_TYPE', 'reply with an unknown address type');
  t.equal(fault(() => new Socks5ClientHandshake({ host: 'not a host!', port: 80 })).code, 'DC_SOCKS_ENCODE');
  t.equal(fault(() => new Socks5ClientHandshake({ host: '192.0.2.1', port: 0 })).code, 'DC_SOCKS_ENCODE');
  t.equal(fault(() => new Socks5ClientHandshake({ ...plain, auth: { username: '', password: 'p' } })).code, 'DC_SOCKS_ENCODE');
});

t.test('every reply code: a stable code and what it says about the proxy', async (t) => {
  const want: Array<[number, string, string]> = [
    [1, 'DC_SOCKS_PEER_REPLY', 'candidate'],
    [2, 'DC_SOCKS_PEER_NOT_ALLOWED', 'session'],
    [3, 'DC_SOCKS_PEER_UNREACHABLE', 'session'],
    [4, 'DC_SOCKS_PEER_UNREACHABLE', 'session'],
    [5, 'DC_SOCKS_PEER_REFUSED', 'session'],
    [6, 'DC_SOCKS_PEER_UNREACHABLE', 'session'],
    [7, 'DC_SOCKS_PEER_REPLY', 'candidate'],
    [8, 'DC_SOCKS_PEER_ADDRESS_TYPE', 'elsewhere'],
    [9, 'DC_SOCKS_PEER_REPLY', 'candidate'],
    [255, 'DC_SOCKS_PEER_REPLY', 'candidate'],
  ];
  for (const [rep, code, outcome] of want) {
    const hs = new Socks5ClientHandshake({ host: '192.0.2.1', port: 80 });
    hs.start();
    hs.feed(hex('05 00'));
    const e = fault(() => hs.feed(encodeReply(rep)));
    t.same([e.code, e.detail.socksReply, e.detail.outcome, e.origin], [code, rep, outcome, 'peer'], `reply ${rep}`);
    t.equal(attemptVerdict(e), outcome, `reply ${rep}: the selecting connector's verdict`);
  }
  t.equal(attemptVerdict(new DuocellError('DC_SOCKS_PEER_AUTH')), 'candidate', 'refused credentials: the candidate');
  t.equal(attemptVerdict(new DuocellError('DC_PROXY_CONNECT_FAILED')), 'candidate', 'no connection: the candidate');
  t.equal(attemptVerdict(new DuocellError('DC_CONVERT_PEER_ERROR', 'x', { convertError: 32 })), 'session', 'Convert: unchanged');
  t.equal(attemptVerdict(new DuocellError('DC_CONVERT_PEER_ERROR', 'x', { retryAfterSeconds: 30 })), 'candidate', 'Convert back-off: unchanged');
  t.equal(socksReplyFault(5).message.includes('connection refused'), true, 'the message names the reply');
});

// ---- over real loopback sockets ----------------------------------------------------------

type Behaviour = { reply: number; after?: Buffer; silent?: boolean; echo?: boolean };

/** A minimal SOCKS5 server: no authentication, answers CONNECT with `reply` (+ `after` in the same write). */
async function fakeProxy(t: { teardown(fn: () => unknown): void }, b: Behaviour): Promise<{ port: number; connections: () => number }> {
  let n = 0;
  const srv = net.createServer((s) => {
    n++;
    s.on('error', () => undefined);
    if (b.silent === true) return;
    let buf = Buffer.alloc(0);
    let stage = 0;
    s.on('data', (d: Buffer) => {
      if (stage === 2) return;
      buf = Buffer.concat([buf, d]);
      if (stage === 0 && buf.length >= 2 + buf[1]!) {
        buf = buf.subarray(2 + buf[1]!);
        s.write(hex('05 00'));
        stage = 1;
      }
      if (stage === 1 && buf.length >= 10) {
        stage = 2;
        const rest = buf.subarray(10);
        s.write(Buffer.concat([encodeReply(b.reply, { host: '10.1.2.3', port: 4321 }), b.after ?? Buffer.alloc(0)]));
        if (b.reply !== 0) return void s.end();
        if (b.echo === true) {
          if (rest.length > 0) s.write(rest);
          s.on('data', (x: Buffer) => s.write(x));
        }
      }
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => srv.close());
  return { port: (srv.address() as net.AddressInfo).port, connections: () => n };
}

const req = (extra: Partial<ConnectRequest> = {}): ConnectRequest => ({
  target: { host: '192.0.2.1', port: 80 },
  options: { mptcp: false },
  signal: new AbortController().signal,
  io: socketIo,
  ...extra,
});

function firstBytes(s: net.Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= n) resolve(got);
    });
    s.on('close', () => reject(new Error(`closed after ${got.length} bytes`)));
    s.resume();
  });
}

t.test('connector: the server bytes that share the reply segment reach the stream first', async (t) => {
  const p = await fakeProxy(t, { reply: 0, after: Buffer.from('SERVER-FIRST|'), echo: true });
  const c = socks5Connector({ proxy: { address: '127.0.0.1', port: p.port }, mptcp: false });
  const r = await c.connect(req({ early: Buffer.from('client-early') }));
  t.teardown(() => r.socket.destroy());
  t.equal(r.serverMptcp, false, 'a plain TCP proxy is reported as such');
  const got = await firstBytes(r.socket, 'SERVER-FIRST|client-early'.length);
  t.equal(got.toString(), 'SERVER-FIRST|client-early', 'server bytes after the reply, then the echo of the early bytes written after it');
});

t.test('connector: a proxy that never answers fails within the handshake bound', async (t) => {
  const p = await fakeProxy(t, { reply: 0, silent: true });
  const c = socks5Connector({ proxy: { address: '127.0.0.1', port: p.port }, mptcp: false, handshakeTimeoutMs: 150 });
  const e = await c.connect(req()).then(
    () => undefined,
    (x: unknown) => x as DuocellError,
  );
  t.equal(e?.code, 'DC_SOCKS_TRUNCATED', `timed out: ${e?.message}`);
  t.equal(e && attemptVerdict(e), 'candidate', 'counted against the proxy');
});

t.test('selecting connector: refusals about the server end the session, proxy failures move it on', async (t) => {
  const good = await fakeProxy(t, { reply: 0, echo: true });
  const run = async (first: Behaviour): Promise<{ err?: string; via?: string; firstHealth: { sessionFailures: number; healthy: boolean }; goodConnections: number }> => {
    const bad = await fakeProxy(t, first);
    const before = good.connections();
    const list = normalizeProxies([
      { name: 'first', address: '127.0.0.1', port: bad.port, protocol: 'socks5', priority: 20 },
      { name: 'good', address: '127.0.0.1', port: good.port, protocol: 'socks5', priority: 10 },
    ]);
    const selector = new ProxySelector({ candidates: () => list, probe: async () => 1, sessionFailAfter: 2 });
    const conn = selectingConnector({ selector, fallback: directConnector, socks5: { mptcp: false } });
    let err: string | undefined;
    let via: string | undefined;
    try {
      const r = await conn.connect(req());
      via = r.via;
      r.socket.destroy();
    } catch (e) {
      err = isDuocellError(e) ? e.code : String(e);
    }
    const h = selector.health('first')!;
    return { ...(err === undefined ? {} : { err }), ...(via === undefined ? {} : { via }), firstHealth: { sessionFailures: h.sessionFailures, healthy: h.healthy }, goodConnections: good.connections() - before };
  };
  t.same(await run({ reply: 5 }), { err: 'DC_SOCKS_PEER_REFUSED', firstHealth: { sessionFailures: 0, healthy: true }, goodConnections: 0 }, 'reply 05: the session fails, not retried; the proxy is alive');
  t.same(await run({ reply: 4 }), { err: 'DC_SOCKS_PEER_UNREACHABLE', firstHealth: { sessionFailures: 0, healthy: true }, goodConnections: 0 }, 'reply 04: likewise');
  t.same(await run({ reply: 1 }), { via: 'good', firstHealth: { sessionFailures: 1, healthy: true }, goodConnections: 1 }, 'reply 01: counted against the proxy, the session goes to the next');
  t.same(await run({ reply: 8 }), { via: 'good', firstHealth: { sessionFailures: 0, healthy: true }, goodConnections: 1 }, 'reply 08: the next one, nothing counted');
});

t.test('stored credentials: kept, never shown, kept on write-back without the password', async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-socks-auth-'));
  t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const store = await Store.open({ dir: tmp });
  t.teardown(() => store.close());
  const cand = { name: 'dante', address: '192.0.2.20', port: 1080, protocol: 'socks5', auth: { username: 'cell-1', password: 'very-secret-pw' } };
  store.replaceProxies([cand], 'cli');
  t.same(store.listProxies()[0]!.auth, { username: 'cell-1', password: 'very-secret-pw' }, 'the store holds them');
  const views = proxyViews(store);
  t.same(views[0]!.auth, { username: 'cell-1' }, 'the view shows the username only');
  t.notOk(JSON.stringify(views).includes('very-secret-pw'), 'the password appears nowhere in the view');
  // The page's editor writes back what it shows.
  store.replaceProxies([{ ...cand, auth: { username: 'cell-1' }, priority: 3 }], 'web');
  t.same(store.listProxies()[0]!.auth, { username: 'cell-1', password: 'very-secret-pw' }, 'written back without password: the stored one stays');
  const e1 = fault(() => store.replaceProxies([{ ...cand, auth: { username: 'someone-else' } }], 'web'));
  t.equal(e1.code, 'DC_STORE_INVALID', 'another username needs its password');
  const e2 = fault(() => store.replaceProxies([{ ...cand, protocol: 'convert' }], 'web'));
  t.equal(e2.code, 'DC_STORE_INVALID', 'credentials on a Convert candidate are refused');
  t.same(store.listProxies()[0]!.auth, { username: 'cell-1', password: 'very-secret-pw' }, 'the refused lists left the old one in force');
});

// Convert cookies and SOCKS5 users checked against a real SQLite subscriber store (temp dir),
// through the listener factories the composition root uses (src/wiring/explicit.ts): who is
// let in, the subscriber name on the request, and the bytes a refused client reads.
import t from 'tap';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Store } from '../../src/store/index.js';
import { isDuocellError, type DuocellError } from '../../src/core/errors.js';
import type { ListenerProfile } from '../../src/core/board.js';
import { explicitFronts, storeCookieLookup } from '../../src/wiring/explicit.js';
import { convertFrontFromOptions } from '../../src/services/proxy/fronts/convert.js';
import { socks5FrontFromOptions } from '../../src/services/proxy/fronts/socks5.js';
import { encodeConvertMessage, type ConvertTlv } from '../../src/protocols/convert/index.js';
import { encodeGreeting, encodeRequest, encodeUserPassRequest } from '../../src/protocols/socks5/index.js';
import type { FrontInfo, FrontProtocol, FrontRequest } from '../../src/services/proxy/types.js';
import { socketIo } from '../../src/drivers/sockets/io.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-explicit-store-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
const info = { listener: {} as FrontInfo['listener'], local: { address: '127.0.0.1', port: 1 }, remote: { address: '127.0.0.1', port: 2 }, clientMptcp: false } as FrontInfo;

async function exchange(front: FrontProtocol, send: Buffer[]): Promise<{ req?: FrontRequest; err?: DuocellError; bytes: Buffer }> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => srv.once('connection', r));
  const client = net.connect((srv.address() as net.AddressInfo).port, '127.0.0.1');
  const got: Buffer[] = [];
  client.on('data', (d: Buffer) => got.push(d));
  client.on('error', () => undefined);
  const server = await accepted;
  server.on('error', () => undefined);
  srv.close();
  const acc = front.accept(server, info).then(
    (req) => ({ req, err: undefined }),
    (err: DuocellError) => ({ req: undefined, err }),
  );
  for (const b of send) {
    client.write(b);
    await new Promise((r) => setTimeout(r, 40));
  }
  const { req, err } = await acc;
  await front.answer(server, err === undefined ? { ok: true, upstream: new net.Socket(), local: { address: '192.0.2.9', port: 4444 }, serverMptcp: false } : { ok: false, error: err }, info);
  await new Promise((r) => setTimeout(r, 60));
  client.destroy();
  server.destroy();
  return { ...(req === undefined ? {} : { req }), ...(err === undefined ? {} : { err }), bytes: Buffer.concat(got) };
}

const listener = (kind: 'convert' | 'socks5', options: Record<string, unknown>): ListenerProfile => ({ kind, host: '::', port: 1, mptcp: true, upstream: 'tcp', options });
const connectMsg = (cookie?: Buffer): Buffer => {
  const tlvs: ConvertTlv[] = [{ type: 'connect', address: '192.0.2.1', port: 80, tcpOptions: [] }];
  if (cookie !== undefined) tlvs.push({ type: 'cookie', cookie });
  return encodeConvertMessage(tlvs);
};

t.test('Convert "cookies": "store": issued cookies let their subscriber in, nothing else does', async (t) => {
  const store = await Store.open({ dir: path.join(tmp, 'c'), scrypt: { N: 1024, r: 8, p: 1 } });
  t.teardown(() => store.close());
  store.addSubscriber({ name: 'cell-7', addresses: ['10.21.0.2'] }, 'cli');
  store.addSubscriber({ name: 'off', addresses: ['10.21.0.3'], enabled: false }, 'cli');
  const cookie = store.issueSubscriberCookie('cell-7', 'cli');
  const offCookie = store.issueSubscriberCookie('off', 'cli');
  const front = explicitFronts(store).fronts!.convert!(listener('convert', { cookies: 'store' }));

  const ok = await exchange(front, [connectMsg(cookie)]);
  t.equal(ok.err, undefined, 'a cookie the store issued is accepted');
  t.equal(ok.req?.subscriber, 'cell-7', 'the subscriber name goes on the request');
  t.equal(ok.bytes.toString('hex'), '01022263' + '14010000', 'success reply on the wire');

  const wrong = await exchange(front, [connectMsg(Buffer.from('not-a-store-cookie'))]);
  t.ok(isDuocellError(wrong.err, 'DC_CONVERT_NOT_AUTHORIZED'));
  t.equal(wrong.bytes.toString('hex'), '010222631e012000', 'wrong cookie: header + Error TLV Not Authorized (32), value 0');

  const disabled = await exchange(front, [connectMsg(offCookie)]);
  t.ok(isDuocellError(disabled.err, 'DC_CONVERT_NOT_AUTHORIZED'), "a disabled subscriber's cookie is refused");

  const none = await exchange(front, [connectMsg()]);
  t.equal(none.bytes.toString('hex'), '010222631e010300', 'no cookie: Missing Cookie (3)');

  // Reissuing replaces the cookie: the old one stops working.
  store.issueSubscriberCookie('cell-7', 'cli');
  const old = await exchange(front, [connectMsg(cookie)]);
  t.ok(isDuocellError(old.err, 'DC_CONVERT_NOT_AUTHORIZED'), 'a replaced cookie is refused');
});

t.test('a store cookie ending in zero bytes survives the TLV padding', async (t) => {
  const known = Buffer.from('0102030400', 'hex');
  const lookup = storeCookieLookup({ subscriberByCookie: (c: Buffer) => (c.equals(known) ? 'zed' : undefined) });
  // The front strips trailing zeros (padding and the cookie's own) before asking.
  t.equal(lookup(Buffer.from('01020304', 'hex')), 'zed');
  t.equal(lookup(Buffer.from('010203', 'hex')), undefined);
});

t.test('SOCKS5 "users": "store": RFC 1929 against the subscribers\' passwords', async (t) => {
  const store = await Store.open({ dir: path.join(tmp, 's'), scrypt: { N: 1024, r: 8, p: 1 } });
  t.teardown(() => store.close());
  store.addSubscriber({ name: 'phone-1', addresses: ['10.11.0.2'] }, 'cli');
  await store.setSubscriberPassword('phone-1', 'correct horse', 'cli');
  const front = explicitFronts(store).fronts!.socks5!(listener('socks5', { users: 'store' }));

  const ok = await exchange(front, [encodeGreeting([2]), encodeUserPassRequest('phone-1', 'correct horse'), encodeRequest(1, '192.0.2.1', 80)]);
  t.equal(ok.err, undefined);
  t.equal(ok.req?.subscriber, 'phone-1', 'the subscriber name goes on the request');
  t.equal(ok.bytes.subarray(0, 4).toString('hex'), '0502' + '0100', 'method 02, then auth success');

  const bad = await exchange(front, [encodeGreeting([2]), encodeUserPassRequest('phone-1', 'wrong'), encodeRequest(1, '192.0.2.1', 80)]);
  t.ok(isDuocellError(bad.err, 'DC_SOCKS_AUTH_FAILED'));
  t.equal(bad.bytes.toString('hex'), '0502' + '0101', 'wrong password: method 02, then status 01 and close: no request reply');

  const ghost = await exchange(front, [encodeGreeting([2]), encodeUserPassRequest('nobody', 'x')]);
  t.equal(ghost.bytes.toString('hex'), '05020101', 'unknown user: same answer');

  const anon = await exchange(front, [encodeGreeting([0])]);
  t.equal(anon.bytes.toString('hex'), '05ff', 'no authentication offered: no acceptable method');
});

t.test('"store" without a store is a configuration error, never an open proxy', async (t) => {
  t.throws(() => convertFrontFromOptions({ cookies: 'store' }), { code: 'DC_CONFIG_INVALID' });
  t.throws(() => socks5FrontFromOptions({ users: 'store' }), { code: 'DC_CONFIG_INVALID' });
  t.throws(() => convertFrontFromOptions({ cookies: 'other' }), { code: 'DC_CONFIG_INVALID' });
  t.throws(() => convertFrontFromOptions({ cookies: ['x'], retryAfterSeconds: 300 }), { code: 'DC_CONFIG_INVALID' }, 'retry delay is one byte');
  // The static list still works through the same factories, and ignores the store.
  const store = { subscriberByCookie: () => 'should-not-be-asked', verifySubscriberPassword: async () => true };
  const f = explicitFronts(store).fronts!.convert!(listener('convert', { cookies: [{ cookie: 'static-1', subscriber: 'cell-s' }] }));
  const ok = await exchange(f, [connectMsg(Buffer.from('static-1'))]);
  t.equal(ok.req?.subscriber, 'cell-s');
  const other = await exchange(f, [connectMsg(Buffer.from('anything'))]);
  t.ok(isDuocellError(other.err, 'DC_CONVERT_NOT_AUTHORIZED'), 'a static-list listener does not fall back to the store');
});

t.test('duocell subscribers cookie → the cell\'s "cookieHex" → a "store" Convert listener, end to end', async (t) => {
  const subscribersCmd = (await import('../../src/cli/commands/subscribers.js')).default;
  const { main } = (await t.mockImport('../../src/cli/main.js', {
    '../../src/cli/commands/index.js': { loadCommands: async () => [subscribersCmd] },
  })) as typeof import('../../src/cli/main.js');
  const state = path.join(tmp, 'cli');
  const run = async (...argv: string[]): Promise<{ code: number; out: string }> => {
    const out: string[] = [];
    const code = await main(argv, { io: { out: (l) => out.push(l), err: () => undefined }, env: { DUOCELL_STATE_DIR: state } });
    return { code, out: out.join('\n') };
  };
  t.equal((await run('subscribers', 'add', 'cell-9', '--addr', '10.21.0.9')).code, 0);
  const issued = await run('subscribers', 'cookie', 'cell-9', '--json');
  t.equal(issued.code, 0);
  const { cookieHex } = JSON.parse(issued.out) as { cookieHex: string };
  t.match(cookieHex, /^[0-9a-f]{32}$/, '16 random bytes, printed once');
  t.equal((await run('subscribers', 'cookie', 'nobody')).code, 1, 'unknown subscriber refused');
  t.equal(JSON.parse((await run('subscribers', 'show', 'cell-9', '--json')).out).cookie, true);

  // The cell sends exactly these bytes in its Cookie TLV (a fake converter records them) ...
  const { convertConnectorFromOptions } = await import('../../src/services/proxy/convert-client.js');
  const seen = new Promise<Buffer>((resolve) => {
    const srv = net.createServer((s) => {
      s.once('data', (d: Buffer) => {
        resolve(d);
        s.destroy();
        srv.close();
      });
    });
    srv.listen(0, '127.0.0.1', () => {
      const c = convertConnectorFromOptions({ concentrator: `127.0.0.1:${(srv.address() as net.AddressInfo).port}`, cookieHex })!;
      void c.connect({ target: { host: '192.0.2.1', port: 80 }, options: { mptcp: false }, signal: new AbortController().signal, io: socketIo }).catch(() => undefined);
    });
  });
  const hello = await seen;
  // ... and a concentrator whose listener says "cookies": "store" lets that subscriber in.
  const store = await Store.open({ dir: state });
  t.teardown(() => store.close());
  const front = explicitFronts(store).fronts!.convert!(listener('convert', { cookies: 'store' }));
  const r = await exchange(front, [hello]);
  t.equal(r.err, undefined);
  t.equal(r.req?.subscriber, 'cell-9');
  t.throws(() => convertConnectorFromOptions({ concentrator: '127.0.0.1:1', cookieHex: 'abc' }), { code: 'DC_CONFIG_INVALID' });
  t.throws(() => convertConnectorFromOptions({ concentrator: '127.0.0.1:1', cookie: 'x', cookieHex: 'ab' }), { code: 'DC_CONFIG_INVALID' });
});

// The Convert and SOCKS5 fronts driven directly over a loopback TCP pair (no engine, no root):
// accept() sees what a client sends, answer() writes what the client reads.
import t from 'tap';
import net from 'node:net';
import { DuocellError, isDuocellError } from '../../src/core/errors.js';
import { convertFront, convertFrontFromOptions } from '../../src/services/proxy/fronts/convert.js';
import { socks5Front, socks5FrontFromOptions } from '../../src/services/proxy/fronts/socks5.js';
import { convertConnectorFromOptions } from '../../src/services/proxy/convert-client.js';
import { encodeConvertMessage, type ConvertTlv } from '../../src/protocols/convert/index.js';
import { encodeGreeting, encodeRequest, encodeUserPassRequest } from '../../src/protocols/socks5/index.js';
import type { FrontInfo, FrontProtocol, FrontRequest, FrontResult } from '../../src/services/proxy/types.js';

const info = { listener: {} as FrontInfo['listener'], local: { address: '127.0.0.1', port: 1 }, remote: { address: '127.0.0.1', port: 2 }, clientMptcp: false } as FrontInfo;

async function pair(): Promise<{ client: net.Socket; server: net.Socket; received: () => Buffer; closed: Promise<void> }> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => srv.once('connection', r));
  const client = net.connect((srv.address() as net.AddressInfo).port, '127.0.0.1');
  const got: Buffer[] = [];
  client.on('data', (d: Buffer) => got.push(d));
  client.on('error', () => undefined);
  const closed = new Promise<void>((r) => client.once('close', () => r()));
  const server = await accepted;
  server.on('error', () => undefined);
  srv.close();
  return { client, server, received: () => Buffer.concat(got), closed };
}

async function settle(): Promise<void> {
  await new Promise((r) => setTimeout(r, 60));
}

const msg = (tlvs: ConvertTlv[]): Buffer => encodeConvertMessage(tlvs);
const connect = (address = '192.0.2.1', port = 80, tcpOptions: ConvertTlv extends never ? never : Array<{ kind: number; data: Buffer }> = []): ConvertTlv => ({ type: 'connect', address, port, tcpOptions });
const ok = (local = { address: '192.0.2.9', port: 4444 }): FrontResult => ({ ok: true, upstream: new net.Socket(), local, serverMptcp: false });

async function exchange(front: FrontProtocol, send: Buffer[], result?: (e: unknown) => FrontResult): Promise<{ req?: FrontRequest; err?: unknown; bytes: Buffer }> {
  const p = await pair();
  t.teardown(() => {
    p.client.destroy();
    p.server.destroy();
  });
  // Handle the outcome at once: a refusal may come before the last write.
  const acc = front.accept(p.server, info).then(
    (r) => ({ req: r, err: undefined as unknown }),
    (e: unknown) => ({ req: undefined, err: e }),
  );
  for (const b of send) {
    p.client.write(b);
    await settle();
  }
  const { req, err } = await acc;
  await front.answer(p.server, result !== undefined ? result(err) : err === undefined ? ok() : { ok: false, error: err as DuocellError }, info);
  await settle();
  return { ...(req === undefined ? {} : { req }), ...(err === undefined ? {} : { err }), bytes: p.received() };
}

t.test('Convert: verifyCookie (async store lookup), Info + Connect, early data', async (t) => {
  const seen: string[] = [];
  const front = convertFront({
    verifyCookie: async (c) => {
      seen.push(c.toString());
      return c.toString() === 'db-cookie' ? 'sub-42' : undefined;
    },
  });
  const r = await exchange(front, [Buffer.concat([msg([{ type: 'info' }, connect(), { type: 'cookie', cookie: Buffer.from('db-cookie') }]), Buffer.from('GET /')])]);
  t.equal(r.err, undefined);
  t.same(r.req?.target, { host: '192.0.2.1', port: 80 });
  t.equal(r.req?.subscriber, 'sub-42');
  t.equal(r.req?.early?.toString(), 'GET /', 'bytes after the Convert message go upstream first');
  t.same(seen, ['db-cookie'], 'the store sees the cookie without its padding');
  // success: Extended TCP Header, then Supported TCP Extensions because Info was asked
  t.equal(r.bytes.toString('hex'), '01042263' + '14010000' + '15020000' + '1e040822');
});

t.test('Convert: the message split in three writes still parses', async (t) => {
  const whole = msg([connect('2001:db8::7', 443), { type: 'cookie', cookie: Buffer.from('k1') }]);
  const r = await exchange(convertFront({ cookies: [{ cookie: 'k1' }] }), [whole.subarray(0, 1), whole.subarray(1, 9), whole.subarray(9)]);
  t.same(r.req?.target, { host: '2001:db8::7', port: 443 });
  t.equal(r.req?.subscriber, 'cookie');
});

t.test('Convert: allowWithoutCookie, allowTarget, TCP options', async (t) => {
  const open = await exchange(convertFront({ allowWithoutCookie: true }), [msg([connect()])]);
  t.same(open.req?.target, { host: '192.0.2.1', port: 80 });
  const policy = await exchange(convertFront({ allowWithoutCookie: true, allowTarget: (tg) => tg.port !== 25 }), [msg([connect('192.0.2.1', 25)])]);
  t.ok(isDuocellError(policy.err, 'DC_CONVERT_NOT_AUTHORIZED'));
  t.equal(policy.bytes.toString('hex'), '010222631e012000', 'Not Authorized on the wire');
  const tfo = await exchange(convertFront({ allowWithoutCookie: true }), [msg([connect('192.0.2.1', 80, [{ kind: 34, data: Buffer.alloc(0) }, { kind: 2, data: Buffer.alloc(0) }])])]);
  t.equal(tfo.err, undefined, 'TFO and MSS without a value are accepted');
  const md5 = await exchange(convertFront({ allowWithoutCookie: true }), [msg([connect('192.0.2.1', 80, [{ kind: 19, data: Buffer.alloc(0) }, { kind: 2, data: Buffer.from([5, 0xb4]) }])])]);
  t.ok(isDuocellError(md5.err, 'DC_CONVERT_UNSUPPORTED_TCP_OPTION'));
  t.equal(md5.bytes.toString('hex'), '010222631e012113', 'Unsupported TCP Option lists 19 (MSS with a value is ignored)');
  const ts = await exchange(convertFront({ allowWithoutCookie: true }), [msg([connect('192.0.2.1', 80, [{ kind: 8, data: Buffer.alloc(8) }])])]);
  t.equal(ts.bytes.toString('hex'), '010222631e012108', 'timestamps with a value: Unsupported TCP Option 8');
});

t.test('Convert: a silent client times out into Malformed Message with the echo', async (t) => {
  const r = await exchange(convertFront({ cookies: [{ cookie: 'x' }], requestTimeoutMs: 150 }), [Buffer.from([1, 6, 0x22])]);
  t.ok(isDuocellError(r.err, 'DC_CONVERT_TRUNCATED'));
  t.equal(r.bytes.toString('hex'), '01032263' + '1e020100' + '01062200');
});

t.test('Convert: Error messages are rate-limited', async (t) => {
  const front = convertFront({ errorRate: { perSecond: 0.001, burst: 1 } });
  const first = await exchange(front, [msg([connect()])]);
  t.equal(first.bytes.toString('hex'), '010222631e010300', 'first refusal: Missing Cookie');
  const second = await exchange(front, [msg([connect()])]);
  t.ok(isDuocellError(second.err, 'DC_CONVERT_MISSING_COOKIE'), 'still refused');
  t.equal(second.bytes.length, 0, 'but past the budget no Error TLV is sent');
});

t.test('Convert: options from the board', async (t) => {
  const hexCookie = await exchange(convertFrontFromOptions({ cookies: [{ cookie: 'c0ffee', hex: true, subscriber: 'cell-9' }] }), [
    msg([connect(), { type: 'cookie', cookie: Buffer.from([0xc0, 0xff, 0xee]) }]),
  ]);
  t.equal(hexCookie.req?.subscriber, 'cell-9');
  const none = await exchange(convertFrontFromOptions(undefined), [msg([connect()])]);
  t.ok(isDuocellError(none.err, 'DC_CONVERT_MISSING_COOKIE'), 'no options: nothing is relayed');
  for (const bad of [{ cookies: 'x' }, { cookies: [3] }, { cookies: [{ cookie: 'zz', hex: true }] }, { allowWithoutCookie: 'yes' }, { requestTimeoutMs: -1 }]) {
    t.throws(() => convertFrontFromOptions(bad), { code: 'DC_CONFIG_INVALID' }, JSON.stringify(bad));
  }
});

t.test('SOCKS5: async verify, IPv6 bound address in the reply, early data', async (t) => {
  const front = socks5Front({ verify: async (u, p) => u === 'store-user' && p === 'pw' });
  const r = await exchange(
    front,
    [encodeGreeting([0, 2]), encodeUserPassRequest('store-user', 'pw'), Buffer.concat([encodeRequest(1, '2001:db8::1', 443), Buffer.from('hi')])],
    () => ok({ address: '2001:db8::9', port: 5555 }),
  );
  t.equal(r.err, undefined);
  t.equal(r.req?.subscriber, 'store-user');
  t.equal(r.req?.early?.toString(), 'hi');
  t.equal(r.bytes.toString('hex'), '0502' + '0100' + '05000004' + '20010db8000000000000000000000009' + '15b3');
});

t.test('SOCKS5: options from the board', async (t) => {
  const f = socks5FrontFromOptions({ users: [{ username: 'kt', password: 'p', subscriber: 'phone-1' }] });
  const r = await exchange(f, [encodeGreeting([2]), encodeUserPassRequest('kt', 'p'), encodeRequest(1, '192.0.2.1', 80)]);
  t.equal(r.req?.subscriber, 'phone-1');
  t.throws(() => socks5FrontFromOptions(undefined), { code: 'DC_CONFIG_INVALID' }, 'no users: refused at construction');
  for (const bad of [{ users: {} }, { users: [{ username: 'a' }] }, { users: [{ username: '', password: 'x' }] }, { allowAnonymous: 1 }, { requestTimeoutMs: 0 }]) {
    t.throws(() => socks5FrontFromOptions(bad), { code: 'DC_CONFIG_INVALID' }, JSON.stringify(bad));
  }
  t.equal(socks5FrontFromOptions({ allowAnonymous: true }).name, 'socks5');
});

t.test('Convert client: connector from the board', async (t) => {
  t.equal(convertConnectorFromOptions(undefined), undefined, 'no concentrator: connect directly');
  t.equal(convertConnectorFromOptions({ concentrator: '203.0.113.10:5124', cookie: 'c' })?.name, 'convert');
  t.equal(convertConnectorFromOptions({ concentrator: '[2001:db8::10]:5124' })?.name, 'convert');
  for (const bad of [{ concentrator: 'conc.example:5124' }, { concentrator: 5124 }, { concentrator: '203.0.113.10' }, { concentrator: '203.0.113.10:1', cookie: '' }, { concentrator: '203.0.113.10:1', fastOpen: 'y' }]) {
    t.throws(() => convertConnectorFromOptions(bad), { code: 'DC_CONFIG_INVALID' }, JSON.stringify(bad));
  }
});

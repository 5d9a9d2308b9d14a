// The duocell grant extension of RFC 8803 (Private Use TLV 0xD0) and the retry delay of
// Resource Exceeded / Network Failure, both ends: codec bytes, the converter's answer (only to a
// client that asked), the cell's Convert client (parses it, tolerates its absence, backs off).
import t from 'tap';
import net from 'node:net';
import { isDuocellError, type DuocellError } from '../../src/core/errors.js';
import {
  encodeConvertError,
  encodeConvertMessage,
  parseConvertMessage,
  validateRequest,
  validateResponse,
  type ConvertGrant,
  type ConvertParse,
  type ConvertTlv,
} from '../../src/protocols/convert/index.js';
import { convertFront } from '../../src/services/proxy/fronts/convert.js';
import { convertConnector } from '../../src/services/proxy/convert-client.js';
import type { FrontInfo } from '../../src/services/proxy/types.js';
import { socketIo } from '../../src/drivers/sockets/io.js';

const grant: ConvertGrant = {
  subscriber: 'cell-7',
  policy: 'gold1',
  maxSessionsPerUe: 64,
  maxSessionsPerNServer: 1_000_000,
  maxSubflowsPerSession: 4,
  steeringMode: 'ratio',
  ratio: { cellular: 30, wlan: 70 },
};

function whole(r: ConvertParse): ConvertTlv[] {
  if ('need' in r) throw new Error(`incomplete: need ${r.need}`);
  return r.message.tlvs;
}
function faultOf(f: () => unknown): number | string {
  try {
    f();
  } catch (e) {
    return isDuocellError(e) && typeof e.detail.convertError === 'number' ? e.detail.convertError : String(e);
  }
  return 'no error';
}

t.test('grant TLV bytes, both ways', async (t) => {
  const req = encodeConvertMessage([{ type: 'connect', address: '192.0.2.1', port: 80, tcpOptions: [] }, { type: 'grant-request' }]);
  t.equal(req.subarray(24).toString('hex'), 'd0020000' + '64636731', 'request: D0, 2 words, 0, "dcg1"');
  t.same(validateRequest({ tlvs: whole(parseConvertMessage(req)) }).grant, true);

  const reply = encodeConvertMessage([{ type: 'extended-tcp-header', tcpOptions: Buffer.alloc(0) }, { type: 'grant', grant }]);
  t.equal(
    reply.subarray(8).toString('hex'),
    'd0090000' + '64636731' + '00000040' + '000f4240' + '04' + '02' + '1e' + '46' + '05' + '06' + Buffer.from('gold1cell-7').toString('hex') + '000000',
    'grant: marker, limits (32-bit), subflows, mode 2 (ratio), 30/70, name lengths, names, padding',
  );
  t.same(validateResponse({ tlvs: whole(parseConvertMessage(reply)) }).grant, grant);
  const anon = { ...grant, subscriber: null, steeringMode: 'active-standby' as const };
  const sd = encodeConvertMessage([{ type: 'grant', grant: { ...grant, steeringMode: 'smallest-delay' } }]);
  t.equal(sd[4 + 17], 3, 'smallest-delay is mode 3 on the wire');
  t.same(validateResponse({ tlvs: whole(parseConvertMessage(encodeConvertMessage([{ type: 'grant', grant: anon }]))) }).grant, anon, 'no subscriber');
  for (const bad of [{ ratio: { cellular: 50, wlan: 60 } }, { maxSessionsPerUe: -1 }, { policy: '' }, { maxSubflowsPerSession: 300 }]) {
    t.throws(() => encodeConvertMessage([{ type: 'grant', grant: { ...grant, ...bad } }]), { code: 'DC_CONVERT_ENCODE' }, JSON.stringify(bad));
  }
});

t.test('strict grant decoding; roles; foreign private-use TLVs', async (t) => {
  const good = encodeConvertMessage([{ type: 'grant', grant }]);
  const at = (i: number, v: number): Buffer => {
    const b = Buffer.from(good);
    b[i] = v;
    return b;
  };
  t.equal(faultOf(() => parseConvertMessage(at(4 + 17, 4))), 1, 'unknown steering mode (4: the first free number)');
  t.equal(faultOf(() => parseConvertMessage(at(4 + 17, 0xff))), 1, 'unknown steering mode 255');
  t.same(validateResponse({ tlvs: whole(parseConvertMessage(at(4 + 17, 3))) }).grant, { ...grant, steeringMode: 'smallest-delay' }, 'mode 3 is smallest-delay');
  t.equal(faultOf(() => parseConvertMessage(at(4 + 18, 31))), 1, 'ratio not 100');
  t.equal(faultOf(() => parseConvertMessage(at(4 + 20, 0))), 1, 'no policy name');
  t.equal(faultOf(() => parseConvertMessage(at(4 + 21, 10))), 1, 'names longer than the TLV');
  t.equal(faultOf(() => parseConvertMessage(at(good.length - 1, 1))), 1, 'non-zero padding');
  t.equal(faultOf(() => parseConvertMessage(at(4 + 22, 0xff))), 1, 'policy name not UTF-8');
  // Marker, 12 bytes: neither a request (8) nor a grant (>= 24).
  t.equal(faultOf(() => parseConvertMessage(Buffer.from('01042263' + 'd0030000' + '64636731' + '00000000', 'hex'))), 1);

  // A converter refuses what a client may not send; a client ignores a private TLV not ours.
  const foreign = Buffer.from('01032263' + 'd0020000' + '41424344', 'hex'); // 0xD0 without our marker
  const other = Buffer.from('01022263' + 'c0010000', 'hex');
  for (const b of [foreign, other, good]) t.equal(faultOf(() => validateRequest({ tlvs: whole(parseConvertMessage(b)) })), 2, 'converter: Unsupported Message');
  t.same(validateResponse({ tlvs: whole(parseConvertMessage(foreign)) }), {}, 'client: foreign private TLV skipped');
  t.equal(faultOf(() => validateResponse({ tlvs: [{ type: 'grant-request' }] })), 2, 'a converter may not send a grant request');
  t.equal(faultOf(() => validateResponse({ tlvs: [{ type: 'grant', grant }, { type: 'grant', grant }] })), 1, 'two grants');
});

async function loop(): Promise<{ port: number; accepted: Promise<net.Socket>; close: () => void }> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => srv.once('connection', r));
  return { port: (srv.address() as net.AddressInfo).port, accepted, close: () => srv.close() };
}

t.test('the converter answers the grant only to a client that asked', async (t) => {
  const front = convertFront({ allowWithoutCookie: true });
  const info = { listener: {} as FrontInfo['listener'], local: { address: '127.0.0.1', port: 1 }, remote: { address: '127.0.0.1', port: 2 }, clientMptcp: false } as FrontInfo;
  for (const asked of [true, false]) {
    const l = await loop();
    const c = net.connect(l.port, '127.0.0.1');
    const got: Buffer[] = [];
    c.on('data', (d: Buffer) => got.push(d));
    const s = await l.accepted;
    l.close();
    const tlvs: ConvertTlv[] = [{ type: 'connect', address: '192.0.2.1', port: 80, tcpOptions: [] }];
    if (asked) tlvs.push({ type: 'grant-request' });
    c.write(encodeConvertMessage(tlvs));
    await front.accept(s, info);
    await front.answer(s, { ok: true, upstream: new net.Socket(), local: { address: '192.0.2.9', port: 1 }, serverMptcp: false, grant }, info);
    await new Promise((r) => setTimeout(r, 50));
    const res = validateResponse({ tlvs: whole(parseConvertMessage(Buffer.concat(got))) });
    if (asked) t.same(res.grant, grant, 'asked: the grant is in the reply');
    else t.equal(Buffer.concat(got).toString('hex'), '01022263' + '14010000', 'not asked: the plain RFC 8803 reply, byte for byte');
    c.destroy();
    s.destroy();
  }
});

/** A scripted converter on loopback: reads the Convert message, answers `reply`. */
async function fakeConverter(reply: Buffer): Promise<{ port: number; seen: Promise<Buffer>; close: () => void }> {
  const srv = net.createServer((s) => {
    s.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const r = parseConvertMessage(buf);
      if ('need' in r) return;
      onSeen(buf.subarray(0, r.consumed));
      s.write(reply);
    });
  });
  let onSeen!: (b: Buffer) => void;
  const seen = new Promise<Buffer>((r) => (onSeen = r));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { port: (srv.address() as net.AddressInfo).port, seen, close: () => srv.close() };
}

const req = () => ({ target: { host: '192.0.2.1', port: 80 }, options: { mptcp: false }, signal: new AbortController().signal, io: socketIo });

t.test('the Convert client: grant on its result when asked, absent otherwise', async (t) => {
  const withGrant = await fakeConverter(encodeConvertMessage([{ type: 'extended-tcp-header', tcpOptions: Buffer.alloc(0) }, { type: 'grant', grant }]));
  t.teardown(withGrant.close);
  const c1 = convertConnector({ concentrator: { address: '127.0.0.1', port: withGrant.port }, mptcp: false, askGrant: true });
  const r1 = await c1.connect(req());
  t.same(r1.grant, grant, 'the grant is exposed');
  t.match((await withGrant.seen).toString('hex'), /d002000064636731$/, 'the request carried the grant request');
  r1.socket.destroy();

  const plain = await fakeConverter(encodeConvertMessage([{ type: 'extended-tcp-header', tcpOptions: Buffer.alloc(0) }]));
  t.teardown(plain.close);
  const c2 = convertConnector({ concentrator: { address: '127.0.0.1', port: plain.port }, mptcp: false, askGrant: true });
  const r2 = await c2.connect(req());
  t.equal(r2.grant, undefined, 'a converter that sends no grant is fine');
  r2.socket.destroy();
  const plain2 = await fakeConverter(encodeConvertMessage([{ type: 'extended-tcp-header', tcpOptions: Buffer.alloc(0) }]));
  t.teardown(plain2.close);
  const c3 = convertConnector({ concentrator: { address: '127.0.0.1', port: plain2.port }, mptcp: false });
  const r3 = await c3.connect(req());
  t.equal((await plain2.seen).toString('hex'), '010622630a05005000000000000000000000ffffc0000201', 'not asked: a plain Connect, no private TLV goes to the converter');
  r3.socket.destroy();
});

t.test('the Convert client honours the retry delay of Resource Exceeded / Network Failure', async (t) => {
  let clock = 1_000_000;
  const busy = await fakeConverter(encodeConvertError(64, { delaySeconds: 5 }));
  t.teardown(busy.close);
  const c = convertConnector({ concentrator: { address: '127.0.0.1', port: busy.port }, mptcp: false, now: () => clock });
  const e1 = await c.connect(req()).catch((e: DuocellError) => e);
  t.ok(isDuocellError(e1, 'DC_CONVERT_PEER_ERROR'));
  t.equal((e1 as DuocellError).detail.retryAfterSeconds, 5);
  t.equal(c.backoffUntil, clock + 5000);
  const e2 = await c.connect(req()).catch((e: DuocellError) => e);
  t.ok(isDuocellError(e2, 'DC_CONVERT_BACKOFF'), 'within the delay: refused locally, the converter is not solicited');
  clock += 5001;
  const e3 = await c.connect(req()).catch((e: DuocellError) => e);
  t.ok(isDuocellError(e3, 'DC_CONVERT_PEER_ERROR'), 'after the delay: asked again');

  const zero = await fakeConverter(encodeConvertError(65, { delaySeconds: 0 }));
  t.teardown(zero.close);
  const z = convertConnector({ concentrator: { address: '127.0.0.1', port: zero.port }, mptcp: false, now: () => clock });
  const ez = await z.connect(req()).catch((e: DuocellError) => e);
  t.equal((ez as DuocellError).detail.retryAfterSeconds, 30, 'a delay of 0 means the RFC default: at least 30 s');

  const reset = await fakeConverter(encodeConvertError(96));
  t.teardown(reset.close);
  const r = convertConnector({ concentrator: { address: '127.0.0.1', port: reset.port }, mptcp: false, now: () => clock });
  await r.connect(req()).catch(() => undefined);
  t.equal(r.backoffUntil, 0, 'Connection Reset (the server said no) carries no delay');
});

import t from 'tap';
import { isDuocellError } from '../../src/core/errors.js';
import {
  SocksCommand,
  SocksMethod,
  SocksReply,
  encodeGreeting,
  encodeMethodSelection,
  encodeReply,
  encodeRequest,
  encodeUserPassReply,
  encodeUserPassRequest,
  isValidDomain,
  parseGreeting,
  parseMethodSelection,
  parseReply,
  parseRequest,
  parseUserPassReply,
  parseUserPassRequest,
  type SocksParse,
} from '../../src/protocols/socks5/index.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function whole<T>(r: SocksParse<T>): { value: T; consumed: number } {
  if ('need' in r) throw new Error(`incomplete: need ${r.need}`);
  return r;
}

function faultOf(f: () => unknown): { code: string; socksReply?: unknown } {
  try {
    f();
  } catch (e) {
    if (isDuocellError(e)) return { code: e.code, socksReply: e.detail.socksReply };
    return { code: `uncoded: ${String(e)}` };
  }
  return { code: 'none' };
}

// Fixtures, byte by byte.
const F = {
  // 05 version · 02 two methods · 00 no auth · 02 username/password
  greeting: hex('05 02 00 02'),
  // 05 version · 02 username/password chosen
  chooseUserPass: hex('05 02'),
  // 01 sub-negotiation version · 05 ULEN · "alice" · 06 PLEN · "s3cret"
  userPass: hex('01 05 616c696365 06 733363726574'),
  // 01 version · 00 success
  userPassOk: hex('01 00'),
  // 05 version · 01 CONNECT · 00 reserved · 01 IPv4 · 192.0.2.1 · port 80
  connectV4: hex('05 01 00 01 c0000201 0050'),
  // 05 · 01 CONNECT · 00 · 04 IPv6 · 2001:db8::1 · port 443
  connectV6: hex('05 01 00 04 20010db8000000000000000000000001 01bb'),
  // 05 · 01 CONNECT · 00 · 03 domain · 0b length 11 · "example.com" · port 8080
  connectDomain: hex('05 01 00 03 0b 6578616d706c652e636f6d 1f90'),
  // 05 · 00 succeeded · 00 · 01 IPv4 · 10.0.0.1 · port 40000
  replyOk: hex('05 00 00 01 0a000001 9c40'),
  // 05 · 05 connection refused · 00 · 01 · 0.0.0.0 · 0
  replyRefused: hex('05 05 00 01 00000000 0000'),
};

t.test('fixtures decode', async (t) => {
  t.same(whole(parseGreeting(F.greeting)), { value: { methods: [0, 2] }, consumed: 4 });
  t.same(whole(parseMethodSelection(F.chooseUserPass)).value, { method: SocksMethod.USERPASS });
  t.same(whole(parseUserPassRequest(F.userPass)), { value: { username: 'alice', password: 's3cret' }, consumed: 14 });
  t.same(whole(parseUserPassReply(F.userPassOk)).value, { status: 0 });
  t.same(whole(parseRequest(F.connectV4)).value, { command: 1, type: 'ipv4', host: '192.0.2.1', port: 80 });
  t.same(whole(parseRequest(F.connectV6)).value, { command: 1, type: 'ipv6', host: '2001:db8::1', port: 443 });
  t.same(whole(parseRequest(F.connectDomain)).value, { command: 1, type: 'domain', host: 'example.com', port: 8080 });
  t.same(whole(parseReply(F.replyOk)).value, { reply: 0, address: { type: 'ipv4', host: '10.0.0.1' }, port: 40000 });
  t.same(whole(parseReply(F.replyRefused)).value.reply, SocksReply.CONNECTION_REFUSED);
});

t.test('encoders produce the fixture bytes', async (t) => {
  t.same(encodeGreeting([0, 2]), F.greeting);
  t.same(encodeMethodSelection(SocksMethod.USERPASS), F.chooseUserPass);
  t.same(encodeUserPassRequest('alice', 's3cret'), F.userPass);
  t.same(encodeUserPassReply(0), F.userPassOk);
  t.same(encodeRequest(SocksCommand.CONNECT, '192.0.2.1', 80), F.connectV4);
  t.same(encodeRequest(SocksCommand.CONNECT, '2001:db8::1', 443), F.connectV6);
  t.same(encodeRequest(SocksCommand.CONNECT, 'example.com', 8080), F.connectDomain);
  t.same(encodeReply(SocksReply.SUCCEEDED, { host: '10.0.0.1', port: 40000 }), F.replyOk);
  t.same(encodeReply(SocksReply.CONNECTION_REFUSED), F.replyRefused);
  for (let r = 0; r <= 8; r++) t.equal(encodeReply(r)[1], r, `reply code ${r}`);
});

t.test('split at every byte: need, then the value; trailing data untouched', async (t) => {
  const parsers: Array<[string, Buffer, (b: Uint8Array) => SocksParse<unknown>]> = [
    ['greeting', F.greeting, parseGreeting],
    ['method', F.chooseUserPass, parseMethodSelection],
    ['userpass', F.userPass, parseUserPassRequest],
    ['userpass reply', F.userPassOk, parseUserPassReply],
    ['connect v4', F.connectV4, parseRequest],
    ['connect v6', F.connectV6, parseRequest],
    ['connect domain', F.connectDomain, parseRequest],
    ['reply', F.replyOk, parseReply],
  ];
  for (const [name, bytes, parse] of parsers) {
    for (let i = 0; i < bytes.length; i++) {
      const r = parse(bytes.subarray(0, i));
      if (!('need' in r) || r.need <= i || r.need > bytes.length) t.fail(`${name} prefix ${i}: ${JSON.stringify(r)}`);
    }
    const r = whole(parse(Buffer.concat([bytes, Buffer.from('payload')])));
    t.equal(r.consumed, bytes.length, name);
  }
});

t.test('every rejection has a code (and a reply code for requests)', async (t) => {
  t.same(faultOf(() => parseGreeting(hex('04 01 00'))), { code: 'DC_SOCKS_VERSION', socksReply: undefined });
  t.equal(faultOf(() => parseGreeting(hex('05 00'))).code, 'DC_SOCKS_MALFORMED');
  t.equal(faultOf(() => parseMethodSelection(hex('04 00'))).code, 'DC_SOCKS_VERSION');
  t.equal(faultOf(() => parseUserPassRequest(hex('05 01 61 01 62'))).code, 'DC_SOCKS_VERSION');
  t.equal(faultOf(() => parseUserPassRequest(hex('01 00 01 62'))).code, 'DC_SOCKS_MALFORMED', 'empty user');
  t.equal(faultOf(() => parseUserPassRequest(hex('01 01 61 00'))).code, 'DC_SOCKS_MALFORMED', 'empty password');
  t.equal(faultOf(() => parseUserPassRequest(hex('01 01 ff 01 62'))).code, 'DC_SOCKS_MALFORMED', 'not UTF-8');
  t.equal(faultOf(() => parseUserPassReply(hex('05 00'))).code, 'DC_SOCKS_VERSION');
  t.same(faultOf(() => parseRequest(hex('04 01 00 01 c0000201 0050'))), { code: 'DC_SOCKS_VERSION', socksReply: 1 });
  t.same(faultOf(() => parseRequest(hex('05 09 00 01 c0000201 0050'))), {
    code: 'DC_SOCKS_COMMAND_UNSUPPORTED',
    socksReply: 7,
  });
  t.same(faultOf(() => parseRequest(hex('05 01 01 01 c0000201 0050'))), { code: 'DC_SOCKS_MALFORMED', socksReply: 1 });
  t.same(faultOf(() => parseRequest(hex('05 01 00 02 c0000201 0050'))), { code: 'DC_SOCKS_ADDRESS_TYPE', socksReply: 8 });
  t.same(faultOf(() => parseRequest(hex('05 01 00 03 00 0050'))), { code: 'DC_SOCKS_MALFORMED', socksReply: 1 });
  t.same(faultOf(() => parseRequest(hex('05 01 00 03 03 612f62 0050'))), { code: 'DC_SOCKS_MALFORMED', socksReply: 1 });
  t.equal(faultOf(() => parseReply(hex('05 00 01 01 00000000 0000'))).code, 'DC_SOCKS_MALFORMED');
  t.equal(faultOf(() => parseReply(hex('05 00 00 07 00000000 0000'))).code, 'DC_SOCKS_ADDRESS_TYPE');
  t.equal(faultOf(() => encodeRequest(1, 'not a host!', 1)).code, 'DC_SOCKS_ENCODE');
  t.equal(faultOf(() => encodeRequest(1, '192.0.2.1', 70000)).code, 'DC_SOCKS_ENCODE');
  t.equal(faultOf(() => encodeUserPassRequest('', 'x')).code, 'DC_SOCKS_ENCODE');
  t.equal(faultOf(() => encodeUserPassRequest('x', 'y'.repeat(256))).code, 'DC_SOCKS_ENCODE');
  t.equal(faultOf(() => encodeGreeting([])).code, 'DC_SOCKS_ENCODE');
});

t.test('domain names', async (t) => {
  t.ok(isValidDomain('example.com'));
  t.ok(isValidDomain('example.com.'));
  t.ok(isValidDomain('_sip._tcp.example.org'));
  t.ok(isValidDomain('a'.repeat(63) + '.b'));
  t.notOk(isValidDomain('a'.repeat(64) + '.b'));
  t.notOk(isValidDomain(''));
  t.notOk(isValidDomain('.'));
  t.notOk(isValidDomain('a..b'));
  t.notOk(isValidDomain('-a.b'));
  t.notOk(isValidDomain('a b'));
  t.notOk(isValidDomain('a\0b'));
});

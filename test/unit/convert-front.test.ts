import t from 'tap';
import { DuocellError } from '../../src/core/errors.js';
import { CODES } from '../../src/core/codes.js';
import { convertErrorFor } from '../../src/services/proxy/fronts/convert.js';
import { socks5Front, socksReplyFor } from '../../src/services/proxy/fronts/socks5.js';

const failed = (sysCode: string): DuocellError => new DuocellError('DC_PROXY_CONNECT_FAILED', 'x', { origin: 'kernel', sysCode });

t.test('upstream failures → Convert Error TLV (RFC 8803 4.2.8)', async (t) => {
  t.same(convertErrorFor(failed('ECONNREFUSED')), { code: 96 }, 'RST from the server: Connection Reset');
  t.same(convertErrorFor(failed('ENETUNREACH')), { code: 97, icmpCode: 0 }, 'network unreachable');
  t.same(convertErrorFor(failed('EHOSTUNREACH')), { code: 97, icmpCode: 1 }, 'host unreachable');
  t.same(convertErrorFor(failed('EACCES')), { code: 97, icmpCode: 13 }, 'administratively prohibited');
  t.same(convertErrorFor(failed('EADDRNOTAVAIL')), { code: 64 }, 'out of ports: Resource Exceeded');
  // Faults of this request only ask for the shortest retry delay (0 would mean "at least 30 s"
  // for every new connection through the converter, RFC 8803 4.2.8).
  t.same(convertErrorFor(failed('EWHATEVER')), { code: 65, delaySeconds: 1 }, 'anything else: Network Failure, retry in 1 s');
  t.same(convertErrorFor(new DuocellError('DC_PROXY_CONNECT_TIMEOUT')), { code: 65, delaySeconds: 1 }, 'one server silent: retry in 1 s');
  t.same(convertErrorFor(new DuocellError('DC_POLICY_LIMIT')), { code: 64, delaySeconds: 1 }, "a subscriber's limit: Resource Exceeded, retry in 1 s");
  t.same(convertErrorFor(new DuocellError('DC_PROXY_SHUTDOWN')), { code: 64 });
  t.same(convertErrorFor(new DuocellError('DC_TIMEOUT')), { code: 1 }, 'request never completed');
  t.equal(convertErrorFor(new DuocellError('DC_ABORTED')), undefined, 'client gone: no answer');
  t.same(convertErrorFor(new DuocellError('DC_CONVERT_NOT_AUTHORIZED', 'x', { convertError: 32 })), { code: 32 });
});

t.test('upstream failures → SOCKS5 reply codes (RFC 1928 section 6)', async (t) => {
  t.equal(socksReplyFor(failed('ECONNREFUSED')), 5);
  t.equal(socksReplyFor(failed('ENETUNREACH')), 3);
  t.equal(socksReplyFor(failed('EHOSTUNREACH')), 4);
  t.equal(socksReplyFor(failed('EACCES')), 2);
  t.equal(socksReplyFor(new DuocellError('DC_PROXY_CONNECT_FAILED', 'dns', { unreachable: true })), 4);
  t.equal(socksReplyFor(new DuocellError('DC_PROXY_CONNECT_TIMEOUT')), 4);
  t.equal(socksReplyFor(new DuocellError('DC_SOCKS_ADDRESS_TYPE', 'x', { socksReply: 8 })), 8);
  t.equal(socksReplyFor(new DuocellError('DC_INTERNAL')), 1);
  t.equal(socksReplyFor(new DuocellError('DC_ABORTED')), undefined);
});

t.test('a SOCKS5 front without credentials is refused unless explicitly anonymous', async (t) => {
  t.throws(() => socks5Front({}), { code: 'DC_CONFIG_INVALID' });
  t.equal(socks5Front({ allowAnonymous: true }).name, 'socks5');
  t.equal(socks5Front({ users: [{ username: 'a', password: 'b' }] }).name, 'socks5');
});

t.test('every Convert/SOCKS code is documented in codes.ts and docs/convert.md', async (t) => {
  const fs = await import('node:fs');
  const doc = fs.readFileSync(new URL('../../docs/convert.md', import.meta.url), 'utf8');
  const mine = Object.keys(CODES).filter((c) => c.startsWith('DC_CONVERT_') || c.startsWith('DC_SOCKS_'));
  t.ok(mine.length >= 18, `${mine.length} codes`);
  for (const c of mine) t.ok(doc.includes(c), `${c} documented`);
});

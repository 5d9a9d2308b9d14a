// Admin auth without HTTP: scrypt hashes, sessions (expiry, cap, persistence), the failure
// limiter (per client and overall, sliding window), the Host guard.
import t from 'tap';
import { Auth, FailureLimiter, hashPassword, memoryKv, safeEqual, verifyPassword } from '../../src/web/auth.js';
import { hostAllowed } from '../../src/web/server.js';

const N = 1024;

t.test('scrypt hash: verifies the right password only; tampered hashes are refused', async (t) => {
  const h = await hashPassword('correct horse', N);
  t.match(h, /^scrypt\$1024\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
  t.equal(await verifyPassword('correct horse', h), true);
  t.equal(await verifyPassword('correct horsf', h), false);
  t.not(await hashPassword('correct horse', N), h, 'salted: two hashes differ');
  const parts = h.split('$');
  t.equal(await verifyPassword('correct horse', ['scrypt', String(1 << 24), ...parts.slice(2)].join('$')), false, 'absurd N refused, no allocation');
  t.equal(await verifyPassword('correct horse', ['scrypt', '1000', ...parts.slice(2)].join('$')), false, 'N not a power of two');
  t.equal(await verifyPassword('correct horse', 'plain'), false);
  t.equal(await verifyPassword('correct horse', ['bcrypt', ...parts.slice(1)].join('$')), false);
  t.equal(await verifyPassword('correct horse', [...parts.slice(0, 5), 'AAAA'].join('$')), false, 'short key refused');
});

t.test('safeEqual', async (t) => {
  t.equal(safeEqual('abc', 'abc'), true);
  t.equal(safeEqual('abc', 'abd'), false);
  t.equal(safeEqual('abc', 'abcd'), false);
  t.equal(safeEqual('', ''), false, 'empty never matches');
  t.equal(safeEqual(undefined, 'x'), false);
});

t.test('sessions: idle and absolute expiry, cap, logout, persistence in the key-value store', async (t) => {
  let now = 1_000_000;
  const kv = memoryKv();
  const a = new Auth({ kv, scryptN: N, now: () => now, idleMs: 1000, maxAgeMs: 5000, maxSessions: 3 });
  t.equal(a.isSetUp(), false);
  await t.rejects(a.login('whatever-pw', 'c'), { code: 'DC_WEB_NOT_SET_UP' });
  const s1 = await a.setup('a-good-password', undefined, 'c');
  t.ok(a.session(s1.token));
  t.equal(a.session(s1.token)?.csrf, s1.csrf);
  t.notOk(kv.get('web.sessions')!.includes(s1.token), 'the raw token is not stored');
  t.notOk(kv.get('web.admin.hash')!.includes('a-good-password'), 'the password is not stored');
  // Persistence: a new Auth over the same store knows the session and the password.
  const b = new Auth({ kv, scryptN: N, now: () => now, idleMs: 1000, maxAgeMs: 5000 });
  t.ok(b.session(s1.token), 'session survives a restart');
  t.ok(await b.login('a-good-password', 'c'));
  // Idle expiry.
  now += 900;
  t.ok(a.session(s1.token), 'used within the idle time');
  now += 900;
  t.ok(a.session(s1.token), 'sliding');
  now += 1001;
  t.notOk(a.session(s1.token), 'idle too long');
  // Absolute expiry despite activity.
  const s2 = await a.login('a-good-password', 'c');
  for (let i = 0; i < 6; i++) {
    now += 900;
    a.session(s2.token);
  }
  t.notOk(a.session(s2.token), 'older than maxAge');
  // Cap: the oldest is dropped.
  const xs = [await a.login('a-good-password', 'c'), await a.login('a-good-password', 'c'), await a.login('a-good-password', 'c')];
  const x4 = await a.login('a-good-password', 'c');
  t.notOk(a.session(xs[0]!.token), 'oldest dropped');
  t.ok(a.session(x4.token));
  t.ok(a.sessionCount <= 3);
  a.logout(x4.token);
  t.notOk(a.session(x4.token), 'logged out');
  t.notOk(a.session('x'.repeat(500)), 'overlong token');
  t.notOk(a.session(undefined));
});

t.test('corrupt stored sessions are ignored, not fatal', async (t) => {
  const kv = memoryKv({ 'web.sessions': '{not json', 'web.admin.hash': await hashPassword('a-good-password', N) });
  const a = new Auth({ kv, scryptN: N });
  t.equal(a.sessionCount, 0);
  const kv2 = memoryKv({ 'web.sessions': JSON.stringify({ nothex: { csrf: 'x', created: 1, seen: 1 }, ['a'.repeat(64)]: { csrf: 1 } }) });
  t.equal(new Auth({ kv: kv2, scryptN: N }).sessionCount, 0);
});

t.test('a concurrent second set-up is refused', async (t) => {
  const a = new Auth({ kv: memoryKv(), scryptN: N });
  const [r1, r2] = await Promise.allSettled([a.setup('first-password', undefined, 'c1'), a.setup('second-password', undefined, 'c2')]);
  t.equal(r1.status, 'fulfilled');
  t.equal(r2.status, 'rejected');
  t.equal((r2 as PromiseRejectedResult).reason.code, 'DC_WEB_ALREADY_SET_UP');
  t.ok(await a.login('first-password', 'c1'));
});

t.test('failure limiter: per client, overall, sliding window, bounded memory', async (t) => {
  let now = 0;
  const l = new FailureLimiter(3, 5, 10_000, () => now);
  t.equal(l.retryAfter('a'), 0);
  l.fail('a');
  now += 1000;
  l.fail('a');
  now += 1000;
  l.fail('a');
  t.equal(l.retryAfter('a'), 8000, 'blocked until the first failure leaves the window');
  t.equal(l.retryAfter('b'), 0, 'other clients unaffected');
  now += 8000;
  t.equal(l.retryAfter('a'), 0, 'window slid');
  l.fail('b');
  l.fail('c');
  l.fail('d');
  t.ok(l.retryAfter('e') > 0, 'overall limit reached (5 in the window)');
  now += 20_000;
  t.equal(l.retryAfter('e'), 0);
  for (let i = 0; i < FailureLimiter.MAX_KEYS + 100; i++) l.fail(`k${i}`);
  t.ok(l.keys <= FailureLimiter.MAX_KEYS, 'memory bounded');
  l.clear('k5000');
});

t.test('the login limiter refuses before spending scrypt time', async (t) => {
  const a = new Auth({ kv: memoryKv(), scryptN: N, perClientFailures: 2 });
  await a.setup('a-good-password', undefined, 'x');
  await t.rejects(a.login('bad-password-1', 'ip1'), { code: 'DC_WEB_BAD_CREDENTIALS' });
  await t.rejects(a.login('bad-password-2', 'ip1'), { code: 'DC_WEB_BAD_CREDENTIALS' });
  await t.rejects(a.login('a-good-password', 'ip1'), { code: 'DC_WEB_RATE_LIMITED' });
  t.ok(await a.login('a-good-password', 'ip2'), 'another client is not limited');
  await t.rejects(a.login(123, 'ip3'), { code: 'DC_WEB_BAD_CREDENTIALS' });
  await t.rejects(a.login('x'.repeat(1000), 'ip4'), { code: 'DC_WEB_BAD_CREDENTIALS' });
});

t.test('Host guard', async (t) => {
  const allowed = new Set(['duocell.lan']);
  for (const h of ['127.0.0.1', '127.0.0.1:8080', '192.0.2.1', 'localhost:80', 'LOCALHOST', '[::1]', '[::1]:8080', '[fe80::1]:80', 'duocell.lan', 'DUOCELL.LAN:8080']) {
    t.equal(hostAllowed(h, allowed), true, h);
  }
  for (const h of [undefined, '', 'evil.example', 'duocell.lan.evil.example', '[::1', '[nothost]:80', '127.0.0.1.nip.io', 'x'.repeat(300)]) {
    t.equal(hostAllowed(h, allowed), false, String(h));
  }
});

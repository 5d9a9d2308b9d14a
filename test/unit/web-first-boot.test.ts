// The first-boot secret's format and the HTTPS redirect (issue 16, item 1): table and fuzz tests.
import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { formatSecret, generateSetupSecret, normalizeSecret } from '../../src/web/secret.js';
import { redirectHandler } from '../../src/web/server.js';
import { isLoopback } from '../../src/wiring/first-boot.js';
import { Auth } from '../../src/web/auth.js';

t.test('generated secrets: 4×4 base32, 80 bits, distinct', async (t) => {
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const s = generateSetupSecret();
    t.ok(/^[A-Z2-7]{4}(-[A-Z2-7]{4}){3}$/.test(s), s) || t.fail(s);
    seen.add(s);
  }
  t.equal(seen.size, 2000, 'no repeats');
  t.equal(generateSetupSecret(() => Buffer.alloc(10)), 'AAAA-AAAA-AAAA-AAAA', 'all-zero bits');
  t.equal(generateSetupSecret(() => Buffer.alloc(10, 0xff)), '7777-7777-7777-7777', 'all-one bits');
  t.throws(() => generateSetupSecret(() => Buffer.alloc(3)), { code: 'DC_INTERNAL' });
});

t.test('typed secrets are normalised: case, spaces, dashes, look-alikes', async (t) => {
  const table: Array<[unknown, string | undefined]> = [
    ['ABCD-EFGH-IJKL-MNOP', 'ABCDEFGHIJKLMNOP'],
    ['abcd efgh ijkl mnop', 'ABCDEFGHIJKLMNOP'],
    ['  abcdEFGHijklMNOP ', 'ABCDEFGHIJKLMNOP'],
    ['0BCD-1FGH-8JKL-MN0P', 'OBCDIFGHBJKLMNOP'],
    ['ABCD-EFGH-IJKL-MNO', undefined],
    ['ABCD-EFGH-IJKL-MNOPQ', undefined],
    ['ABCD-EFGH-IJKL-MN9P', undefined],
    ['ABCD_EFGH_IJKL_MNOP', undefined],
    ['', undefined],
    [42, undefined],
    [null, undefined],
    ['A'.repeat(65), undefined],
  ];
  for (const [input, want] of table) t.equal(normalizeSecret(input), want, JSON.stringify(input));
  t.equal(formatSecret('abcdefghijklmnop'), 'ABCD-EFGH-IJKL-MNOP');
});

t.test('fuzz: normalizeSecret never throws, and a match needs the exact 80 bits', async (t) => {
  let seed = 7;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const secret = normalizeSecret(generateSetupSecret())!;
  let accepted = 0;
  let same = 0;
  for (let i = 0; i < 20_000; i++) {
    const len = Math.floor(rnd() * 40);
    let s = '';
    for (let j = 0; j < len; j++) s += String.fromCharCode(Math.floor(rnd() * (rnd() < 0.9 ? 128 : 0x3000)));
    if (rnd() < 0.3) {
      // mutate the real secret by one character
      const k = Math.floor(rnd() * 16);
      s = secret.slice(0, k) + 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'[Math.floor(rnd() * 32)] + secret.slice(k + 1);
    }
    if (s === secret) same++;
    const n = normalizeSecret(s);
    if (n === secret) accepted++;
    if (n !== undefined && !/^[A-Z2-7]{16}$/.test(n)) t.fail(`bad normal form ${n}`);
  }
  t.equal(accepted, same, `only the unchanged secret matches (${accepted} of 20000)`);
});

t.test('Auth compares the secret normalised and refuses others with DC_WEB_FIRST_BOOT_SECRET', async (t) => {
  const kv = new Map<string, string | undefined>();
  let done = 0;
  const auth = new Auth({ kv: { get: (k) => kv.get(k), set: (k, v) => void kv.set(k, v ?? undefined) }, firstBootSecret: 'K7QD-2MXA-P4RT-ZB6N', scryptN: 1 << 10, onSetUp: () => done++ } as ConstructorParameters<typeof Auth>[0]);
  await t.rejects(auth.setup('correct horse battery staple', undefined, 'a'), { code: 'DC_WEB_FIRST_BOOT_SECRET' });
  await t.rejects(auth.setup('correct horse battery staple', 'K7QD-2MXA-P4RT-ZB6M', 'a'), { code: 'DC_WEB_FIRST_BOOT_SECRET' });
  t.equal(done, 0);
  await auth.setup('correct horse battery staple', 'k7qd 2mxa p4rt zb6n', 'b');
  t.equal(done, 1, 'onSetUp called once set up');
  t.ok(auth.isSetUp());
});

t.test('loopback addresses', async (t) => {
  for (const h of ['127.0.0.1', '127.1.2.3', '::1', 'localhost', '::ffff:127.0.0.1']) t.ok(isLoopback(h), h);
  for (const h of ['10.0.0.1', '192.168.225.1', '::', '0.0.0.0', 'fe80::1', '::ffff:10.0.0.1']) t.notOk(isLoopback(h), h);
});

t.test('the redirect goes to HTTPS on the listen address, never elsewhere', async (t) => {
  const srv = http.createServer(redirectHandler('10.67.0.1', 8443));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => srv.close());
  const port = (srv.address() as AddressInfo).port;
  const get = (p: string, host = 'x'): Promise<{ status: number; location: string | undefined }> =>
    new Promise((resolve, reject) => {
      const r = http.request({ host: '127.0.0.1', port, path: p, headers: { host } }, (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, location: res.headers.location });
      });
      r.on('error', reject);
      r.end();
    });
  t.same(await get('/a/b?c=d'), { status: 308, location: 'https://10.67.0.1:8443/a/b?c=d' });
  t.same(await get('//evil.example/x'), { status: 308, location: 'https://10.67.0.1:8443/' }, 'no protocol-relative target');
  t.same(await get('/', 'evil.example'), { status: 308, location: 'https://10.67.0.1:8443/' }, 'the Host header is ignored');
  t.same(await get('/%E2%82%AC'), { status: 308, location: 'https://10.67.0.1:8443/%E2%82%AC' });
  const v6 = http.createServer(redirectHandler('fd00::1', 443));
  await new Promise<void>((r) => v6.listen(0, '127.0.0.1', r));
  t.teardown(() => v6.close());
  const p6 = (v6.address() as AddressInfo).port;
  const loc = await new Promise<string | undefined>((resolve) => http.get({ host: '127.0.0.1', port: p6, path: '/x' }, (res) => (res.resume(), resolve(res.headers.location))));
  t.equal(loc, 'https://[fd00::1]/x', 'IPv6 in brackets, port 443 implied');
});

t.test('the board decides the sockets: LAN redirect + HTTPS, loopback plain; values kept per device', async (t) => {
  const { prepareWebSecurity } = await import('../../src/wiring/first-boot.js');
  const { loadBoard } = await import('../../src/core/board.js');
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-fbw-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const pi = loadBoard('rpi4-ec25');
  const openssl = (await import('node:child_process')).spawnSync('openssl', ['version']).status === 0;
  const sec = await prepareWebSecurity({ ...pi, web: { ...pi.web, banner: { issueFile: path.join(dir, 'issue') } } }, dir);
  t.match(sec.setupSecret, /^[A-Z2-7]{4}(-[A-Z2-7]{4}){3}$/);
  t.match(sec.metricsToken, /^[A-Za-z0-9_-]{32}$/);
  if (openssl) {
    t.same(
      sec.listen.map((l) => ({ host: l.host, port: l.port, tls: l.tls !== undefined, redirectTo: l.redirectTo })),
      [
        { host: '192.168.225.1', port: 80, tls: false, redirectTo: 443 },
        { host: '127.0.0.1', port: 8080, tls: false, redirectTo: undefined },
        { host: '192.168.225.1', port: 443, tls: true, redirectTo: undefined },
      ],
      'the Pi: port 80 redirects, 443 is HTTPS, loopback 8080 plain',
    );
    t.match(sec.banner(false), /web page: https:\/\/192\.168\.225\.1\/\n/);
  } else t.equal(sec.tls, undefined, 'no openssl: no HTTPS');
  sec.writeBanner(false);
  t.match(fs.readFileSync(path.join(dir, 'issue'), 'utf8'), sec.setupSecret!);
  sec.writeBanner(true);
  t.notMatch(fs.readFileSync(path.join(dir, 'issue'), 'utf8'), sec.setupSecret!, 'no secret once set up');
  const again = await prepareWebSecurity(pi, dir);
  t.same([again.setupSecret, again.metricsToken, again.tls?.fingerprint], [sec.setupSecret, sec.metricsToken, sec.tls?.fingerprint], 'the same values at the next start');
  const plainBoard = { ...pi, web: { listen: pi.web.listen } };
  const loop = await prepareWebSecurity(plainBoard, fs.mkdtempSync(path.join(dir, 'l-')), [{ host: '127.0.0.1', port: 0 }]);
  t.same([loop.setupSecret, loop.metricsToken, loop.tls], [undefined, undefined, undefined], 'loopback only: no secret, no token by default');
  const lan = await prepareWebSecurity(plainBoard, fs.mkdtempSync(path.join(dir, 'd-')));
  t.ok(lan.setupSecret !== undefined && lan.metricsToken !== undefined, 'a LAN address: secret and token by default');
  const none = await prepareWebSecurity({ ...pi, web: { ...pi.web, setupSecret: 'none', metricsToken: 'none', https: undefined } as typeof pi.web }, fs.mkdtempSync(path.join(dir, 'n-')));
  t.same([none.setupSecret, none.metricsToken, none.listen.every((l) => l.tls === undefined && l.redirectTo === undefined)], [undefined, undefined, true], 'explicit none, no https: plain everywhere');
});

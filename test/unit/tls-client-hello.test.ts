// The ClientHello server-name parser (src/protocols/tls) against real ClientHellos: made here by
// Node's own tls.connect and by `openssl s_client -servername` (when installed), captured on a
// local TCP server that never answers. Nothing captured elsewhere is stored in the repository.
import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import tls from 'node:tls';
import t from 'tap';
import { MAX_CLIENT_HELLO, parseClientHello, serverNameMatches, normalizeRule, type ClientHelloResult } from '../../src/protocols/tls/index.js';

/** Bytes a client sends first to a server that stays silent, until they form a whole ClientHello (or 2 s). */
async function capture(start: (port: number) => () => void): Promise<Buffer> {
  const srv = net.createServer();
  let stop: () => void = () => undefined;
  const got = new Promise<Buffer>((resolve) => {
    srv.on('connection', (s) => {
      let buf = Buffer.alloc(0);
      const done = (): void => {
        s.destroy();
        resolve(buf);
      };
      const timer = setTimeout(done, 20_000); // a fall-back for a hello that never completes, not a timing claim
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (parseClientHello(buf).kind !== 'need-more') {
          clearTimeout(timer);
          done();
        }
      });
      s.on('error', () => undefined);
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  stop = start((srv.address() as net.AddressInfo).port);
  const b = await got;
  stop();
  srv.close();
  return b;
}

function nodeHello(o: tls.ConnectionOptions): Promise<Buffer> {
  return capture((port) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...o });
    s.on('error', () => undefined);
    return () => s.destroy();
  });
}

/** The same handshake message re-framed into records of `size` octets (a legal split). */
function reframe(hello: Buffer, size: number): Buffer {
  const msg = Buffer.concat(recordsOf(hello));
  const out: Buffer[] = [];
  for (let i = 0; i < msg.length; i += size) {
    const frag = msg.subarray(i, i + size);
    out.push(Buffer.from([22, 3, 1, frag.length >> 8, frag.length & 0xff]), frag);
  }
  return Buffer.concat(out);
}

function recordsOf(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let p = 0; p + 5 <= b.length; ) {
    const len = b.readUInt16BE(p + 3);
    out.push(b.subarray(p + 5, p + 5 + len));
    p += 5 + len;
  }
  return out;
}

/** Feed `b` as TCP would deliver it, `step` octets at a time: need-more grows until the answer. */
function byPrefix(t: { fail(m: string): unknown }, b: Buffer, step: number): ClientHelloResult {
  let r = parseClientHello(b.subarray(0, 0));
  for (let n = 0; n <= b.length; n += step) {
    r = parseClientHello(b.subarray(0, n));
    if (r.kind !== 'need-more') return r;
    if (r.need <= n) t.fail(`need ${r.need} at ${n}`);
  }
  return parseClientHello(b);
}

t.test('Node tls.connect: the server name of TLS 1.3 and 1.2 ClientHellos, whole, cut and re-framed', async (t) => {
  for (const [label, o] of [
    ['TLS 1.3', { servername: 'Video.Example' }],
    ['TLS 1.2 only', { servername: 'video.example', maxVersion: 'TLSv1.2' as const }],
    ['TLS 1.0–1.3', { servername: 'a.b.video.example', minVersion: 'TLSv1' as const }],
  ] as const) {
    const hello = await nodeHello(o);
    const want = o.servername.toLowerCase();
    const r = parseClientHello(hello);
    t.match(r, { kind: 'hello', serverName: want, ech: false, consumed: hello.length }, `${label}: ${hello.length} octets`);
    t.equal(byPrefix(t, hello, 1).kind, 'hello', `${label}: octet by octet`);
    t.match(byPrefix(t, hello, 97), { serverName: want }, `${label}: 97-octet segments`);
    for (const size of [7, 20, 100, 512]) {
      const split = reframe(hello, size);
      t.match(parseClientHello(split), { kind: 'hello', serverName: want, consumed: split.length }, `${label}: re-framed in ${size}-octet records`);
    }
    // Bytes after the ClientHello (a second record) change nothing.
    t.match(parseClientHello(Buffer.concat([hello, Buffer.from([23, 3, 3, 0, 1, 0])])), { kind: 'hello', serverName: want, consumed: hello.length });
  }
});

t.test('Node tls.connect without a server name (an IP literal): hello, serverName null', async (t) => {
  const hello = await nodeHello({});
  t.match(parseClientHello(hello), { kind: 'hello', serverName: null });
});

t.test('openssl s_client -servername', { skip: spawnSync('openssl', ['version']).status === 0 ? false : 'openssl not installed' }, async (t) => {
  for (const args of [['-tls1_3'], ['-tls1_2'], []]) {
    const hello = await capture((port) => {
      const p = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'Video.Example.', ...args], { stdio: ['pipe', 'ignore', 'ignore'] });
      p.on('error', () => undefined);
      return () => p.kill();
    });
    // openssl sends the name as given; the trailing dot and case are normalised.
    t.match(parseClientHello(hello), { kind: 'hello', serverName: 'video.example' }, `openssl ${args.join(' ') || '(default)'}: ${hello.length} octets`);
  }
});

t.test('not TLS, broken TLS, too large', async (t) => {
  t.match(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n')), { kind: 'not-tls', code: 'DC_TLS_NOT_CLIENT_HELLO' });
  t.match(parseClientHello(Buffer.from('SSH-2.0-x')), { kind: 'not-tls' });
  t.match(parseClientHello(Buffer.from([22])), { kind: 'need-more', need: 5 });
  t.match(parseClientHello(Buffer.from([22, 4])), { kind: 'not-tls' }, 'record version 4.x');
  t.match(parseClientHello(Buffer.from([22, 3, 1, 0, 4, 2, 0, 0, 0])), { kind: 'not-tls' }, 'a ServerHello first');
  t.match(parseClientHello(Buffer.from([22, 3, 1, 0, 0])), { kind: 'invalid', code: 'DC_TLS_MALFORMED' }, 'empty handshake record');
  t.match(parseClientHello(Buffer.from([22, 3, 1, 0x40, 1])), { kind: 'invalid', code: 'DC_TLS_MALFORMED' }, 'record above 2^14');
  t.match(parseClientHello(Buffer.from([22, 3, 1, 0, 4, 1, 0, 0x40, 1])), { kind: 'invalid', code: 'DC_TLS_TOO_LARGE' }, 'a 16 KiB + 1 ClientHello is refused from its header');
  t.equal(MAX_CLIENT_HELLO, 16384);
  const hello = await nodeHello({ servername: 'video.example' });
  // A ChangeCipherSpec record between two fragments of the ClientHello.
  const parts = reframe(hello, 100);
  const mixed = Buffer.concat([parts.subarray(0, 105), Buffer.from([20, 3, 3, 0, 1, 1]), parts.subarray(105)]);
  t.match(parseClientHello(mixed), { kind: 'invalid', code: 'DC_TLS_MALFORMED' });
  // 65 one-octet records: too many.
  t.match(parseClientHello(reframe(hello, 1).subarray(0, 65 * 6)), { kind: 'invalid', code: 'DC_TLS_TOO_LARGE' });
  // A UTF-8 (not A-label) host_name.
  const i = hello.indexOf(Buffer.from('video.example'));
  const bad = Buffer.from(hello);
  bad[i] = 0xc3;
  t.match(parseClientHello(bad), { kind: 'invalid', code: 'DC_TLS_SERVER_NAME' });
  // A length that overruns: the extensions block.
  const cut = Buffer.from(hello);
  cut[i - 2] = 0xff;
  t.match(parseClientHello(cut), { kind: 'invalid', code: 'DC_TLS_MALFORMED' });
});

t.test('ECH: the outer name is what is read, and ech is flagged', async (t) => {
  // Add an encrypted_client_hello extension (0xfe0d, outer type 0, dummy payload) to a real hello.
  const hello = await nodeHello({ servername: 'public.example' });
  const msg = Buffer.concat(recordsOf(hello));
  const body = msg.subarray(4);
  let p = 2 + 32;
  p += 1 + body[p]!;
  p += 2 + body.readUInt16BE(p);
  p += 1 + body[p]!;
  const ext = Buffer.concat([Buffer.from([0xfe, 0x0d, 0, 9]), Buffer.from([0, 0, 1, 0, 1, 7, 0, 0, 0])]);
  const exts = Buffer.concat([body.subarray(p + 2), ext]);
  const newBody = Buffer.concat([body.subarray(0, p), Buffer.from([exts.length >> 8, exts.length & 0xff]), exts]);
  const newMsg = Buffer.concat([Buffer.from([1, 0, newBody.length >> 8, newBody.length & 0xff]), newBody]);
  const rec = Buffer.concat([Buffer.from([22, 3, 1, newMsg.length >> 8, newMsg.length & 0xff]), newMsg]);
  t.match(parseClientHello(rec), { kind: 'hello', serverName: 'public.example', ech: true });
});

t.test('rule names: exact and *.suffix, case-insensitive, no trailing dot', async (t) => {
  t.ok(serverNameMatches('video.example', 'VIDEO.example.'));
  t.notOk(serverNameMatches('video.example', 'x.video.example'));
  t.ok(serverNameMatches('*.example.com', 'a.example.com'));
  t.ok(serverNameMatches('*.Example.com', 'a.b.example.com'));
  t.notOk(serverNameMatches('*.example.com', 'example.com'));
  t.notOk(serverNameMatches('*.example.com', 'badexample.com'));
  t.equal(normalizeRule('*.EXAMPLE.com.'), '*.example.com');
  t.equal(normalizeRule('a.*.com'), undefined);
  t.equal(normalizeRule('xn--bcher-kva.example'), 'xn--bcher-kva.example');
});

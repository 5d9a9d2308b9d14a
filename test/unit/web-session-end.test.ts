// Sessions that end take their open requests with them: logout, a password change (which ends
// every other session) and expiry close that session's /api/v1/events streams and any other
// request it still holds (here: an OTA upload in progress), at once. Other sessions' streams
// stay open.
import t from 'tap';
import http from 'node:http';
import { startServer, type Client } from './web-helpers.js';

interface Stream {
  /** 'ended' | 'error' when the server closed it; 'open' if still open after the wait. */
  state(waitMs: number): Promise<string>;
  abort(): void;
  chunks: string[];
}

async function openStream(c: Client): Promise<Stream> {
  const ac = new AbortController();
  const cookie = [...c.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  const res = await fetch(`${c.base}/api/v1/events`, { headers: { cookie }, signal: ac.signal });
  if (res.status !== 200) throw new Error(`events answered ${res.status}`);
  const chunks: string[] = [];
  const reader = res.body!.getReader();
  const done: Promise<string> = (async () => {
    try {
      for (;;) {
        const r = await reader.read();
        if (r.done) return 'ended';
        chunks.push(Buffer.from(r.value).toString());
      }
    } catch {
      return ac.signal.aborted ? 'aborted' : 'error';
    }
  })();
  // The stream is attached once its first state arrives.
  for (let i = 0; i < 200 && chunks.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  return {
    chunks,
    abort: () => ac.abort(),
    state: (waitMs) => Promise.race([done, new Promise<string>((r) => setTimeout(() => r('open'), waitMs).unref())]),
  };
}

const closedStates = ['ended', 'error'];

t.test('logout closes that session\'s event streams at once, not another\'s', async (t) => {
  const h = await startServer();
  t.teardown(() => h.close());
  const a = h.client();
  t.equal((await a.setup()).status, 200);
  const b = h.client();
  t.equal((await b.login()).status, 200);
  const sa1 = await openStream(a);
  const sa2 = await openStream(a);
  const sb = await openStream(b);
  t.teardown(() => [sa1, sa2, sb].forEach((s) => s.abort()));
  const out = await a.req('POST', '/api/v1/auth/logout', {});
  t.equal(out.status, 200, 'the logout itself is answered');
  t.ok(closedStates.includes(await sa1.state(30_000)), 'first stream of the session closed');
  t.ok(closedStates.includes(await sa2.state(30_000)), 'second stream of the session closed');
  t.equal(await sb.state(300), 'open', "the other session's stream stays open");
  t.equal((await b.get('/api/v1/paths')).status, 200, 'the other session still works');
});

t.test('a password change closes every session\'s streams (its own too) but answers itself', async (t) => {
  const h = await startServer();
  t.teardown(() => h.close());
  const a = h.client();
  await a.setup();
  const b = h.client();
  await b.login();
  const sa = await openStream(a);
  const sb = await openStream(b);
  t.teardown(() => [sa, sb].forEach((s) => s.abort()));
  const r = await a.req('PUT', '/api/v1/auth/password', { current: 'a-good-password', password: 'another-good-one' });
  t.equal(r.status, 200, 'the change is answered');
  t.ok(closedStates.includes(await sb.state(30_000)), "the other session's stream closed");
  t.ok(closedStates.includes(await sa.state(30_000)), "the changing session's old stream closed");
  t.equal((await b.get('/api/v1/paths')).status, 401, 'the other session is gone');
  t.equal((await a.get('/api/v1/paths')).status, 200, 'the new session of the changer works');
  const again = await openStream(a);
  t.equal(await again.state(300), 'open', 'a new stream on the new session stays open');
  again.abort();
});

t.test('an expired session\'s stream is closed by the sweep, without any further request', async (t) => {
  // idleMs 3 s, not 0.6 s: the 'open' check below must not race the expiry on a loaded host
  const h = await startServer({ auth: { scryptN: 1024, idleMs: 3000, sweepMs: 100 } });
  t.teardown(() => h.close());
  const a = h.client();
  await a.setup();
  const s = await openStream(a);
  t.teardown(() => s.abort());
  t.equal(await s.state(100), 'open', 'open while the session lives');
  t.ok(closedStates.includes(await s.state(30_000)), 'closed once the session expired');
  t.equal((await a.get('/api/v1/paths')).status, 401, 'and the session is gone');
});

t.test('logout also ends a long request the session holds (an upload in progress)', async (t) => {
  const h = await startServer();
  t.teardown(() => h.close());
  const a = h.client();
  await a.setup();
  const url = new URL('/api/v1/ota/bundle', h.base);
  const cookie = [...a.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  const upload = http.request(url, {
    method: 'POST',
    headers: { cookie, 'x-csrf-token': a.csrf, 'content-type': 'application/octet-stream', 'content-length': String(1 << 20) },
  });
  const ended = new Promise<string>((resolve) => {
    upload.on('response', (res) => resolve(`answered ${res.statusCode}`));
    upload.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    upload.on('close', () => resolve('closed'));
  });
  upload.write(Buffer.alloc(4096)); // a slow upload: 4 KiB of 1 MiB, then nothing
  await new Promise((r) => setTimeout(r, 200));
  t.equal((await a.req('POST', '/api/v1/auth/logout', {})).status, 200);
  const how = await Promise.race([ended, new Promise<string>((r) => setTimeout(() => r('still open'), 30_000).unref())]);
  t.not(how, 'still open', `the upload was ended (${how})`);
  upload.destroy();
});

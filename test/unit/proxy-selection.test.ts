import t from 'tap';
import net from 'node:net';
import { ProxySelector, type Candidate } from '../../src/services/proxy/selection.js';
import { selectingConnector } from '../../src/services/proxy/select-connector.js';
import { normalizeProxies } from '../../src/store/validate.js';
import { DuocellError } from '../../src/core/errors.js';
import type { Connector } from '../../src/services/proxy/types.js';
import { socketIo } from '../../src/drivers/sockets/io.js';

/** Proxy selection (issue 15): eligibility, ranking, health from probes and sessions, retry on the next candidate. */

const list = (xs: unknown[]): Candidate[] => normalizeProxies(xs);

const video = { name: 'video', ports: [443], prefixes: ['198.51.100.0/24'] };
const base = [
  { name: 'site-a', address: '192.0.2.1', port: 5124, protocol: 'convert', location: 'cdn', apps: [video], policies: ['premium'], priority: 5 },
  { name: 'near', address: '192.0.2.2', port: 5124, protocol: 'convert', priority: 1 },
  { name: 'far', address: '192.0.2.3', port: 5124, protocol: 'convert', priority: 1 },
  { name: 'self', address: '127.0.0.1', port: 5124, protocol: 'convert', type: 'on-path', priority: 0 },
];
const socksOnly = { name: 'socks-only', address: '192.0.2.4', port: 1080, protocol: 'socks5', priority: 100 };

function selector(xs: unknown[] = base, probe: (c: Candidate) => Promise<number> = async () => 10, extra = {}): ProxySelector {
  return new ProxySelector({ candidates: () => list(xs), probe, failAfter: 2, sessionFailAfter: 2, random: () => 0, ...extra });
}

t.test('eligibility: application and subscriber policy', async (t) => {
  const s = selector();
  const vid = { address: '198.51.100.7', port: 443 };
  t.equal(s.choose({ policy: 'premium', ...vid })?.candidate.name, 'site-a', 'video for a premium subscriber → site A');
  t.equal(s.choose({ policy: 'premium', ...vid })?.app, 'video');
  t.equal(s.choose({ policy: 'basic', ...vid })?.candidate.name, 'near', 'another policy: the default');
  t.equal(s.choose({ policy: null, ...vid })?.candidate.name, 'near', 'no policy known: the default');
  t.equal(s.choose({ policy: 'premium', address: '198.51.100.7', port: 80 })?.candidate.name, 'near', 'other port: not video');
  t.equal(s.choose({ policy: 'premium', address: '203.0.113.1', port: 443 })?.candidate.name, 'near', 'other prefix: not video');
  // A SOCKS5-only candidate is one like any other (the cell speaks SOCKS5 to it): here the highest priority.
  t.equal(selector([...base, socksOnly]).choose({ policy: null, address: '203.0.113.1', port: 443 })?.candidate.name, 'socks-only', 'a SOCKS5-only candidate is chosen by the same rules');
  t.equal(s.choose({ policy: null, address: '203.0.113.1', port: 443 }, new Set(['near', 'far']))?.candidate.name, 'self', 'next: on-path');
  t.equal(s.choose({ policy: null, address: '203.0.113.1', port: 443 }, new Set(['near', 'far', 'self'])), undefined, 'none left');
});

t.test('rank: health, then priority, then RTT and weight', async (t) => {
  const rtt: Record<string, number> = { 'site-a': 5, near: 10, far: 80 };
  const s = selector(base, async (c) => rtt[c.name] ?? 1);
  for (const c of s.list()) if (c.candidate.type === 'off-path' && c.candidate.protocol === 'convert') await s.probeOnce(c.candidate);
  const any = { policy: null, address: '203.0.113.1', port: 80 };
  t.equal(s.choose(any)?.candidate.name, 'near', 'same priority: the nearer');
  t.equal(s.health('far')?.rttMs, 80);
  // near-equal RTTs tie and weight decides
  rtt.far = 10.5;
  const s2 = selector(
    base.map((b) => (b.name === 'far' ? { ...b, weight: 3 } : b)),
    async (c) => rtt[c.name] ?? 1,
    { random: () => 0.5 },
  );
  for (const c of s2.list()) if (c.candidate.name !== 'self' && c.candidate.name !== 'socks-only') await s2.probeOnce(c.candidate);
  t.equal(s2.choose(any)?.candidate.name, 'far', 'weight 3 of 4 takes r=0.5');
  // unhealthy after K failed probes: the next candidate
  const fails = selector(base, async (c) => {
    if (c.name === 'near') throw new Error('refused');
    return 10;
  });
  const near = fails.list().find((x) => x.candidate.name === 'near')!.candidate;
  await fails.probeOnce(near);
  t.equal(fails.health('near')?.healthy, true, 'one failure is not enough');
  await fails.probeOnce(near);
  t.equal(fails.health('near')?.healthy, false, 'K=2 failures: unhealthy');
  t.equal(fails.choose(any)?.candidate.name, 'far');
  t.equal(fails.choose({ policy: 'premium', address: '198.51.100.9', port: 443 })?.candidate.name, 'site-a');
  // all eligible unhealthy: still a try rather than a certain refusal
  const allDown = selector([base[1]], async () => {
    throw new Error('x');
  });
  await allDown.probeOnce(allDown.list()[0]!.candidate);
  await allDown.probeOnce(allDown.list()[0]!.candidate);
  t.match(allDown.choose(any), { candidate: { name: 'near' }, healthy: false });
  // a successful probe brings it back
  const back = selector([base[1]], async () => 3);
  back.probeResult('near', undefined, 'x');
  back.probeResult('near', undefined, 'x');
  t.equal(back.health('near')?.healthy, false);
  back.probeResult('near', 3);
  t.equal(back.health('near')?.healthy, true);
  // failed sessions count too
  const sess = selector();
  sess.sessionResult('near', false, 'reset');
  sess.sessionResult('near', true);
  sess.sessionResult('near', false, 'reset');
  t.equal(sess.health('near')?.healthy, true, 'a success breaks the run');
  sess.sessionResult('near', false, 'reset');
  t.equal(sess.health('near')?.healthy, false, 'a run of failed sessions');
});

t.test('probe timeout counts as a failure', async (t) => {
  const s = selector([base[1]], () => new Promise<number>(() => undefined), { timeoutMs: 30 });
  await s.probeOnce(s.list()[0]!.candidate);
  t.match(s.health('near'), { probeFailures: 1, lastError: /no answer within 30 ms/ });
});

t.test('reload keeps the health of candidates that stay', async (t) => {
  let xs: unknown[] = base;
  const s = new ProxySelector({ candidates: () => list(xs), probe: async () => 1, failAfter: 1 });
  s.probeResult('near', undefined, 'x');
  xs = base.filter((b) => b.name !== 'far');
  s.reload();
  t.equal(s.health('near')?.healthy, false);
  t.equal(s.health('far'), undefined);
});

t.test('selecting connector: next candidate on failure, fallback with none', async (t) => {
  // a server that answers like a converter would not be needed: on-path candidates connect directly
  const srv = net.createServer((c) => {
    c.on('error', () => undefined);
    c.end('hi');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => srv.close());
  const port = (srv.address() as net.AddressInfo).port;
  // a dead concentrator: a port nothing listens on
  const dead = net.createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
  const deadPort = (dead.address() as net.AddressInfo).port;
  await new Promise<void>((r) => dead.close(() => r()));
  const xs = [
    { name: 'dead', address: '127.0.0.1', port: deadPort, protocol: 'convert', priority: 10 },
    { name: 'self', address: '127.0.0.1', port: 1, protocol: 'convert', type: 'on-path', priority: 0 },
  ];
  const s = new ProxySelector({ candidates: () => list(xs), probe: async () => 1, sessionFailAfter: 1 });
  let fellBack = 0;
  const fallback: Connector = {
    name: 'fb',
    connect: async () => {
      fellBack++;
      throw new DuocellError('DC_PROXY_CONNECT_FAILED', 'fallback');
    },
  };
  const c = selectingConnector({ selector: s, fallback });
  const ac = new AbortController();
  const r = await c.connect({ target: { host: '127.0.0.1', port }, options: { mptcp: false }, signal: ac.signal, io: socketIo });
  t.equal(r.via, 'self', 'the dead one failed, the next carried the session');
  t.equal(s.health('dead')?.healthy, false, 'the failed session marked it');
  t.equal(s.health('self')?.sessions, 1, 'counted on its candidate');
  const closed = new Promise((res) => r.socket.once('close', res));
  r.socket.destroy();
  await closed;
  t.equal(s.health('self')?.sessions, 0, 'uncounted when it closes');
  // a name target: the listener's own connector
  await t.rejects(c.connect({ target: { host: 'example.invalid', port: 1 }, options: { mptcp: false }, signal: ac.signal, io: socketIo }), { message: 'fallback' });
  t.equal(fellBack, 1);
});

t.test('selecting connector place(): the fast path\'s choice, the same attempts as connect()', async (t) => {
  const srv = net.createServer((c) => {
    c.on('error', () => undefined);
    c.end('hi');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => srv.close());
  const port = (srv.address() as net.AddressInfo).port;
  const xs = [
    { name: 'self', address: '127.0.0.1', port: 1, protocol: 'convert', type: 'on-path', priority: 10, apps: [{ name: 'web', ports: [port] }] },
    { name: 'conc', address: '127.0.0.1', port: 2, protocol: 'convert', priority: 5 },
  ];
  const s = new ProxySelector({ candidates: () => list(xs), probe: async () => 1, sessionFailAfter: 5 });
  let fellBack = 0;
  const direct: Connector = { name: 'direct', connect: async () => (fellBack++, Promise.reject(new DuocellError('DC_PROXY_CONNECT_FAILED', 'fallback'))) };
  const c = selectingConnector({ selector: s, fallback: direct });
  const ask = (p: number, host = '127.0.0.1') => c.place!({ target: { host, port: p }, options: { mptcp: false, connectTimeoutMs: 9000 }, client: { address: '10.0.0.2', port: 1 } });

  const on = ask(port);
  t.ok(on.direct, 'on-path choice: direct (the fast path connects it)');
  if (!on.direct) return;
  t.equal(on.via, 'self');
  t.equal(on.more, true, 'conc follows if it fails');
  t.equal(on.options.connectTimeoutMs, 3000, 'the attempt timeout of an attempt with a next candidate');
  on.connected();
  t.equal(s.health('self')?.sessions, 1, 'counted on its candidate once connected');
  on.ended();
  t.equal(s.health('self')?.sessions, 0, 'uncounted when it ends');

  const off = ask(port + 1);
  t.equal(off.direct, false, 'off-path choice: the JS path');

  // An on-path attempt that failed goes on in connect() from the same state: conc next, never self again.
  const again = ask(port);
  if (!again.direct) return t.fail('direct');
  t.equal(again.failed(new DuocellError('DC_ABORTED', 'client went')), undefined, 'the client going is not the candidate\'s failure');
  t.equal(s.health('self')?.sessionFailures, 0);
  const next = again.failed(new DuocellError('DC_PROXY_CONNECT_FAILED', 'refused', { origin: 'kernel' }));
  t.ok(next !== undefined, 'a refused direct attempt with a next candidate: the JS path goes on');
  t.equal(s.health('self')?.sessionFailures, 1, 'counted as a failed session of self');
  const ac = new AbortController();
  await t.rejects(c.connect({ target: { host: '127.0.0.1', port }, options: { mptcp: false }, signal: ac.signal, io: socketIo, placed: next!.resume }), { code: 'DC_PROXY_CONNECT_FAILED' }, 'conc (nothing on port 2) tried next and failed');
  t.equal(s.health('conc')?.sessionFailures, 1, 'the attempt went to conc');
  t.equal(s.health('self')?.sessionFailures, 1, 'self was not tried again');

  // The off-path choice handed over: connect() takes it as made.
  if (off.direct) return;
  await t.rejects(c.connect({ target: { host: '127.0.0.1', port: port + 1 }, options: { mptcp: false }, signal: ac.signal, io: socketIo, placed: off.resume }), { code: 'DC_PROXY_CONNECT_FAILED' });
  t.equal(s.health('conc')?.sessionFailures, 2, 'the placed choice (conc) was tried');

  // With no candidate: the fallback's kind decides (direct: the fast path; otherwise the JS path).
  const none = selectingConnector({ selector: new ProxySelector({ candidates: () => [], probe: async () => 1 }), fallback: direct });
  const fb = none.place!({ target: { host: '127.0.0.1', port }, options: { mptcp: false }, client: { address: '10.0.0.2', port: 1 } });
  t.ok(fb.direct && fb.via === undefined && !fb.more, 'no candidate, direct fallback: the fast path, no proxy');
  const viaConvert = selectingConnector({ selector: new ProxySelector({ candidates: () => [], probe: async () => 1 }), fallback: { name: 'convert', connect: direct.connect } });
  t.equal(viaConvert.place!({ target: { host: '127.0.0.1', port }, options: { mptcp: false }, client: { address: '10.0.0.2', port: 1 } }).direct, false, 'a Convert fallback: the JS path');
  t.equal(fellBack, 0, 'place() connects nothing');
});

t.test('probe schedule: healthy candidates slowly (2 s default), failing or unhealthy ones every recoverIntervalMs', async (t) => {
  let now = 0;
  const probed: string[] = [];
  let nearUp = true;
  const s = selector([base[1], base[2]], async (c) => {
    probed.push(c.name);
    if (c.name === 'near' && !nearUp) throw new Error('refused');
    return 10;
  }, { now: () => now });
  // the timer is not started: drive rounds by hand (start() would tick every min(interval, recover))
  const round = async (): Promise<void> => {
    (s as unknown as { start(): void }).start();
    s.stop();
    await new Promise((r) => setImmediate(r));
  };
  await round();
  t.same(probed.sort(), ['far', 'near'], 'first round probes every candidate');
  probed.length = 0;
  for (now = 500; now < 2000; now += 500) await round();
  t.same(probed, [], 'healthy: not probed again within the default 2 s');
  now = 2000;
  await round();
  t.same(probed.sort(), ['far', 'near'], 'probed again at 2 s');
  probed.length = 0;
  nearUp = false;
  now = 4000;
  await round();
  t.equal(s.health('near')?.probeFailures, 1);
  probed.length = 0;
  now = 4500;
  await round();
  t.same(probed, ['near'], 'after a failed probe: re-probed at the recover interval (500 ms)');
  t.equal(s.health('near')?.healthy, false, 'two failed probes: unhealthy');
  nearUp = true;
  probed.length = 0;
  now = 5000;
  await round();
  t.same(probed, ['near'], 'unhealthy: probed every 500 ms, so its return is seen quickly');
  t.equal(s.health('near')?.healthy, true);
});

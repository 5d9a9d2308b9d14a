import t from 'tap';
import { PathMeter, quantile, windowStats, type ProbeTransport } from '../../src/services/paths/measure.js';
import { decodeProbe, encodeProbe } from '../../src/protocols/probe/codec.js';
import type { PathView } from '../../src/services/paths/types.js';

const view = (name: string, over: Partial<PathView> = {}): PathView => ({
  name, access: name === 'cellular' ? 'cellular' : 'wlan', interface: name, state: 'up', since: '', addresses: ['10.0.0.2'],
  gateway4: '10.0.0.1', table: 200, routing: 'installed', signal: { quality: 'unknown' }, ...over,
});

/** A transport whose "network" echoes after a per-target delay, or drops, under the test's control. */
function fakeNet(clock: { now: number }) {
  const sent: Array<{ local: string; target: string; port: number; b: Buffer }> = [];
  const opened: string[] = [];
  const handlers = new Map<string, (b: Buffer) => void>();
  const transport: ProbeTransport = {
    async open({ local, target, port, onMessage }) {
      opened.push(`${local}>${target}:${port}`);
      handlers.set(local, onMessage);
      return { send: (b) => void sent.push({ local, target, port, b }), close: () => void handlers.delete(local) };
    },
  };
  return { transport, sent, opened, reply: (i: number, extra?: (b: Buffer) => Buffer) => handlers.get(sent[i]!.local)?.(extra === undefined ? sent[i]!.b : extra(sent[i]!.b)), open: () => [...handlers.keys()], clock };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

t.test('window statistics: median, p95, jitter, loss', async (t) => {
  t.equal(quantile([5, 1, 3], 0.5), 3);
  t.equal(quantile([1, 2, 3, 4], 0.5), 2.5);
  t.equal(quantile(Array.from({ length: 100 }, (_, i) => i + 1), 0.95), 95);
  const s = windowStats([10, 12, null, 10, 14]);
  t.equal(s.samples, 5);
  t.equal(s.received, 4);
  t.equal(s.lossPct, 20);
  t.equal(s.rttMs?.median, 11);
  t.equal(s.rttMs?.p95, 14);
  t.equal(s.jitterMs, 2.667, "mean of |12-10|, |10-12|, |14-10|");
  t.same(windowStats([]), { samples: 0, received: 0 });
});

t.test('probes go from each path to its target; replies become RTT samples, silence becomes loss', async (t) => {
  const clock = { now: 1000 };
  const net = fakeNet(clock);
  const m = new PathMeter({ transport: net.transport, intervalMs: 100_000, timeoutMs: 500, now: () => clock.now, targets: { wlan: { address: '192.0.2.9', port: 9000 } } });
  t.teardown(() => m.stop());
  m.update(view('cellular', { addresses: ['10.1.0.2'], gateway4: '10.1.0.1' }));
  m.update(view('wlan', { addresses: ['10.2.0.2', 'fd00::2'] }));
  await tick();
  t.same(net.opened.sort(), ['10.1.0.2>10.1.0.1:7', '10.2.0.2>192.0.2.9:9000'], 'gateway on port 7 by default; the configured target otherwise');
  t.equal(net.sent.length, 2, 'one probe per path at once');
  clock.now += 40;
  net.reply(net.sent.findIndex((s) => s.local === '10.1.0.2'));
  t.equal(m.get('cellular')?.rttMs?.median, 40);
  // a duplicate, a foreign session and garbage are dropped
  net.reply(net.sent.findIndex((s) => s.local === '10.1.0.2'));
  net.reply(0, (b) => encodeProbe({ ...decodeProbe(b), session: (decodeProbe(b).session + 1) >>> 0 }));
  net.reply(0, () => Buffer.from('hello'));
  t.equal(m.counters.dropped, 3);
  t.equal(m.get('cellular')?.samples, 1);
  t.equal(m.rttMs('cellular'), 40);
  t.equal(m.rttMs('wlan'), undefined, 'no reply yet: no figure');
});

t.test('at most one probe per interval per path; a lost one counts after the timeout', async (t) => {
  const clock = { now: 0 };
  const net = fakeNet(clock);
  const m = new PathMeter({ transport: net.transport, intervalMs: 100, timeoutMs: 150, now: () => clock.now });
  t.teardown(() => m.stop());
  m.update(view('wlan'));
  await tick();
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, 1050));
  const elapsed = Date.now() - t0;
  t.ok(net.sent.length <= Math.floor(elapsed / 100) + 2, `${net.sent.length} probes in ${elapsed} ms at a 100 ms interval`);
  t.ok(net.sent.length >= 3, 'probing continues');
  const seqs = net.sent.map((s) => decodeProbe(s.b).seq);
  t.same(seqs, seqs.map((_, i) => i), 'sequence numbers count up');
  clock.now = 10_000; // everything outstanding is now older than the timeout
  await new Promise((r) => setTimeout(r, 150));
  const g = m.get('wlan')!;
  t.ok(g.samples >= 3 && g.received === 0 && g.lossPct === 100, `all lost: ${JSON.stringify(g)}`);
});

t.test('never probes a path that is down, that policy forbids, or that has no target', async (t) => {
  const clock = { now: 0 };
  const net = fakeNet(clock);
  let allowWlan = true;
  const m = new PathMeter({ transport: net.transport, intervalMs: 100_000, now: () => clock.now, allowed: (p) => p.access !== 'wlan' || allowWlan });
  t.teardown(() => m.stop());
  m.update(view('cellular', { state: 'down' }));
  m.update(view('lte2', { gateway4: undefined } as Partial<PathView>));
  m.update(view('wlan'));
  await tick();
  t.same(net.open(), ['10.0.0.2'], 'only the up, allowed path with a gateway');
  allowWlan = false;
  m.refresh();
  await tick();
  t.same(net.open(), [], 'policy forbids it now: its socket is closed');
  t.equal(m.get('wlan'), undefined, 'and its figures are gone');
  const before = net.sent.length;
  allowWlan = true;
  m.refresh();
  await tick();
  t.equal(net.sent.length, before + 1, 'allowed again: probing resumes');
  m.update(view('wlan', { state: 'down' }));
  t.same(net.open(), [], 'down: closed');
});

t.test('passive subflow RTTs are reported beside the probes', async (t) => {
  const clock = { now: 0 };
  const net = fakeNet(clock);
  const m = new PathMeter({ transport: net.transport, intervalMs: 100_000, now: () => clock.now, allowed: () => false });
  m.setPassive((p) => (p.name === 'wlan' ? [8, 10] : []));
  m.update(view('wlan'));
  t.same(m.get('wlan'), { target: '', samples: 0, received: 0, passiveRttMs: 9, passiveSubflows: 2 });
  t.equal(m.rttMs('wlan'), 9, 'the passive figure stands in when there are no probes');
  t.equal(m.get('cellular'), undefined);
});

t.test('bad settings are refused with a code', async (t) => {
  const transport = fakeNet({ now: 0 }).transport;
  t.throws(() => new PathMeter({ transport, intervalMs: 10 }), { code: 'DC_CONFIG_INVALID' });
  t.throws(() => new PathMeter({ transport, window: 0 }), { code: 'DC_CONFIG_INVALID' });
  t.throws(() => new PathMeter({ transport, targets: { a: { port: 70000 } } }), { code: 'DC_CONFIG_INVALID' });
});

t.test('a path may have its own transport (probe.method): it gets the device, and its target is shown its way', async (t) => {
  const clock = { now: 0 };
  const udp = fakeNet(clock);
  const opened: Array<{ local: string; target: string; device?: string }> = [];
  const icmp: ProbeTransport = {
    describe: (target) => `icmp:${target}`,
    async open({ local, target, device }) {
      opened.push({ local, target, ...(device === undefined ? {} : { device }) });
      return { send: () => undefined, close: () => undefined };
    },
  };
  const m = new PathMeter({ transport: udp.transport, intervalMs: 100_000, now: () => clock.now, targets: { cellular: { transport: icmp }, wlan: {} } });
  t.teardown(() => m.stop());
  m.update(view('cellular', { interface: 'wwan0', addresses: ['10.1.0.2'], gateway4: '10.1.0.1' }));
  m.update(view('wlan', { interface: 'wlan0', addresses: ['10.2.0.2'], gateway4: '10.2.0.1' }));
  await tick();
  t.same(opened, [{ local: '10.1.0.2', target: '10.1.0.1', device: 'wwan0' }], 'the ICMP path opens its own transport, on its device');
  t.same(udp.opened, ['10.2.0.2>10.2.0.1:7'], 'the other path keeps the default transport');
  t.equal(m.get('cellular')?.target, 'icmp:10.1.0.1');
  t.equal(m.get('wlan')?.target, '10.2.0.1:7', 'a transport without describe(): address:port');
});

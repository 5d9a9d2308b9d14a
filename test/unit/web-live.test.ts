// Live data: throughput sampling from byte counters, the event hub (format, coalescing,
// bounds), and the event stream over a real socket.
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import t from 'tap';
import type { PathView, WebEventName } from '../../src/web/deps.js';
import { createFakeDeps } from '../helpers/fake-deps.js';
import { EventHub, ThroughputSampler } from '../../src/web/live.js';
import { startServer } from './web-helpers.js';

const path = (name: string, tx: number, rx: number, state: 'up' | 'down' = 'up'): PathView => ({
  name,
  access: name === 'wlan' ? 'wlan' : 'cellular',
  interface: name,
  state,
  addresses: [],
  bytesTx: tx,
  bytesRx: rx,
});

t.test('sampler: bit rates from byte deltas, resets, removed paths, bounded history', async (t) => {
  let now = 10_000;
  let paths = [path('cellular', 0, 0), path('wlan', 0, 0)];
  const s = new ThroughputSampler(() => paths, { historySize: 5, now: () => now });
  const first = s.sample()!;
  t.same(first.total, { txBps: 0, rxBps: 0 }, 'no rate on the first sample');
  now += 2000;
  paths = [path('cellular', 250_000, 1_000_000), path('wlan', 0, 5_000_000)];
  const second = s.sample()!;
  t.same(second.paths.cellular, { txBps: 1_000_000, rxBps: 4_000_000, state: 'up', access: 'cellular' });
  t.same(second.paths.wlan, { txBps: 0, rxBps: 20_000_000, state: 'up', access: 'wlan' });
  t.same(second.total, { txBps: 1_000_000, rxBps: 24_000_000 });
  t.same(s.latest('wlan'), { txBps: 0, rxBps: 20_000_000 });
  now += 1000;
  paths = [path('cellular', 10, 10, 'down')];
  const third = s.sample()!;
  t.same(third.paths.cellular, { txBps: 0, rxBps: 0, state: 'down', access: 'cellular' }, 'a counter that went back is a reset, not a negative rate');
  t.notOk(third.paths.wlan, 'a path that disappeared is not reported');
  for (let i = 0; i < 10; i++) {
    now += 1000;
    s.sample();
  }
  t.equal(s.history().length, 5, 'history bounded');
  t.equal(s.latest('nope'), undefined);
  const failing = new ThroughputSampler(() => {
    throw new Error('paths unavailable');
  });
  t.equal(failing.sample(), undefined, 'a failing source is skipped, not fatal');
});

class FakeRes extends EventEmitter {
  chunks: string[] = [];
  status = 0;
  headers: Record<string, string> = {};
  writableLength = 0;
  ended = false;
  destroyed = false;
  writeHead(status: number, headers: Record<string, string>) {
    this.status = status;
    this.headers = headers;
    return this;
  }
  write(c: string) {
    this.chunks.push(c);
    return true;
  }
  end() {
    this.ended = true;
  }
  destroy() {
    this.destroyed = true;
  }
}

t.test('event hub: SSE format, coalescing, bounds, slow clients, close', async (t) => {
  const deps = createFakeDeps({ tickMs: 0 });
  t.teardown(() => deps.stop());
  const sampler = new ThroughputSampler(() => deps.paths());
  const hub = new EventHub(deps, sampler, { maxClients: 2, coalesceMs: 20, maxBuffered: 100 });
  t.teardown(() => hub.close());
  const a = new FakeRes();
  hub.attach(a as unknown as ServerResponse);
  t.equal(a.status, 200);
  t.match(a.headers['content-type'], /text\/event-stream/);
  t.equal(a.headers['cache-control'], 'no-store');
  sampler.sample();
  const ev = a.chunks.find((c) => c.includes('event: throughput'))!;
  t.match(ev, /^id: \d+\nevent: throughput\ndata: \{.*\}\n\n$/s);
  const data = JSON.parse(/data: (.*)\n/.exec(ev)![1]!);
  t.ok(data.paths.cellular && data.paths.wlan, 'both paths in the sample');
  // A burst of deps events becomes one SSE event carrying the state then.
  a.chunks = [];
  for (let i = 0; i < 10; i++) deps.tick();
  await new Promise((r) => setTimeout(r, 80));
  t.equal(a.chunks.filter((c) => c.includes('event: paths')).length, 1, 'paths coalesced');
  t.equal(a.chunks.filter((c) => c.includes('event: sessions')).length, 1, 'sessions coalesced');
  // Bounds.
  const b = new FakeRes();
  hub.attach(b as unknown as ServerResponse);
  t.throws(() => hub.attach(new FakeRes() as unknown as ServerResponse), { code: 'DC_WEB_BUSY' });
  // A client that does not read is dropped.
  b.writableLength = 1000;
  hub.broadcast('x', {});
  t.equal(b.destroyed, true, 'slow client dropped');
  t.equal(hub.size, 1);
  // A client that went away is removed.
  a.emit('close');
  t.equal(hub.size, 0);
  const c = new FakeRes();
  hub.attach(c as unknown as ServerResponse);
  hub.close();
  t.equal(c.ended, true, 'close ends the streams');
  t.equal(hub.size, 0);
});

t.test('event hub: a deps source that throws does not break the stream', async (t) => {
  const listeners = new Map<WebEventName, () => void>();
  const base = createFakeDeps({ tickMs: 0 });
  t.teardown(() => base.stop());
  const deps = {
    ...base,
    paths: (): PathView[] => {
      throw new Error('nope');
    },
    events: { on: (n: WebEventName, fn: () => void) => (listeners.set(n, fn), () => listeners.delete(n)) },
  };
  const hub = new EventHub(deps, new ThroughputSampler(() => []), { coalesceMs: 5 });
  t.teardown(() => hub.close());
  const a = new FakeRes();
  hub.attach(a as unknown as ServerResponse);
  listeners.get('paths')!();
  listeners.get('ota')!();
  await new Promise((r) => setTimeout(r, 30));
  t.notOk(a.chunks.some((c) => c.includes('event: paths')), 'no paths event');
  t.ok(a.chunks.some((c) => c.includes('event: ota')), 'other events still flow');
});

t.test('event stream over HTTP: initial paths, then throughput samples', async (t) => {
  const h = await startServer({ sampleMs: 50 });
  t.teardown(() => h.close());
  const c = h.client();
  await c.setup();
  const ac = new AbortController();
  t.teardown(() => ac.abort());
  const cookie = [...c.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  const res = await fetch(`${h.base}/api/v1/events`, { headers: { cookie }, signal: ac.signal });
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type'), /text\/event-stream/);
  t.equal(res.headers.get('x-content-type-options'), 'nosniff', 'security headers on the stream too');
  const reader = res.body!.getReader();
  let text = '';
  const dec = new TextDecoder();
  const deadline = Date.now() + 10_000;
  while ((text.match(/event: throughput/g) ?? []).length < 3 && Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value);
  }
  t.match(text, /^retry: 3000\n\n/);
  t.match(text, /event: paths\ndata: \[/, 'initial paths');
  t.ok((text.match(/event: throughput/g) ?? []).length >= 3, 'throughput samples stream');
  ac.abort();
});

t.test('system health from systeminformation, cached', async (t) => {
  const { readSystem, cachedSystem } = await import('../../src/web/system.js');
  const s = await readSystem();
  t.ok(s.cores >= 1);
  t.equal(s.load.length, 3);
  t.ok(s.memory.totalBytes > 0 && s.memory.usedBytes > 0 && s.memory.usedBytes <= s.memory.totalBytes);
  t.ok(s.uptimeS > 0);
  t.ok(s.rssBytes > 0);
  t.ok(s.cpuTempC === null || (s.cpuTempC > -50 && s.cpuTempC < 150), 'temperature plausible or absent');
  t.ok(Array.isArray(s.disks));
  let calls = 0;
  const read = cachedSystem(60_000, async () => {
    calls++;
    return s;
  });
  await read();
  await read();
  t.equal(calls, 1, 'cached');
  let fails = 0;
  const failing = cachedSystem(60_000, async () => {
    fails++;
    throw new Error('no sysfs');
  });
  await t.rejects(failing());
  await t.rejects(failing());
  t.equal(fails, 2, 'a failure is not cached');
});

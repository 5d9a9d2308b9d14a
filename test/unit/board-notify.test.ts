import t from 'tap';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { notifyMessage, startNotifier, watchdogInterval } from '../../src/drivers/systemd/notify.js';

function harness(env: NodeJS.ProcessEnv) {
  const sent: Array<[string, string]> = [];
  const timers: Array<{ f: () => void; ms: number; cleared: boolean }> = [];
  const handlers = new Map<string, () => void>();
  const n = startNotifier({
    env,
    pid: 4242,
    send: (p, m) => sent.push([p, m]),
    setInterval: (f, ms) => {
      const h = { f, ms, cleared: false };
      timers.push(h);
      return h;
    },
    clearInterval: (h) => {
      (h as { cleared: boolean }).cleared = true;
    },
    signals: {
      on: ((s: string, f: () => void) => handlers.set(s, f)) as never,
      off: ((s: string) => handlers.delete(s)) as never,
    },
  });
  return { n, sent, timers, handlers };
}

t.test('silent without NOTIFY_SOCKET', async (t) => {
  const { n, sent, timers } = harness({ WATCHDOG_USEC: '20000000' });
  n.ready('up');
  n.status('x');
  n.stopping();
  t.equal(n.enabled, false);
  t.equal(n.watchdogIntervalMs, undefined);
  t.same(sent, []);
  t.same(timers, [], 'no watchdog timer');
});

t.test('READY once, STATUS, STOPPING, to the socket systemd gave', async (t) => {
  const { n, sent } = harness({ NOTIFY_SOCKET: '/run/systemd/notify' });
  n.ready('2 paths up');
  n.ready('again');
  n.status('cellular down\nwlan up');
  n.stopping('bye');
  t.same(sent, [
    ['/run/systemd/notify', 'READY=1\nSTATUS=2 paths up'],
    ['/run/systemd/notify', 'STATUS=again'],
    ['/run/systemd/notify', 'STATUS=cellular down wlan up'],
    ['/run/systemd/notify', 'STOPPING=1\nSTATUS=bye'],
  ]);
});

t.test('watchdog pings at half WATCHDOG_USEC, stop() clears the timer', async (t) => {
  const { n, sent, timers } = harness({ NOTIFY_SOCKET: '@abstract', WATCHDOG_USEC: '20000000', WATCHDOG_PID: '4242' });
  t.equal(n.watchdogIntervalMs, 10000);
  t.equal(timers.length, 1);
  t.equal(timers[0]!.ms, 10000);
  t.same(sent.at(-1), ['@abstract', 'WATCHDOG=1'], 'a first ping at once');
  timers[0]!.f();
  timers[0]!.f();
  t.equal(sent.filter(([, m]) => m === 'WATCHDOG=1').length, 3);
  n.stop();
  t.equal(timers[0]!.cleared, true);
});

t.test('watchdog of another pid is not ours', async (t) => {
  t.equal(watchdogInterval({ WATCHDOG_USEC: '1000000', WATCHDOG_PID: '1' }, 2), undefined);
  t.equal(watchdogInterval({ WATCHDOG_USEC: '1000000' }, 2), 500);
  t.equal(watchdogInterval({ WATCHDOG_USEC: 'x' }, 2), undefined);
  t.equal(watchdogInterval({ WATCHDOG_USEC: '0' }, 2), undefined);
});

t.test('a failing send is swallowed (best effort)', async (t) => {
  const n = startNotifier({
    env: { NOTIFY_SOCKET: '/nonexistent/notify' },
    send: () => {
      throw new Error('ENOENT');
    },
  });
  t.doesNotThrow(() => n.ready('x'));
  t.doesNotThrow(() => n.status('y'));
});

t.test('debug hang handler only when asked, removed by stop()', async (t) => {
  const a = harness({ NOTIFY_SOCKET: '/x' });
  t.equal(a.handlers.size, 0);
  const b = harness({ NOTIFY_SOCKET: '/x', DUOCELL_DEBUG_HANG_SIGNAL: 'SIGUSR2' });
  t.ok(b.handlers.has('SIGUSR2'));
  b.n.stop();
  t.equal(b.handlers.size, 0);
  t.equal(notifyMessage({ A: '1', B: 'x\ny' }), 'A=1\nB=x y');
});

// A real datagram through the native addon, received by socat on a unix socket.
const haveSocat = fs.existsSync('/usr/bin/socat');
t.test('real datagrams through the native addon', { skip: haveSocat ? false : 'needs socat' }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-notify-'));
  const sock = path.join(dir, 'notify');
  const rx = spawn('socat', ['-u', `UNIX-RECV:${sock}`, 'STDOUT'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let got = '';
  rx.stdout.on('data', (d: Buffer) => (got += d.toString()));
  t.teardown(() => {
    rx.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  for (let i = 0; i < 100 && !fs.existsSync(sock); i++) await new Promise((r) => setTimeout(r, 20));
  t.ok(fs.existsSync(sock), 'receiver bound');
  const n = startNotifier({ env: { NOTIFY_SOCKET: sock, WATCHDOG_USEC: '60000000' } });
  n.ready('hello');
  n.stop();
  for (let i = 0; i < 100 && !got.includes('STATUS=hello'); i++) await new Promise((r) => setTimeout(r, 20));
  t.match(got, /WATCHDOG=1/);
  t.match(got, /READY=1\nSTATUS=hello/);
});

// GET /api/v1/udp, the duocell_udp_* lines of /metrics (fake deps on a real socket), and
// `duocell udp` (text and --json) over a real control socket.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { udp as udpCommand } from '../../src/cli/commands/views.js';
import { EXIT, type CliContext } from '../../src/cli/command.js';
import { startControlSocket } from '../../src/web/control.js';
import type { UdpView, WebDeps } from '../../src/web/deps.js';
import { startServer } from './web-helpers.js';

const VIEW: UdpView = {
  enabled: true,
  mode: 'active-standby',
  flows: [
    { src: '192.168.77.2', sport: 40000, dst: '198.51.100.9', dport: 7100, uplink: 'wlan', bytes: 4600, packets: 50 },
    { src: '192.168.77.3', sport: 40001, dst: '198.51.100.9', dport: 443, uplink: 'cellular', bytes: 1200, packets: 1 },
    { src: 'fd00:77::2', sport: 5060, dst: '2001:db8::9', dport: 5060, uplink: 'wlan', bytes: 0, packets: 0 },
  ],
  moves: 2,
  flowsMoved: 7,
  capDrops: { '192.168.77.66': 120, 'fd00:77::66': 3 },
  quicBlocked: 9,
  quicLimited: 4,
};

t.test('GET /api/v1/udp: the fake steering view, off, absent, and behind the session gate', async (t) => {
  const h = await startServer();
  t.teardown(() => h.close());
  const c = h.client();
  t.equal((await c.get('/api/v1/udp')).body?.error?.code, 'DC_WEB_NOT_SET_UP', 'no session before set-up');
  await c.setup();
  h.deps.tick();
  const r = await c.get('/api/v1/udp');
  t.equal(r.status, 200);
  t.same(r.body, await h.deps.udp(), 'the deps view, unchanged');
  t.equal(r.body.enabled, true);
  t.ok(r.body.flows.length > 0 && r.body.flows.every((f: { uplink: string; bytes: number }) => typeof f.uplink === 'string' && f.bytes > 0), 'flows with an uplink and bytes');
  h.deps.setUdpEnabled(false);
  t.same((await c.get('/api/v1/udp')).body, { enabled: false, flows: [] }, 'steering off');
  const anon = h.client();
  t.equal((await anon.get('/api/v1/udp')).status, 401, 'another client without a session is refused');
});

t.test('GET /api/v1/udp: the counters, QUIC rejects and QUIC over the reject limits among them, pass the response schema', async (t) => {
  const h = await startServer({}, (d) => Object.assign(d, { udp: async () => structuredClone(VIEW) }));
  t.teardown(() => h.close());
  const c = h.client();
  await c.setup();
  const r = await c.get('/api/v1/udp');
  t.equal(r.status, 200);
  t.same(r.body, VIEW, 'every field of the view, none stripped by the serialiser');
  t.equal(r.body.quicLimited, 4);
  const doc = (await c.get('/api/v1/openapi.json')).body;
  t.equal(doc.components.schemas.Udp?.properties?.quicLimited?.type, 'integer', 'quicLimited in the OpenAPI document');
  t.equal(doc.paths['/api/v1/udp'].get.responses['200'].$ref ?? doc.paths['/api/v1/udp'].get.responses['200'].content?.['application/json']?.schema?.$ref, '#/components/schemas/Udp', 'the route answers with the Udp schema');
});

t.test('GET /api/v1/udp on a box without UDP steering: enabled false, no flows', async (t) => {
  const h = await startServer({}, (d) => {
    const { udp: _drop, ...rest } = d;
    return rest as WebDeps;
  });
  t.teardown(() => h.close());
  const c = h.client();
  await c.setup();
  const r = await c.get('/api/v1/udp');
  t.equal(r.status, 200);
  t.same(r.body, { enabled: false, flows: [] });
  const m = (await c.get('/metrics')).text;
  t.match(m, /^duocell_udp_steering_enabled 0$/m);
  t.notMatch(m, /^duocell_udp_flows\{/m, 'no flow series');
});

t.test('/metrics: UDP flows per uplink, moves, per-device flow-cap drops, QUIC rejects and QUIC over the reject limits', async (t) => {
  const h = await startServer({}, (d) => Object.assign(d, { udp: async () => structuredClone(VIEW) }));
  t.teardown(() => h.close());
  const m = (await h.client().get('/metrics')).text;
  for (const line of [
    'duocell_udp_steering_enabled 1',
    'duocell_udp_flows{uplink="wlan"} 2',
    'duocell_udp_flows{uplink="cellular"} 1',
    'duocell_udp_moves_total 2',
    'duocell_udp_flows_moved_total 7',
    'duocell_udp_flow_cap_drops_total{source="192.168.77.66"} 120',
    'duocell_udp_flow_cap_drops_total{source="fd00:77::66"} 3',
    'duocell_udp_quic_blocked_total 9',
    'duocell_udp_quic_limited_total 4',
  ]) t.ok(m.split('\n').includes(line), line);
});

t.test('/metrics still answers when the UDP source fails, without UDP flow series', async (t) => {
  const h = await startServer({}, (d) =>
    Object.assign(d, {
      udp: async () => {
        throw new Error('conntrack: gone');
      },
    }),
  );
  t.teardown(() => h.close());
  const r = await h.client().get('/metrics');
  t.equal(r.status, 200);
  t.match(r.text, /duocell_path_up\{/);
  t.notMatch(r.text, /^duocell_udp_flows\{/m);
});

function ctx(dir: string, json = false): CliContext & { lines: string[]; errs: string[] } {
  const lines: string[] = [];
  const errs: string[] = [];
  return { io: { out: (l) => lines.push(l), err: (l) => errs.push(l) }, json, env: { DUOCELL_STATE_DIR: dir }, lines, errs };
}

async function withSocket(view: UdpView | undefined, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'udp-cli-'));
  const deps = {
    health: () => ({ status: 'ok', preset: 'cell', version: 'test', uptimeS: 1 }),
    sessions: () => [],
    paths: () => [],
    modem: () => null,
    ...(view === undefined ? {} : { udp: async () => view }),
  } as unknown as Pick<WebDeps, 'health' | 'sessions' | 'paths' | 'modem' | 'pathManager' | 'udp'>;
  const srv = await startControlSocket(deps, path.join(dir, 'control.sock'));
  try {
    await fn(dir);
  } finally {
    await srv.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

t.test('duocell udp --json prints the view unchanged; text: a row per flow and the totals', async (t) => {
  await withSocket(VIEW, async (dir) => {
    const j = ctx(dir, true);
    t.equal(await udpCommand.run([], j), EXIT.OK);
    t.equal(j.lines.length, 1);
    t.same(JSON.parse(j.lines[0]!), VIEW);
    const c = ctx(dir);
    t.equal(await udpCommand.run([], c), EXIT.OK);
    const text = c.lines.join('\n');
    t.match(text, /^SOURCE\s+DESTINATION\s+UPLINK\s+BYTES\s+PACKETS/);
    t.match(text, /192\.168\.77\.3:40001\s+198\.51\.100\.9:443\s+cellular\s+1200\s+1/);
    t.match(text, /UDP steering: on, mode active-standby; flows 3 \(wlan 2, cellular 1\)/);
    t.match(text, /refused by the per-device flow cap: 192\.168\.77\.66 120, fd00:77::66 3; QUIC \(UDP\/443\) rejected: 9, over the reject limits: 4/);
  });
});

t.test('duocell udp: steering off, a box without it, no running service, a bad option', async (t) => {
  await withSocket({ enabled: false, flows: [] }, async (dir) => {
    const c = ctx(dir);
    t.equal(await udpCommand.run([], c), EXIT.OK);
    t.match(c.lines.join('\n'), /UDP steering: off/);
  });
  await withSocket(undefined, async (dir) => {
    const j = ctx(dir, true);
    t.equal(await udpCommand.run([], j), EXIT.OK);
    t.same(JSON.parse(j.lines[0]!), { enabled: false, flows: [] }, 'the control socket answers off');
  });
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'udp-cli-none-'));
  try {
    const j = ctx(empty, true);
    t.equal(await udpCommand.run([], j), EXIT.UNAVAILABLE, 'no service: exit 69');
    t.match(JSON.parse(j.errs[0]!), { error: { code: 'DC_SIM_STATE' } });
    await t.rejects(udpCommand.run(['--bogus'], ctx(empty)), { code: 'DC_USAGE' }, 'a bad option: usage error (the CLI exits 64)');
  } finally {
    fs.rmSync(empty, { recursive: true, force: true });
  }
});

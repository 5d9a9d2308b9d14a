import { EventEmitter } from 'node:events';
import { DuocellError } from '../../src/core/errors.js';
import { memoryKv } from '../../src/web/auth.js';
import type {
  ModemView,
  OtaView,
  PathView,
  PolicyDto,
  PolicyView,
  ProxyView,
  SessionDto,
  SubscriberInput,
  SubscriberView,
  WebDeps,
  WebEventName,
  WlanView,
} from '../../src/web/deps.js';

/**
 * In-memory WebDeps with plausible moving data: two uplinks whose byte counters grow at a
 * varying rate, a handful of sessions that come and go, a registered modem, a WLAN station,
 * subscribers and a policy kept in maps. For developing the page (scripts/web-dev.ts) and for the
 * browser tests; main.ts wires the real services instead.
 */

export interface FakeDeps extends WebDeps {
  /** Advance the simulation by one tick (the timer does this; tests may too). */
  tick(): void;
  /** Multiply the traffic (0 idles the links; the default is 1). */
  setLoad(factor: number): void;
  /** Take a path down or up. */
  setPathState(name: string, state: 'up' | 'down'): void;
  /**
   * UDP steering as GET /api/v1/udp answers it (issue 18's contract): the LAN's UDP flows, each
   * on its uplink, counters growing with the traffic; flows on a path that goes down move to the
   * other. `setUdpEnabled(false)` is a box with steering off.
   */
  udp(): Promise<FakeUdpView>;
  setUdpEnabled(on: boolean): void;
  stop(): void;
}

/** The body of GET /api/v1/udp (issue 18's contract; the UDP API declares its own DTO). */
export interface FakeUdpView {
  enabled: boolean;
  mode?: string;
  flows: Array<{ src: string; sport: number; dst: string; dport: number; uplink: string; bytes: number; packets: number }>;
}

export interface FakeOptions {
  /** Tick interval; 0 means no timer (tests call tick()). Default 1000 ms. */
  tickMs?: number;
  seed?: number;
}

function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    // xorshift32
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x1_0000_0000;
  };
}

export function defaultPolicySpec(): PolicyDto {
  return {
    limits: { maxSessions: 64, maxSubflows: 4, maxSessionsPerServer: 256 },
    allowedAccess: ['cellular', 'wlan'],
    allowedNetworks: [],
    steering: { mode: 'ratio', primary: 'wlan', ratio: { cellular: 30, wlan: 70 } },
  };
}

export function createFakeDeps(o: FakeOptions = {}): FakeDeps {
  const rnd = prng(o.seed ?? 0x5eed);
  const started = Date.now();
  const bus = new EventEmitter();
  bus.setMaxListeners(64);
  let load = 1;
  let t = 0;

  const paths: PathView[] = [
    {
      name: 'cellular',
      access: 'cellular',
      interface: 'wwan0',
      state: 'up',
      addresses: ['10.64.12.7', '2001:db8:c311::7'],
      signal: { rssiDbm: -71, rsrpDbm: -96, rsrq: -10, sinr: 14, bars: 3 },
      bytesTx: 0,
      bytesRx: 0,
      rttMs: 48,
      measure: { target: '198.51.100.1:7', samples: 60, rttMedianMs: 48, rttP95Ms: 60, rttMinMs: 40, jitterMs: 4.2, lossPct: 0 },
    },
    {
      name: 'wlan',
      access: 'wlan',
      interface: 'wlan0',
      state: 'up',
      addresses: ['192.168.50.23', 'fd00:50::23'],
      signal: { rssiDbm: -58, bars: 4 },
      bytesTx: 0,
      bytesRx: 0,
      rttMs: 11,
    },
  ];

  const modem: ModemView = {
    present: true,
    state: 'connected',
    model: 'SIM-LTE Cat 6 (simulated)',
    imei: '356938035643809',
    sim: 'ready',
    operator: 'Example Mobile',
    rat: 'LTE',
    band: 'B3',
    rssiDbm: -71,
    rsrp: -96,
    rsrq: -10,
    sinr: 14,
    apn: 'internet',
    addresses: ['10.64.12.7'],
  };
  const wlan: WlanView = {
    present: true,
    interface: 'wlan0',
    mode: 'station',
    state: 'connected',
    ssid: 'backhaul-5g',
    bssid: '02:00:00:00:01:00',
    frequencyMhz: 5180,
    channel: 36,
    signalDbm: -58,
    txBitrateMbps: 433.3,
    rxBitrateMbps: 390,
  };

  let sessions: SessionDto[] = [];
  let nextSession = 1;
  const newSession = (): SessionDto => {
    const n = nextSession++;
    const mue = rnd() < 0.6;
    const mserver = rnd() < 0.3;
    const combination = `${mue ? 'M' : 'N'}-${mserver ? 'M' : 'N'}` as SessionDto['combination'];
    const client = { address: mue ? '10.10.0.2' : '192.168.1.20', port: 40000 + n, mptcp: mue };
    const server = { address: '198.51.100.10', port: rnd() < 0.5 ? 443 : 80, mptcp: mserver };
    const subflows: SessionDto['subflows'] = [
      { side: 'server', id: 0, local: { address: paths[1]!.addresses[0]!, port: 50000 + n }, remote: { address: '203.0.113.1', port: 5201 }, access: 'wlan', bytesSent: 0, bytesReceived: 0, rttUs: 11000 },
      { side: 'server', id: 1, local: { address: paths[0]!.addresses[0]!, port: 50000 + n }, remote: { address: '203.0.113.1', port: 5201 }, access: 'cellular', bytesSent: 0, bytesReceived: 0, rttUs: 48000 },
    ];
    if (mue) {
      subflows.push({ side: 'client', id: 0, local: { address: '10.10.0.1', port: 1080 }, remote: { address: client.address, port: client.port }, access: 'wlan', bytesSent: 0, bytesReceived: 0, rttUs: 3000 });
    }
    return {
      id: `s${n}`,
      front: mue ? 'convert' : 'transparent',
      client,
      server,
      combination,
      action: mserver ? 'relay-mptcp' : 'convert-via-concentrator',
      startedAt: new Date().toISOString(),
      bytes: { up: 0, down: 0 },
      subflows,
    };
  };
  for (let i = 0; i < 4; i++) sessions.push(newSession());

  let policy: PolicyView = { version: 3, updatedAt: new Date(started).toISOString(), defaults: defaultPolicySpec() };
  const subscribers = new Map<string, SubscriberView>();
  let nextSub = 1;
  const addSub = (input: SubscriberInput): SubscriberView => {
    const now = new Date().toISOString();
    const id = `sub-${nextSub++}`;
    const s: SubscriberView = { ...structuredClone(input), id, createdAt: now, updatedAt: now };
    subscribers.set(id, s);
    return s;
  };
  addSub({ name: 'alice-phone', enabled: true, identifiers: { addresses: ['10.10.0.2'], macs: ['02:00:00:00:00:02'] }, policy: defaultPolicySpec() });
  addSub({ name: 'lan-desktop', enabled: true, identifiers: { addresses: ['192.168.1.0/24'], macs: [] }, policy: null });

  let proxies: ProxyView[] = [
    { id: 'conc-1', name: 'conc-1', address: '203.0.113.1', port: 5124, protocol: 'convert', type: 'off-path', location: 'site-1', priority: 10, weight: 1, healthy: true, rttMs: 22, sessions: 3 },
    { id: 'conc-2', name: 'conc-2', address: '203.0.113.2', port: 1080, protocol: 'socks5', type: 'off-path', location: 'site-2', priority: 20, weight: 1, healthy: false, lastError: 'DC_TIMEOUT: no answer within 600 ms' },
  ];
  let udpEnabled = true;
  const udpFlows: FakeUdpView['flows'] = [
    { src: '10.10.0.2', sport: 50412, dst: '198.51.100.20', dport: 443, uplink: 'wlan', bytes: 0, packets: 0 },
    { src: '10.10.0.2', sport: 50413, dst: '198.51.100.20', dport: 443, uplink: 'cellular', bytes: 0, packets: 0 },
    { src: '192.168.1.20', sport: 5060, dst: '203.0.113.50', dport: 5060, uplink: 'cellular', bytes: 0, packets: 0 },
    { src: 'fd00:1::20', sport: 41000, dst: '2001:db8:53::1', dport: 53, uplink: 'wlan', bytes: 0, packets: 0 },
  ];
  let ota: OtaView = { version: 3, previousVersion: 2, appliedAt: new Date(started).toISOString(), lastCheck: null, lastError: null, source: 'factory' };
  const refusals: Record<string, number> = { 'session-limit': 0, 'subflow-limit': 0, 'origin-not-allowed': 0 };

  const emit = (name: WebEventName): void => void bus.emit(name);

  const tickS = (o.tickMs ?? 1000) > 0 ? (o.tickMs ?? 1000) / 1000 : 1;
  const tick = (): void => {
    t += 1;
    for (const [i, p] of paths.entries()) {
      if (p.state !== 'up') continue;
      // Mbit/s: WLAN ~ 40 ± 15, cellular ~ 15 ± 6, slowly varying with noise.
      const base = i === 0 ? 15 + 6 * Math.sin(t / 9) : 40 + 15 * Math.sin(t / 13 + 1);
      const mbps = Math.max(0, base * (0.85 + 0.3 * rnd())) * load;
      const rx = Math.round(((mbps * 1e6) / 8) * tickS);
      p.bytesRx += rx;
      p.bytesTx += Math.round(rx * (0.05 + 0.05 * rnd()));
      p.rttMs = Math.round((i === 0 ? 45 : 10) + rnd() * (i === 0 ? 20 : 6));
      const med = p.rttMs;
      p.measure = { target: i === 0 ? '198.51.100.1:7' : '192.168.50.1:7', samples: 60, rttMedianMs: med, rttP95Ms: med + (i === 0 ? 12 : 4), rttMinMs: med - (i === 0 ? 8 : 3), jitterMs: i === 0 ? 4.2 : 1.3, lossPct: i === 0 ? 0 : 1.7 };
      if (p.signal !== undefined && i === 0) {
        p.signal.rsrpDbm = Math.round(-96 + 4 * Math.sin(t / 20));
        p.signal.bars = p.signal.rsrpDbm > -90 ? 4 : p.signal.rsrpDbm > -100 ? 3 : 2;
        modem.rsrp = p.signal.rsrpDbm;
      }
    }
    for (const s of sessions) {
      const down = Math.round(200_000 * rnd() * load);
      s.bytes.down += down;
      s.bytes.up += Math.round(down / 20);
      for (const f of s.subflows) {
        f.bytesReceived += Math.round(down * (f.access === 'cellular' ? 0.3 : 0.7));
        f.bytesSent += Math.round(down / 40);
      }
    }
    for (const f of udpFlows) {
      const up = paths.find((p) => p.name === f.uplink)?.state === 'up';
      if (!up) f.uplink = paths.find((p) => p.state === 'up')?.name ?? f.uplink;
      const n = Math.round(40 * rnd() * load);
      f.packets += n;
      f.bytes += n * (f.dport === 443 ? 1200 : 160);
    }
    if (rnd() < 0.15 && sessions.length > 2) sessions = sessions.slice(1);
    if (rnd() < 0.2 && sessions.length < 12) sessions.push(newSession());
    if (rnd() < 0.05) refusals['subflow-limit']! += 1;
    emit('paths');
    emit('sessions');
    if (t % 5 === 0) emit('modem');
  };

  const timer = (o.tickMs ?? 1000) > 0 ? setInterval(tick, o.tickMs ?? 1000) : undefined;
  timer?.unref();

  const notFound = (id: string) => new DuocellError('DC_STORE_NOT_FOUND', `no subscriber '${id}'`);

  return {
    kv: memoryKv(),
    tick,
    setLoad(f) {
      load = f;
    },
    setPathState(name, state) {
      const p = paths.find((x) => x.name === name);
      if (p === undefined) throw new DuocellError('DC_PATH_UNKNOWN', `no path '${name}'`);
      p.state = state;
      emit('paths');
    },
    udp: async () => (udpEnabled ? { enabled: true, mode: 'load-balancing', flows: structuredClone(udpFlows) } : { enabled: false, flows: [] }),
    setUdpEnabled(on) {
      udpEnabled = on;
    },
    stop() {
      if (timer !== undefined) clearInterval(timer);
      bus.removeAllListeners();
    },
    health: () => ({
      status: paths.every((p) => p.state === 'up') ? 'ok' : 'degraded',
      preset: 'cell',
      version: '0.1.0-fake',
      uptimeS: Math.round((Date.now() - started) / 1000),
      checks: Object.fromEntries([...paths.map((p) => [`path:${p.name}`, p.state === 'up'] as const), ['store', true], ['proxy', true]]),
    }),
    sessions: () => structuredClone(sessions),
    paths: () => structuredClone(paths),
    modem: () => ({ ...modem }),
    wlan: () => ({ ...wlan }),
    proxies: (): ProxyView[] => structuredClone(proxies),
    setProxies: async (list: unknown): Promise<ProxyView[]> => {
      // the page's editor against a fake: names unique, else refused whole (the store checks the rest)
      const items = list as Array<Record<string, unknown>>;
      const names = items.map((p) => String(p.name));
      if (new Set(names).size !== names.length) throw new DuocellError('DC_STORE_INVALID', 'proxies: duplicate name');
      proxies = items.map((p) => ({ ...(p as unknown as ProxyView), id: String(p.name), priority: Number(p.priority ?? 0), healthy: true, sessions: 0 }));
      return structuredClone(proxies);
    },
    refusals: () => ({ ...refusals }),
    pathManager: async () => ({
      mode: 'userspace',
      endpoints: {},
      connections: [],
      stats: { subflowsRefused: { 'subflow limit 4': refusals['subflow-limit']!, 'origin 198.51.100.7 outside allowed networks': refusals['origin-not-allowed']! }, subflowsOpened: {}, subflowsClosed: {} },
      steering: {
        groups: [{ group: 'alice-phone', mode: 'ratio', target: 30, share: 31.4, windowBytes: 4_000_000, level: 3, connections: 4, placements: { both: 1, cellular: 0, wlan: 3, fixed: 0 } }],
        stats: { ticks: 0, commands: 0 },
      },
      limits: { perUe: {}, perNServer: {}, refused: { perUe: refusals['session-limit']!, perNServer: 0 } },
    }),
    subscribers: {
      async list() {
        return [...subscribers.values()].map((s) => structuredClone(s));
      },
      async get(id) {
        const s = subscribers.get(id);
        if (s === undefined) throw notFound(id);
        return structuredClone(s);
      },
      async create(input) {
        if ([...subscribers.values()].some((s) => s.name === input.name)) {
          throw new DuocellError('DC_STORE_CONSTRAINT', `a subscriber named '${input.name}' exists`);
        }
        const s = addSub(input);
        emit('subscribers');
        return structuredClone(s);
      },
      async update(id, input) {
        const s = subscribers.get(id);
        if (s === undefined) throw notFound(id);
        const u: SubscriberView = { ...s, ...structuredClone(input), id, updatedAt: new Date().toISOString() };
        subscribers.set(id, u);
        emit('subscribers');
        return structuredClone(u);
      },
      async remove(id) {
        if (!subscribers.delete(id)) throw notFound(id);
        emit('subscribers');
      },
    },
    policy: {
      async get() {
        return structuredClone(policy);
      },
      async set(defaults) {
        policy = { version: policy.version, updatedAt: new Date().toISOString(), defaults: structuredClone(defaults) };
        emit('policy');
        return structuredClone(policy);
      },
    },
    ota: {
      status: () => ({ ...ota }),
      async pushBundle(bytes) {
        // Stand-in for the OTA layer: a JSON document with a numeric version, newer than ours.
        let doc: unknown;
        try {
          doc = JSON.parse(bytes.toString('utf8'));
        } catch {
          ota = { ...ota, lastError: { code: 'DC_OTA_MALFORMED', message: 'not JSON' } };
          throw new DuocellError('DC_OTA_MALFORMED', 'the bundle is not JSON');
        }
        const v = doc !== null && typeof doc === 'object' ? (doc as { version?: unknown }).version : undefined;
        if (typeof v !== 'number' || !Number.isInteger(v)) throw new DuocellError('DC_OTA_MALFORMED', 'the bundle has no integer version');
        if (ota.version !== null && v <= ota.version) {
          ota = { ...ota, lastError: { code: 'DC_OTA_ROLLBACK', message: `version ${v} is not newer than ${ota.version}` } };
          throw new DuocellError('DC_OTA_ROLLBACK', `version ${v} is not newer than ${ota.version}`);
        }
        ota = { version: v, previousVersion: ota.version, appliedAt: new Date().toISOString(), lastCheck: ota.lastCheck, lastError: null, source: 'push' };
        policy = { ...policy, version: v };
        emit('ota');
        return { ...ota };
      },
    },
    events: {
      on(name, fn) {
        bus.on(name, fn);
        return () => void bus.off(name, fn);
      },
    },
  };
}

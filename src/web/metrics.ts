import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { logger } from '../core/logger.js';
import type { WebDeps } from './deps.js';
import type { ThroughputSampler } from './live.js';

const log = logger('duocell:web:metrics');

/**
 * /metrics in Prometheus text. One Registry per web server (never prom-client's global one, so
 * several servers in one test process do not collide). Values are read from WebDeps at scrape
 * time; counters that deps report as running totals are advanced by their increase since the
 * last scrape (a total that went backwards counts as a reset).
 */

export interface WebMetrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  loginFailures: Counter<never>;
  text(): Promise<string>;
  contentType: string;
}

/** Advances a Counter to follow an externally kept running total. */
class TotalFollower<L extends string> {
  readonly #last = new Map<string, number>();
  constructor(readonly counter: Counter<L>) {}
  set(labels: Record<L, string>, total: number): void {
    if (!Number.isFinite(total) || total < 0) return;
    const key = JSON.stringify(labels);
    const last = this.#last.get(key);
    const inc = last === undefined || total < last ? total : total - last;
    this.#last.set(key, total);
    if (inc > 0) this.counter.inc(labels as never, inc);
    else if (last === undefined) this.counter.inc(labels as never, 0);
  }
}

export function createMetrics(deps: WebDeps, sampler: ThroughputSampler): WebMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const guard = (what: string, fn: () => void): void => {
    try {
      fn();
    } catch (e) {
      log.warn({ err: e, what }, 'reading a metric source failed');
    }
  };

  const pathLabels = ['path', 'access', 'interface'] as const;
  const pathUp = new Gauge({ name: 'duocell_path_up', help: 'the path (uplink) is up: 1, down: 0', labelNames: pathLabels, registers: [registry] });
  const pathBytes = new TotalFollower(
    new Counter({
      name: 'duocell_path_bytes_total',
      help: 'bytes carried by the path since its interface came up',
      labelNames: ['path', 'access', 'direction'] as const,
      registers: [registry],
    }),
  );
  const pathThroughput = new Gauge({
    name: 'duocell_path_throughput_bits_per_second',
    help: 'throughput of the path over the last sample interval',
    labelNames: ['path', 'access', 'direction'] as const,
    registers: [registry],
  });
  const pathRtt = new Gauge({ name: 'duocell_path_rtt_seconds', help: 'round-trip time measured on the path', labelNames: ['path', 'access'] as const, registers: [registry] });
  const pathProbeRtt = new Gauge({ name: 'duocell_path_probe_rtt_seconds', help: 'RTT of the probes sent from the path over the sliding window, by quantile', labelNames: ['path', 'access', 'quantile'] as const, registers: [registry] });
  const pathJitter = new Gauge({ name: 'duocell_path_jitter_seconds', help: 'RTT jitter of the probes sent from the path (mean difference of consecutive RTTs)', labelNames: ['path', 'access'] as const, registers: [registry] });
  const pathLoss = new Gauge({ name: 'duocell_path_loss_ratio', help: 'share of the probes sent from the path that got no reply, over the sliding window', labelNames: ['path', 'access'] as const, registers: [registry] });
  const pathSignal = new Gauge({
    name: 'duocell_path_signal',
    help: 'radio signal of the path: rssi/rsrp in dBm, rsrq/sinr in dB',
    labelNames: ['path', 'access', 'kind'] as const,
    registers: [registry],
  });
  const pathBars = new Gauge({ name: 'duocell_path_signal_bars', help: 'signal quality 0..4', labelNames: ['path', 'access'] as const, registers: [registry] });

  const sessions = new Gauge({ name: 'duocell_sessions', help: 'open proxy sessions by M/N combination (client-server)', labelNames: ['combination'] as const, registers: [registry] });
  const sessionsFront = new Gauge({ name: 'duocell_sessions_by_front', help: 'open proxy sessions by front (how they reached the proxy)', labelNames: ['front'] as const, registers: [registry] });
  const subflows = new Gauge({ name: 'duocell_subflows', help: 'subflows of open sessions by access type', labelNames: ['access'] as const, registers: [registry] });
  const targetForbidden = new TotalFollower(
    new Counter({
      name: 'duocell_target_forbidden_total',
      help: 'proxy sessions refused because of their target (the box itself, a listener port, a special-purpose range), by front and reason',
      labelNames: ['code', 'front', 'reason'] as const,
      registers: [registry],
    }),
  );
  const refusals = new TotalFollower(
    new Counter({ name: 'duocell_refusals_total', help: 'sessions or subflows refused, by reason', labelNames: ['reason'] as const, registers: [registry] }),
  );
  const fastPath = new TotalFollower(
    new Counter({
      name: 'duocell_proxy_fast_path_total',
      help: 'connections of fast-path listeners since start: relayed by the fast path (fast) or handed to the JS path (js: proxy selection off-path, SNI rules)',
      labelNames: ['path'] as const,
      registers: [registry],
    }),
  );
  const sniOutcomes = new TotalFollower(
    new Counter({
      name: 'duocell_sni_outcomes_total',
      help: "the transparent front's ClientHello reads where an SNI rule applies, by outcome (sni, no-sni, ended, or a DC_TLS_… code)",
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
  );
  const otaVersion = new Gauge({ name: 'duocell_ota_policy_version', help: 'version of the policy bundle in force (-1: none)', registers: [registry] });
  const otaError = new Gauge({ name: 'duocell_ota_last_error', help: '1 while the last OTA check or push failed', labelNames: ['code'] as const, registers: [registry] });
  const modemState = new Gauge({ name: 'duocell_modem_state', help: '1 for the modem state the box is in now', labelNames: ['state'] as const, registers: [registry] });
  const modemSignal = new Gauge({ name: 'duocell_modem_signal', help: 'modem radio: rssi/rsrp in dBm, rsrq/sinr in dB', labelNames: ['kind'] as const, registers: [registry] });
  const health = new Gauge({ name: 'duocell_health_check', help: 'health checks: 1 passing, 0 failing', labelNames: ['check'] as const, registers: [registry] });
  const info = new Gauge({ name: 'duocell_build_info', help: 'version and preset of the running duocell', labelNames: ['version', 'preset'] as const, registers: [registry] });

  const httpRequests = new Counter({
    name: 'duocell_web_http_requests_total',
    help: 'HTTP requests answered by the web server',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const loginFailures = new Counter({ name: 'duocell_web_login_failures_total', help: 'failed admin logins', registers: [registry] });

  // One collect pass for all the deps-backed metrics, run before each scrape.
  const collect = (): void => {
    pathUp.reset();
    pathThroughput.reset();
    pathRtt.reset();
    pathProbeRtt.reset();
    pathJitter.reset();
    pathLoss.reset();
    pathSignal.reset();
    pathBars.reset();
    guard('paths', () => {
      for (const p of deps.paths()) {
        pathUp.set({ path: p.name, access: p.access, interface: p.interface }, p.state === 'up' ? 1 : 0);
        pathBytes.set({ path: p.name, access: p.access, direction: 'tx' }, p.bytesTx);
        pathBytes.set({ path: p.name, access: p.access, direction: 'rx' }, p.bytesRx);
        const r = sampler.latest(p.name);
        if (r !== undefined) {
          pathThroughput.set({ path: p.name, access: p.access, direction: 'tx' }, r.txBps);
          pathThroughput.set({ path: p.name, access: p.access, direction: 'rx' }, r.rxBps);
        }
        if (p.rttMs !== undefined) pathRtt.set({ path: p.name, access: p.access }, p.rttMs / 1000);
        const m = p.measure;
        if (m?.rttMedianMs !== undefined) pathProbeRtt.set({ path: p.name, access: p.access, quantile: '0.5' }, m.rttMedianMs / 1000);
        if (m?.rttP95Ms !== undefined) pathProbeRtt.set({ path: p.name, access: p.access, quantile: '0.95' }, m.rttP95Ms / 1000);
        if (m?.jitterMs !== undefined) pathJitter.set({ path: p.name, access: p.access }, m.jitterMs / 1000);
        if (m?.lossPct !== undefined) pathLoss.set({ path: p.name, access: p.access }, m.lossPct / 100);
        if (p.signal !== undefined) {
          pathBars.set({ path: p.name, access: p.access }, p.signal.bars);
          for (const kind of ['rssiDbm', 'rsrpDbm', 'rsrq', 'sinr'] as const) {
            const v = p.signal[kind];
            if (v !== undefined) pathSignal.set({ path: p.name, access: p.access, kind: kind === 'rssiDbm' ? 'rssi' : kind === 'rsrpDbm' ? 'rsrp' : kind }, v);
          }
        }
      }
    });
    sessions.reset();
    sessionsFront.reset();
    subflows.reset();
    guard('sessions', () => {
      for (const c of ['M-N', 'M-M', 'N-N', 'N-M']) sessions.set({ combination: c }, 0);
      for (const a of ['cellular', 'wlan', 'lan', 'unknown']) subflows.set({ access: a }, 0);
      for (const s of deps.sessions()) {
        sessions.inc({ combination: s.combination });
        sessionsFront.inc({ front: s.front });
        for (const f of s.subflows) subflows.inc({ access: f.access });
      }
    });
    guard('refusals', () => {
      for (const [reason, n] of Object.entries(deps.refusals?.() ?? {})) refusals.set({ reason }, n);
    });
    guard('target refusals', () => {
      for (const [key, n] of Object.entries(deps.targetRefusals?.() ?? {})) {
        const [front = 'unknown', reason = 'unknown'] = key.split(' ');
        targetForbidden.set({ code: 'DC_TARGET_FORBIDDEN', front, reason }, n);
      }
    });
    guard('fast path', () => {
      const f = deps.fastPath?.();
      if (f === undefined) return;
      fastPath.set({ path: 'fast' }, f.fast);
      fastPath.set({ path: 'js' }, f.handedOver);
    });
    guard('sni outcomes', () => {
      for (const [outcome, n] of Object.entries(deps.sniOutcomes?.() ?? {})) sniOutcomes.set({ outcome }, n);
    });
    otaError.reset();
    guard('ota', () => {
      const o = deps.ota.status();
      otaVersion.set(o.version ?? -1);
      if (o.lastError !== null) otaError.set({ code: o.lastError.code }, 1);
    });
    modemState.reset();
    modemSignal.reset();
    guard('modem', () => {
      const m = deps.modem?.();
      if (m === undefined) return;
      modemState.set({ state: m.present ? m.state : 'absent' }, 1);
      for (const kind of ['rssiDbm', 'rsrp', 'rsrq', 'sinr'] as const) {
        const v = m[kind];
        if (v !== undefined) modemSignal.set({ kind: kind === 'rssiDbm' ? 'rssi' : kind }, v);
      }
    });
    health.reset();
    info.reset();
    guard('health', () => {
      const h = deps.health();
      for (const [check, ok] of Object.entries(h.checks)) health.set({ check }, ok ? 1 : 0);
      info.set({ version: h.version, preset: h.preset }, 1);
    });
  };

  // UDP steering (GET /api/v1/udp's source): on/off, flows per uplink now, moves
  const udpEnabled = new Gauge({ name: 'duocell_udp_steering_enabled', help: 'UDP steering per flow is active: 1, off: 0', registers: [registry] });
  const udpFlows = new Gauge({ name: 'duocell_udp_flows', help: 'steered UDP flows (conntrack entries) per uplink', labelNames: ['uplink'] as const, registers: [registry] });
  const udpMoves = new Gauge({ name: 'duocell_udp_moves_total', help: 'times UDP flows were moved off an uplink (it died or left policy)', registers: [registry] });
  const udpMoved = new Gauge({ name: 'duocell_udp_flows_moved_total', help: 'UDP flows moved off an uplink', registers: [registry] });
  const udpCapDrops = new Gauge({ name: 'duocell_udp_flow_cap_drops_total', help: 'new UDP flows refused by the per-device flow cap (policy), by source address', labelNames: ['source'] as const, registers: [registry] });
  const udpQuicBlocked = new Gauge({ name: 'duocell_udp_quic_blocked_total', help: 'UDP/443 packets answered with ICMP port-unreachable (policy quic: block)', registers: [registry] });
  const udpQuicLimited = new Gauge({ name: 'duocell_udp_quic_limited_total', help: 'UDP/443 packets of quic: block dropped without a reject: over the per-source or total reject limit', registers: [registry] });
  const collectUdp = async (): Promise<void> => {
    udpFlows.reset();
    udpCapDrops.reset();
    if (deps.udp === undefined) {
      udpEnabled.set(0);
      return;
    }
    try {
      const u = await deps.udp();
      udpEnabled.set(u.enabled ? 1 : 0);
      const per = new Map<string, number>();
      for (const f of u.flows) per.set(f.uplink, (per.get(f.uplink) ?? 0) + 1);
      for (const [uplink, n] of per) udpFlows.set({ uplink }, n);
      udpMoves.set(u.moves ?? 0);
      udpMoved.set(u.flowsMoved ?? 0);
      for (const [source, n] of Object.entries(u.capDrops ?? {})) udpCapDrops.set({ source }, n);
      udpQuicBlocked.set(u.quicBlocked ?? 0);
      udpQuicLimited.set(u.quicLimited ?? 0);
    } catch (e) {
      log.warn({ err: (e as Error).message, part: 'udp' }, 'metrics: a source failed');
    }
  };

  return {
    registry,
    httpRequests,
    loginFailures,
    contentType: registry.contentType,
    async text() {
      collect();
      await collectUdp();
      return registry.metrics();
    },
  };
}

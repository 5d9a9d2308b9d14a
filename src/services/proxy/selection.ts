import { DuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import { parsePrefix, prefixContains, type Prefix } from '../../core/net.js';
import { normalizeRule, serverNameMatches } from '../../protocols/tls/index.js';
import type { ProxySpec } from '../../store/types.js';

/**
 * Proxy selection among candidates (draft-deng-mptcp-proxy "proxy selection", "no single point
 * of failure"): which candidate carries a new session, and how healthy each one is.
 *
 *   candidates (store) ──► eligible for (policy, destination)  ──► rank ──► choice
 *                               apps: port + prefix (+ TLS SNI)  healthy first
 *                               policies: subscriber policy      app-specific before generic
 *                                                                priority (high first)
 *                                                                RTT (near-equal ones tie)
 *                                                                weight (random among ties)
 *
 * Health, per candidate:
 *   probe ok        ──► probeFailures = 0, RTT smoothed, healthy (unless sessions keep failing)
 *   probe failed    ──► probeFailures++ ; ≥ failAfter         ──► unhealthy
 *   session failed  ──► sessionFailures++ ; ≥ sessionFailAfter ──► unhealthy
 *   session ok      ──► sessionFailures = 0
 * An unhealthy candidate is chosen only when no healthy one is eligible (better a try than a
 * certain refusal). A candidate never probed counts as healthy with an unknown RTT.
 * On-path candidates are the cell itself: never probed, always healthy, RTT 0.
 *
 * Probes are driven by a timer: a healthy off-path candidate is probed every `intervalMs`
 * (default 2 s: a concentrator serving 1,000 cells with 3 candidates each sees ~500 probe
 * connections/s, where 300 ms meant ~3,300), one that failed its last probe or is unhealthy
 * every `recoverIntervalMs` (default 500 ms), at most one in flight each. A dead candidate is
 * noticed first by the sessions that fail on it (sessionFailAfter; each such session is retried
 * on the next candidate, so no client sees it), and when idle within about
 * interval + failAfter × (recoverInterval + timeout); one that comes back within recoverInterval. The probe itself is injected (the wiring uses the RFC 8803
 * Info exchange for Convert candidates, the greeting and credentials for SOCKS5 ones); nothing here does I/O.
 */

const log = logger('duocell:proxy:selection');

export type Candidate = Required<ProxySpec>;

export interface SelectionOptions {
  /** Measure one candidate: resolves with its RTT in ms, rejects when it does not answer. */
  probe: (c: Candidate, signal: AbortSignal) => Promise<number>;
  /** Candidates in force (re-read on every probe round). */
  candidates: () => Candidate[];
  /** Probe period of a healthy candidate (default 2000 ms). */
  intervalMs?: number;
  /** Probe period of a candidate that failed its last probe or is unhealthy (default 500 ms). */
  recoverIntervalMs?: number;
  timeoutMs?: number;
  /** Failed probes in a row before a candidate is unhealthy (K). */
  failAfter?: number;
  /** Failed sessions in a row before a candidate is unhealthy. */
  sessionFailAfter?: number;
  /** RTTs within max(rttSlackMs, 20 %) of the best are equals (weight decides). */
  rttSlackMs?: number;
  random?: () => number;
  now?: () => number;
}

export interface Health {
  healthy: boolean;
  rttMs: number | undefined;
  probeFailures: number;
  sessionFailures: number;
  sessions: number;
  lastError: string | null;
  /** When it last turned unhealthy (epoch ms), for failover measurements. */
  downAt: number | null;
}

export interface Choice {
  candidate: Candidate;
  /** The application that matched, or null (a generic candidate). */
  app: string | null;
  healthy: boolean;
}

export interface SelectRequest {
  /** The subscriber policy in force for the client (null: none known). */
  policy: string | null;
  /** Destination address (numeric) and port. */
  address: string;
  port: number;
  /**
   * The server name of the client's TLS ClientHello, when the transparent front read one
   * (lower case). An application with `sni` names matches only a session that has one of them.
   */
  sni?: string;
}

interface Compiled {
  c: Candidate;
  apps: Array<{ name: string; ports: Set<number>; prefixes: Prefix[]; sni: string[] }>;
}

export class ProxySelector {
  readonly #o: Required<Omit<SelectionOptions, 'random' | 'now'>> & { random: () => number; now: () => number };
  readonly #health = new Map<string, Health>();
  readonly #inFlight = new Set<string>();
  readonly #lastProbe = new Map<string, number>();
  #compiled: Compiled[] = [];
  /** Every port some application with SNI names lists. */
  #sniPorts = new Set<number>();
  #key = '';
  #timer: NodeJS.Timeout | undefined;
  readonly #aborts = new Set<AbortController>();

  constructor(o: SelectionOptions) {
    this.#o = {
      intervalMs: 2000,
      recoverIntervalMs: 500,
      timeoutMs: 600,
      failAfter: 2,
      sessionFailAfter: 2,
      rttSlackMs: 5,
      random: Math.random,
      now: Date.now,
      ...o,
    };
    this.reload();
  }

  /** Re-read the candidates (after an edit); health of candidates that stay is kept. */
  reload(): void {
    const list = this.#o.candidates();
    const key = JSON.stringify(list);
    if (key === this.#key) return;
    this.#key = key;
    this.#compiled = list.map((c) => ({
      c,
      apps: c.apps.map((a) => ({
        name: a.name,
        ports: new Set(a.ports ?? []),
        prefixes: (a.prefixes ?? []).map((p) => {
          const pp = parsePrefix(p);
          if (pp === undefined) throw new DuocellError('DC_CONFIG_INVALID', `proxy ${c.name}: bad prefix ${p}`);
          return pp;
        }),
        sni: (a.sni ?? []).map((n) => {
          const r = normalizeRule(n);
          if (r === undefined) throw new DuocellError('DC_CONFIG_INVALID', `proxy ${c.name}: bad SNI name ${n}`);
          return r;
        }),
      })),
    }));
    this.#sniPorts = new Set(this.#compiled.flatMap(({ apps }) => apps.filter((a) => a.sni.length > 0).flatMap((a) => [...a.ports])));
    const names = new Set(list.map((c) => c.name));
    for (const n of [...this.#health.keys()]) if (!names.has(n)) this.#health.delete(n);
    for (const c of list) if (!this.#health.has(c.name)) this.#health.set(c.name, fresh(c));
  }

  get size(): number {
    return this.#compiled.length;
  }

  /** Whether some application with `sni` names lists `port` (one set lookup: the cheap first test). */
  sniPort(port: number): boolean {
    return this.#sniPorts.has(port);
  }

  /**
   * Whether a new session of a client with `policy` to `port` could be placed by a TLS server
   * name: some enabled candidate serving that policy has an application with `sni` names that
   * lists this port. Only then does the transparent front wait for the ClientHello.
   */
  needsSni(policy: string | null, port: number): boolean {
    if (!this.#sniPorts.has(port)) return false; // the common case: one set lookup
    for (const { c, apps } of this.#compiled) {
      if (!c.enabled || (c.type === 'off-path' && c.protocol !== 'convert') || (c.policies.length > 0 && (policy === null || !c.policies.includes(policy)))) continue;
      if (apps.some((a) => a.sni.length > 0 && a.ports.has(port))) return true;
    }
    return false;
  }

  health(name: string): Health | undefined {
    return this.#health.get(name);
  }

  list(): Array<{ candidate: Candidate; health: Health }> {
    return this.#compiled.map(({ c }) => ({ candidate: c, health: { ...this.#health.get(c.name)! } }));
  }

  /**
   * The candidate for a new session, or undefined when none is eligible (the listener's own
   * connector then applies). `exclude`: names already tried for this session.
   */
  choose(req: SelectRequest, exclude: ReadonlySet<string> = new Set()): Choice | undefined {
    let best: Array<{ c: Candidate; app: string | null; h: Health }> = [];
    let bestRank: number[] | undefined;
    for (const { c, apps } of this.#compiled) {
      if (!c.enabled || exclude.has(c.name)) continue;
      if (c.policies.length > 0 && (req.policy === null || !c.policies.includes(req.policy))) continue;
      let app: string | null = null;
      if (apps.length > 0) {
        const hit = apps.find(
          (a) =>
            (a.ports.size === 0 || a.ports.has(req.port)) &&
            (a.prefixes.length === 0 || a.prefixes.some((p) => prefixContains(p, req.address))) &&
            (a.sni.length === 0 || (req.sni !== undefined && a.sni.some((r) => serverNameMatches(r, req.sni!)))),
        );
        if (hit === undefined) continue;
        app = hit.name;
      }
      const h = this.#health.get(c.name)!;
      const rank = [h.healthy ? 1 : 0, app === null ? 0 : 1, c.priority];
      const cmp = bestRank === undefined ? 1 : compare(rank, bestRank);
      if (cmp > 0) {
        bestRank = rank;
        best = [{ c, app, h }];
      } else if (cmp === 0) best.push({ c, app, h });
    }
    if (best.length === 0) return undefined;
    // RTT: the nearest, and those near enough to it; weight splits among them.
    const rtts = best.map((b) => b.h.rttMs ?? Infinity);
    const min = Math.min(...rtts);
    const near = Number.isFinite(min) ? best.filter((_, i) => rtts[i]! <= min + Math.max(this.#o.rttSlackMs, min * 0.2)) : best;
    const total = near.reduce((s, b) => s + b.c.weight, 0);
    let pick = near[0]!;
    if (total > 0) {
      let r = this.#o.random() * total;
      for (const b of near) {
        r -= b.c.weight;
        if (r < 0) {
          pick = b;
          break;
        }
      }
    }
    return { candidate: pick.c, app: pick.app, healthy: pick.h.healthy };
  }

  /** A session was put on a candidate: count it until done(ok) is called. */
  began(name: string): void {
    const h = this.#health.get(name);
    if (h !== undefined) h.sessions++;
  }

  ended(name: string): void {
    const h = this.#health.get(name);
    if (h !== undefined && h.sessions > 0) h.sessions--;
  }

  /** The outcome of reaching a candidate for a session (connect + Convert reply). */
  sessionResult(name: string, ok: boolean, err?: string): void {
    const h = this.#health.get(name);
    if (h === undefined) return;
    if (ok) {
      h.sessionFailures = 0;
      return;
    }
    h.sessionFailures++;
    h.lastError = err ?? 'session failed';
    if (h.sessionFailures >= this.#o.sessionFailAfter) this.#down(name, h, `${h.sessionFailures} failed sessions in a row`);
  }

  probeResult(name: string, rttMs: number | undefined, err?: string): void {
    const h = this.#health.get(name);
    if (h === undefined) return;
    if (rttMs !== undefined) {
      h.probeFailures = 0;
      h.rttMs = h.rttMs === undefined ? rttMs : h.rttMs * 0.7 + rttMs * 0.3;
      if (!h.healthy) {
        h.healthy = true;
        h.sessionFailures = 0;
        h.downAt = null;
        log.info({ code: 'DC_PROXY_CANDIDATE_UP', proxy: name, rttMs: Math.round(rttMs) }, 'candidate healthy again');
      }
      return;
    }
    h.probeFailures++;
    h.lastError = err ?? 'probe failed';
    if (h.probeFailures >= this.#o.failAfter) this.#down(name, h, `${h.probeFailures} failed probes in a row: ${h.lastError}`);
  }

  #down(name: string, h: Health, why: string): void {
    if (!h.healthy) return;
    h.healthy = false;
    h.downAt = this.#o.now();
    log.warn({ code: 'DC_PROXY_CANDIDATE_DOWN', proxy: name, why }, 'candidate unhealthy: new sessions go elsewhere');
  }

  /** Start probing (one round now, then every interval). */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#round();
    this.#timer = setInterval(() => this.#round(), this.#tickMs());
    this.#timer.unref();
  }

  #tickMs(): number {
    return Math.max(10, Math.min(this.#o.intervalMs, this.#o.recoverIntervalMs));
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    for (const a of this.#aborts) a.abort();
    this.#aborts.clear();
  }

  #round(): void {
    try {
      this.reload();
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'cannot re-read candidates');
    }
    for (const { c } of this.#compiled) {
      if (!c.enabled || c.type === 'on-path' || this.#inFlight.has(c.name)) continue;
      const h = this.#health.get(c.name);
      const every = h !== undefined && (!h.healthy || h.probeFailures > 0) ? this.#o.recoverIntervalMs : this.#o.intervalMs;
      const last = this.#lastProbe.get(c.name);
      if (last !== undefined && this.#o.now() - last < every - this.#tickMs() / 2) continue;
      this.#lastProbe.set(c.name, this.#o.now());
      void this.probeOnce(c);
    }
  }

  /** One probe of one candidate, with the timeout; its result is recorded. */
  async probeOnce(c: Candidate): Promise<void> {
    this.#inFlight.add(c.name);
    const ac = new AbortController();
    this.#aborts.add(ac);
    const timer = setTimeout(() => ac.abort(), this.#o.timeoutMs);
    try {
      const rtt = await Promise.race([
        this.#o.probe(c, ac.signal),
        new Promise<never>((_, reject) => ac.signal.addEventListener('abort', () => reject(new DuocellError('DC_TIMEOUT', `no answer within ${this.#o.timeoutMs} ms`)), { once: true })),
      ]);
      this.probeResult(c.name, rtt);
    } catch (e) {
      this.probeResult(c.name, undefined, (e as Error).message);
    } finally {
      clearTimeout(timer);
      ac.abort();
      this.#aborts.delete(ac);
      this.#inFlight.delete(c.name);
    }
  }
}

function fresh(c: Candidate): Health {
  return { healthy: true, rttMs: c.type === 'on-path' ? 0 : undefined, probeFailures: 0, sessionFailures: 0, sessions: 0, lastError: null, downAt: null };
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

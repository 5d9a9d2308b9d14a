import { logger } from '../../core/logger.js';
import { prioritySaturated } from '../pm/steer/index.js';
import type { AccessType, PathEvent, PathView } from '../paths/types.js';
import { buildUdpRuleset, validateUdpSteering, type UdpDecision, type UdpGroup, type UdpUplink } from './ruleset.js';

export { buildUdpRuleset, type UdpDecision } from './ruleset.js';

/**
 * UDP steering per flow for the LAN's devices (ATSSS-LL's steering modes, on conntrack):
 *
 *   paths (up/down), policy (mode, allowed access, preferred, ratio), RTT (path meter)
 *        └─► decide per policy group ─► ruleset (ruleset.ts) ─► nft (atomic, only if changed)
 *                                    └─► uplinks a group may no longer use ─► delete their flows'
 *                                        conntrack entries: the next packet chooses again and is
 *                                        NATed out of the survivor (the move)
 *
 * Modes (what the NEXT new flow of a group gets; a flow keeps its uplink until it must move):
 *   active-standby  the preferred access while it is up and allowed, else the other
 *   priority        as active-standby, but the other while the preferred one's measured RTT
 *                   shows a standing queue (pm/steer/priority.ts prioritySaturated)
 *   smallest-delay  the allowed uplink with the smallest measured median RTT; another one must
 *                   be better by max(2 ms, 10 %) to take over (no flapping on noise)
 *   load-balancing  new flows split by the policy's ratio (numgen), over the allowed up uplinks
 *
 * Re-decided on every path event and policy change, and every `recheckMs` (RTT-driven modes).
 * A path event that takes an uplink away is handled at once: the ruleset first (new flows avoid
 * it), then the flows are deleted (their next packet finds the new ruleset).
 */
const log = logger('duocell:udp:steering');

export type UdpSteeringMode = 'active-standby' | 'priority' | 'smallest-delay' | 'load-balancing';
export const UDP_STEERING_MODES: readonly UdpSteeringMode[] = ['active-standby', 'priority', 'smallest-delay', 'load-balancing'];

export interface UdpPolicy {
  mode: UdpSteeringMode;
  preferred: AccessType;
  /** Percent of new flows per access for load-balancing. */
  ratio: { cellular: number; wlan: number };
  /** Accesses this policy's traffic may use. */
  allowed: readonly AccessType[];
  /** `block`: UDP/443 answered with ICMP port-unreachable, so QUIC falls back to TCP (and MPTCP). */
  quic?: 'allow' | 'block';
}

/** The devices a policy applies to (source prefixes) and the policy. */
export interface UdpPolicyGroup {
  key: string;
  prefixes: string[];
  policy: UdpPolicy;
}

export interface UdpPolicySource {
  groups(): UdpPolicyGroup[];
  fallback(): UdpPolicy;
  onChange(fn: () => void): unknown;
}

export interface UdpPathsSource {
  list(): PathView[];
  on(ev: 'event', cb: (e: PathEvent) => void): unknown;
  off(ev: 'event', cb: (e: PathEvent) => void): unknown;
}

/** nft, ip rule and conntrack, injected (drivers/nft, drivers/conntrack). */
export interface UdpSteerBackend {
  apply(ruleset: string): Promise<void>;
  ensureMarkRules(rules: ReadonlyArray<{ mark: number; mask: number; table: number; priority: number }>): Promise<void>;
  removeMarkRules(rules: ReadonlyArray<{ mark: number; mask: number; priority: number }>): Promise<void>;
  deleteTable(table: string): Promise<void>;
  deleteFlows(f: { proto: 'udp'; mark: number; mask: number; source?: string }): Promise<number>;
  /** The flows carrying a mark (conntrack, with counters when accounting is on). */
  listFlows?(f: { proto: 'udp'; mark: number; mask: number }): Promise<Array<{ src: string; dst: string; sport: number; dport: number; packets: number; bytes: number }>>;
  /** The table's named counters and per-element set counters, in packets (drivers/nft tableCounters). */
  counters?(table: string): Promise<{ counters: Record<string, number>; sets: Record<string, Record<string, number>> }>;
}

/**
 * What the ruleset refused, since start: per-device flow-cap drops (by source address), QUIC
 * rejects, and UDP/443 dropped without a reject because the reject limits (per source, total) bit.
 */
export interface UdpCounters {
  capDrops: Record<string, number>;
  quicBlocked: number;
  quicLimited: number;
}

/** Nothing counted (no table, no backend counters). */
const noCounters = (): UdpCounters => ({ capDrops: {}, quicBlocked: 0, quicLimited: 0 });

/** The ruleset's refusals from its table's counters (buildUdpRuleset's named counters and sets). */
export function udpCounters(c: { counters: Record<string, number>; sets: Record<string, Record<string, number>> }): UdpCounters {
  const capDrops: Record<string, number> = {};
  for (const set of ['capdrops4', 'capdrops6']) for (const [a, n] of Object.entries(c.sets[set] ?? {})) capDrops[a] = (capDrops[a] ?? 0) + n;
  return { capDrops, quicBlocked: c.counters.quic_blocked ?? 0, quicLimited: c.counters.quic_limited ?? 0 };
}

/** One steered UDP flow (GET /api/v1/udp). */
export interface UdpFlowView {
  src: string;
  sport: number;
  dst: string;
  dport: number;
  uplink: string;
  bytes: number;
  packets: number;
}

export interface UdpSteeringOptions {
  table?: string;
  lanInterfaces: string[];
  lanPrefixes?: string[];
  paths: UdpPathsSource;
  policy: UdpPolicySource;
  backend: UdpSteerBackend;
  /** Median RTT of a path (ms), from the path meter; and its minimum over the window. */
  rtt?: (name: string) => { median?: number; min?: number } | undefined;
  /** ct mark mask and the first uplink's mark (others: mark << 1 … inside the mask). */
  mask?: number;
  firstMark?: number;
  /** Priority of the fwmark rules (before the uplinks' source rules). */
  rulePriority?: number;
  perSourceFlows?: number;
  recheckMs?: number;
}

export interface UdpSteeringStatus {
  active: boolean;
  uplinks: Array<{ name: string; mark: number; up: boolean }>;
  groups: Array<{ key: string; mode: UdpSteeringMode; decision: UdpDecision }>;
  moves: number;
  flowsMoved: number;
  lastMove?: { uplink: string; reason: string; flows: number; ms: number; at: string };
}

export class UdpSteering {
  readonly #o: UdpSteeringOptions;
  readonly #table: string;
  readonly #mask: number;
  readonly #uplinks: Array<UdpUplink & { table: number; access: AccessType }>;
  #active = false;
  #applied = '';
  #chain: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  /** Uplinks each group may use as last applied (to see which ones it lost). */
  #usable = new Map<string, Set<string>>();
  /** smallest-delay's current choice per group. */
  readonly #sticky = new Map<string, string>();
  #decisions: UdpSteeringStatus['groups'] = [];
  #moves = 0;
  #flowsMoved = 0;
  #lastMove: UdpSteeringStatus['lastMove'];
  /** Counts of rulesets replaced since start: a new ruleset starts its counters at 0. */
  #base: UdpCounters = noCounters();

  constructor(o: UdpSteeringOptions) {
    this.#o = o;
    this.#table = o.table ?? 'duocell_udp';
    this.#mask = o.mask ?? 0xf00;
    const first = o.firstMark ?? 0x100;
    this.#uplinks = o.paths.list().map((p, i) => ({ name: p.name, interface: p.interface, mark: first << i, table: p.table, access: p.access }));
    validateUdpSteering({ table: this.#table, lanInterfaces: o.lanInterfaces, uplinks: this.#uplinks, mask: this.#mask, groups: [], fallback: { kind: 'none' }, ...(o.lanPrefixes === undefined ? {} : { lanPrefixes: o.lanPrefixes }) });
  }

  async start(): Promise<void> {
    const prio = this.#o.rulePriority ?? 95;
    await this.#o.backend.ensureMarkRules(this.#uplinks.map((u) => ({ mark: u.mark, mask: this.#mask, table: u.table, priority: prio })));
    this.#active = true;
    const onEvent = (e: PathEvent): void => {
      if (e.type === 'path-changed' && !e.fields.some((f) => f === 'state' || f === 'rttMs')) return;
      void this.reconcile(e.type === 'path-down' ? `${e.path.name} down` : e.type).catch(() => undefined);
    };
    this.#o.paths.on('event', onEvent);
    const offPolicy = this.#o.policy.onChange(() => void this.reconcile('policy changed').catch(() => undefined));
    this.#unsubscribe = () => {
      this.#o.paths.off('event', onEvent);
      if (typeof offPolicy === 'function') (offPolicy as () => void)();
    };
    await this.reconcile('start');
    const every = this.#o.recheckMs ?? 2000;
    if (every > 0) {
      this.#timer = setInterval(() => void this.reconcile('recheck').catch(() => undefined), every);
      this.#timer.unref();
    }
    log.info({ table: this.#table, uplinks: this.#uplinks.map((u) => `${u.name}=0x${u.mark.toString(16)}`) }, 'UDP steering active');
  }

  async stop(): Promise<void> {
    if (!this.#active) return;
    this.#active = false;
    clearInterval(this.#timer);
    this.#unsubscribe?.();
    await this.#chain.catch(() => undefined);
    await this.#o.backend.deleteTable(this.#table);
    await this.#o.backend.removeMarkRules(this.#uplinks.map((u) => ({ mark: u.mark, mask: this.#mask, priority: this.#o.rulePriority ?? 95 })));
    log.info({ table: this.#table }, 'UDP steering removed');
  }

  status(): UdpSteeringStatus {
    const up = new Set(this.#o.paths.list().filter((p) => p.state === 'up').map((p) => p.name));
    return {
      active: this.#active,
      uplinks: this.#uplinks.map((u) => ({ name: u.name, mark: u.mark, up: up.has(u.name) })),
      groups: this.#decisions,
      moves: this.#moves,
      flowsMoved: this.#flowsMoved,
      ...(this.#lastMove === undefined ? {} : { lastMove: this.#lastMove }),
    };
  }

  /** The flows each uplink carries now (from conntrack, by the uplink's ct mark). */
  async flows(): Promise<UdpFlowView[]> {
    const list = this.#o.backend.listFlows;
    if (!this.#active || list === undefined) return [];
    const out: UdpFlowView[] = [];
    for (const u of this.#uplinks) {
      for (const f of await list({ proto: 'udp', mark: u.mark, mask: this.#mask })) out.push({ src: f.src, sport: f.sport, dst: f.dst, dport: f.dport, uplink: u.name, bytes: f.bytes, packets: f.packets });
    }
    return out;
  }

  /**
   * Flow-cap drops per device and QUIC rejects since start: the live table's counters plus those
   * of the rulesets it replaced (read in the reconcile chain, so a swap is never counted twice).
   */
  counters(): Promise<UdpCounters> {
    const run = this.#chain.then(async () => add(this.#base, await this.#readCounters()));
    this.#chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  async #readCounters(): Promise<UdpCounters> {
    const read = this.#o.backend.counters;
    if (!this.#active || read === undefined || this.#applied === '') return noCounters();
    return udpCounters(await read(this.#table));
  }

  /** The default (fallback) policy's UDP mode, once decided. */
  mode(): UdpSteeringMode | undefined {
    return this.#decisions.find((d) => d.key === '*')?.mode;
  }

  /** Decide again and apply what changed (serialised). */
  reconcile(reason: string): Promise<void> {
    const next = this.#chain.then(() => (this.#active ? this.#reconcile(reason) : undefined));
    this.#chain = next.catch((e: unknown) => log.warn({ code: 'DC_UDP_STEER', err: (e as Error).message, reason }, 'UDP steering update failed'));
    return next;
  }

  async #reconcile(reason: string): Promise<void> {
    const t0 = performance.now();
    const paths = new Map(this.#o.paths.list().map((p) => [p.name, p]));
    const groups: UdpGroup[] = [];
    const decisions: UdpSteeringStatus['groups'] = [];
    const usable = new Map<string, Set<string>>();
    const all = [...this.#o.policy.groups(), { key: '*', prefixes: [], policy: this.#o.policy.fallback() }];
    let fallback: UdpDecision = { kind: 'none' };
    let fallbackQuic: 'allow' | 'block' = 'allow';
    for (const g of all) {
      const cands = this.#uplinks.filter((u) => paths.get(u.name)?.state === 'up' && g.policy.allowed.includes(u.access));
      usable.set(g.key, new Set(cands.map((u) => u.name)));
      const d = this.#decide(g.key, g.policy, cands);
      decisions.push({ key: g.key, mode: g.policy.mode, decision: d });
      if (g.key === '*') {
        fallback = d;
        fallbackQuic = g.policy.quic ?? 'allow';
      } else if (g.prefixes.length > 0) groups.push({ prefixes: g.prefixes, decision: d, quic: g.policy.quic ?? 'allow' });
    }
    const text = buildUdpRuleset({
      table: this.#table, lanInterfaces: this.#o.lanInterfaces, uplinks: this.#uplinks, mask: this.#mask, groups, fallback, fallbackQuic,
      ...(this.#o.lanPrefixes === undefined ? {} : { lanPrefixes: this.#o.lanPrefixes }),
      ...(this.#o.perSourceFlows === undefined ? {} : { perSourceFlows: this.#o.perSourceFlows }),
    });
    if (text !== this.#applied) {
      // the new table starts its counters at 0: keep what the old one counted
      if (this.#applied !== '') this.#base = add(this.#base, await this.#readCounters().catch(noCounters));
      await this.#o.backend.apply(text);
      this.#applied = text;
      log.info({ reason, groups: decisions.map((d) => `${d.key}:${d.mode}:${describe(d.decision)}`) }, 'UDP steering updated');
    }
    this.#decisions = decisions;
    // Flows on an uplink that is gone (down) for everyone: one delete by mark.
    const lostEverywhere = this.#uplinks.filter((u) => paths.get(u.name)?.state !== 'up' && [...this.#usable.values()].some((s) => s.has(u.name)));
    for (const u of lostEverywhere) await this.#move(u, undefined, reason, t0);
    // Flows of a group whose policy no longer allows an uplink that is still up: by source.
    for (const g of all) {
      const before = this.#usable.get(g.key);
      const now = usable.get(g.key)!;
      if (before === undefined) continue;
      for (const name of before) {
        if (now.has(name) || lostEverywhere.some((u) => u.name === name)) continue;
        const u = this.#uplinks.find((x) => x.name === name)!;
        if (g.key === '*') await this.#move(u, undefined, `${reason} (policy)`, t0);
        else for (const p of g.prefixes) await this.#move(u, p, `${reason} (policy)`, t0);
      }
    }
    this.#usable = usable;
  }

  async #move(u: UdpUplink, source: string | undefined, reason: string, t0: number): Promise<void> {
    const n = await this.#o.backend.deleteFlows({ proto: 'udp', mark: u.mark, mask: this.#mask, ...(source === undefined ? {} : { source }) });
    const ms = Math.round((performance.now() - t0) * 10) / 10;
    this.#moves++;
    this.#flowsMoved += n;
    this.#lastMove = { uplink: u.name, reason, flows: n, ms, at: new Date().toISOString() };
    log.info({ uplink: u.name, source, flows: n, ms, reason }, 'UDP flows moved off an uplink');
  }

  #decide(key: string, p: UdpPolicy, cands: ReadonlyArray<UdpUplink & { access: AccessType }>): UdpDecision {
    if (cands.length === 0) return { kind: 'none' };
    const pref = cands.find((u) => u.access === p.preferred);
    const other = cands.find((u) => u !== pref) ?? pref!;
    switch (p.mode) {
      case 'active-standby':
        return { kind: 'uplink', uplink: (pref ?? other).name };
      case 'priority': {
        if (pref === undefined) return { kind: 'uplink', uplink: other.name };
        const r = this.#o.rtt?.(pref.name);
        return { kind: 'uplink', uplink: prioritySaturated(r?.median, r?.min) ? other.name : pref.name };
      }
      case 'smallest-delay': {
        const rtt = (n: string): number => this.#o.rtt?.(n)?.median ?? Infinity;
        const cur = cands.find((u) => u.name === this.#sticky.get(key)) ?? pref ?? cands[0]!;
        let best = cur;
        for (const u of cands) {
          const a = rtt(u.name);
          const b = rtt(best.name);
          if (a < b && (b === Infinity || b - a > Math.max(2, 0.1 * b))) best = u;
        }
        this.#sticky.set(key, best.name);
        return { kind: 'uplink', uplink: best.name };
      }
      case 'load-balancing': {
        if (cands.length === 1) return { kind: 'uplink', uplink: cands[0]!.name };
        const w = cands.map((u) => Math.max(0, p.ratio[u.access] ?? 0));
        const sum = w.reduce((a, b) => a + b, 0);
        if (sum === 0) return { kind: 'uplink', uplink: (pref ?? cands[0]!).name };
        const pct = w.map((x) => Math.floor((100 * x) / sum));
        pct[0]! += 100 - pct.reduce((a, b) => a + b, 0);
        return { kind: 'split', shares: cands.map((u, i) => ({ uplink: u.name, pct: pct[i]! })) };
      }
    }
  }
}

function add(a: UdpCounters, b: UdpCounters): UdpCounters {
  const capDrops = { ...a.capDrops };
  for (const [k, n] of Object.entries(b.capDrops)) capDrops[k] = (capDrops[k] ?? 0) + n;
  return { capDrops, quicBlocked: a.quicBlocked + b.quicBlocked, quicLimited: a.quicLimited + b.quicLimited };
}

function describe(d: UdpDecision): string {
  return d.kind === 'none' ? 'none' : d.kind === 'uplink' ? d.uplink : d.shares.map((s) => `${s.uplink}=${s.pct}%`).join('/');
}

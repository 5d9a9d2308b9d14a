import { logger } from '../../core/logger.js';
import { toDuocellError } from '../../core/errors.js';

/**
 * A concentrator's membership of an anycast pool (issue 15): the box's routing daemon announces
 * the pool's shared address; this service decides when. It announces only while every health
 * check passes (the listeners are up, the upstream is reachable), re-checks every `intervalMs`,
 * and on stop withdraws first and keeps serving `graceMs` so that SYNs the router sent before it
 * learnt the withdrawal still find a listener. It also reads the routing daemon's own view of its
 * BGP and BFD sessions so that a misconfiguration (a session that never comes up, an unknown
 * protocol) shows in /health instead of passing in silence.
 *
 *            checks pass                         checks fail
 *   starting ───────────► announced ◄──────────► withdrawn
 *       │ (announce fails: fatal)      checks pass     │
 *       └──────────────── stop() ──► draining ◄────────┘  (withdraw, grace, then the engine drains)
 *
 * I/O (the announcement, the daemon's status, each check) arrives injected.
 */
const log = logger('duocell:anycast');

export interface RoutingSession {
  name: string;
  proto: string;
  state: string;
  info: string;
}
export interface RoutingStatus {
  protocols: RoutingSession[];
  bfd: Array<{ peer: string; interface: string; state: string }>;
}

export interface AnycastOps {
  announce(): Promise<void>;
  withdraw(): Promise<void>;
  /** The routing daemon's sessions (optional: without it only the checks are reported). */
  status?(): Promise<RoutingStatus>;
}

export type AnycastState = 'starting' | 'announced' | 'withdrawn' | 'draining';

export interface AnycastView {
  protocol: string;
  state: AnycastState;
  /** announced, every check passing, every BGP and BFD session up */
  healthy: boolean;
  checks: Record<string, boolean>;
  bgp: Array<{ name: string; state: string; info: string }>;
  bfd: Array<{ peer: string; interface: string; state: string }>;
  /** What is wrong, in words (empty when healthy). */
  problems: string[];
  checkedAt: string | null;
}

export interface AnycastOptions {
  protocol: string;
  ops: AnycastOps;
  checks?: Record<string, () => Promise<boolean> | boolean>;
  intervalMs?: number;
  graceMs?: number;
}

export class AnycastService {
  readonly #o: Required<Omit<AnycastOptions, 'checks'>> & { checks: Record<string, () => Promise<boolean> | boolean> };
  #state: AnycastState = 'starting';
  #checks: Record<string, boolean> = {};
  #status: RoutingStatus = { protocols: [], bfd: [] };
  #errors: string[] = [];
  #checkedAt: Date | undefined;
  #timer: NodeJS.Timeout | undefined;
  #ticking: Promise<void> | undefined;

  constructor(o: AnycastOptions) {
    this.#o = { intervalMs: 1000, graceMs: 500, checks: {}, ...o };
  }

  get state(): AnycastState {
    return this.#state;
  }

  /** First check; announce when it passes (a refused announcement is fatal here); then re-check periodically. */
  async start(): Promise<void> {
    const ok = await this.#runChecks();
    if (ok) {
      await this.#o.ops.announce();
      this.#state = 'announced';
      log.info({ protocol: this.#o.protocol }, 'anycast address announced');
    } else {
      this.#state = 'withdrawn';
      log.warn({ protocol: this.#o.protocol, checks: this.#checks }, 'anycast address not announced: a health check fails');
    }
    await this.#readStatus();
    this.#timer = setInterval(() => void this.tick(), this.#o.intervalMs);
    this.#timer.unref();
  }

  /** One re-check (the timer's; tests call it directly). Ticks never overlap. */
  tick(): Promise<void> {
    if (this.#ticking !== undefined) return this.#ticking;
    this.#ticking = this.#tick().finally(() => (this.#ticking = undefined));
    return this.#ticking;
  }

  async #tick(): Promise<void> {
    if (this.#state === 'draining') return;
    const ok = await this.#runChecks();
    this.#errors = [];
    try {
      if (ok && this.#state !== 'announced') {
        await this.#o.ops.announce();
        if ((this.#state as AnycastState) === 'draining') return;
        this.#state = 'announced';
        log.info({ protocol: this.#o.protocol }, 'health checks pass again: anycast address announced');
      } else if (!ok && this.#state === 'announced') {
        await this.#o.ops.withdraw();
        this.#state = 'withdrawn';
        log.warn({ protocol: this.#o.protocol, checks: this.#checks }, 'a health check fails: anycast address withdrawn');
      }
    } catch (e) {
      const err = toDuocellError(e);
      this.#errors.push(`${ok ? 'announce' : 'withdraw'}: ${err.message} (${err.code})`);
      log.error({ code: err.code, err: err.message }, 'anycast announcement change failed');
    }
    await this.#readStatus();
  }

  /** Withdraw first, then keep serving for the grace period; the caller's engine drains after. */
  async stop(): Promise<void> {
    const was = this.#state;
    this.#state = 'draining';
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.#ticking;
    if (was === 'withdrawn') return;
    try {
      await this.#o.ops.withdraw();
      log.info({ protocol: this.#o.protocol }, 'anycast address withdrawn: draining');
    } catch (e) {
      log.error({ code: toDuocellError(e).code, err: (e as Error).message }, 'cannot withdraw the anycast address: draining anyway');
    }
    if (this.#o.graceMs > 0) await new Promise((r) => setTimeout(r, this.#o.graceMs));
  }

  async #runChecks(): Promise<boolean> {
    const out: Record<string, boolean> = {};
    await Promise.all(
      Object.entries(this.#o.checks).map(async ([name, f]) => {
        try {
          out[name] = (await f()) === true;
        } catch {
          out[name] = false;
        }
      }),
    );
    this.#checks = out;
    this.#checkedAt = new Date();
    return Object.values(out).every(Boolean);
  }

  async #readStatus(): Promise<void> {
    if (this.#o.ops.status === undefined) return;
    try {
      this.#status = await this.#o.ops.status();
    } catch (e) {
      this.#status = { protocols: [], bfd: [] };
      this.#errors.push(`routing daemon: ${(e as Error).message}`);
    }
  }

  view(): AnycastView {
    const problems = [...this.#errors];
    for (const [name, ok] of Object.entries(this.#checks)) if (!ok) problems.push(`check ${name} fails`);
    const bgp = this.#status.protocols.filter((p) => p.proto === 'BGP').map((p) => ({ name: p.name, state: p.state, info: p.info }));
    if (this.#o.ops.status !== undefined && this.#errors.every((e) => !e.startsWith('routing daemon'))) {
      const own = this.#status.protocols.find((p) => p.name === this.#o.protocol);
      if (own === undefined) problems.push(`protocol ${this.#o.protocol} unknown to the routing daemon`);
      else if (this.#state === 'announced' && own.state !== 'up') problems.push(`protocol ${this.#o.protocol} is ${own.state} ${own.info}`.trim());
      if (bgp.length === 0) problems.push('no BGP session configured');
      for (const b of bgp) if (b.state !== 'up' || !/^Established/.test(b.info)) problems.push(`BGP ${b.name}: ${b.state} ${b.info}`.trim());
      for (const s of this.#status.bfd) if (s.state !== 'Up') problems.push(`BFD ${s.peer}: ${s.state}`);
    }
    if (this.#state !== 'announced' && this.#state !== 'draining') problems.push(`not announced (${this.#state})`);
    return {
      protocol: this.#o.protocol,
      state: this.#state,
      healthy: problems.length === 0,
      checks: { ...this.#checks },
      bgp,
      bfd: [...this.#status.bfd],
      problems,
      checkedAt: this.#checkedAt?.toISOString() ?? null,
    };
  }
}

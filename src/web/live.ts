import type { ServerResponse } from 'node:http';
import { DuocellError } from '../core/errors.js';
import { logger } from '../core/logger.js';
import type { PathView, WebDeps, WebEventName } from './deps.js';

const log = logger('duocell:web:live');

/**
 * Live data for the page and /metrics:
 *
 *   deps.paths() ──(every sampleMs)──► ThroughputSampler ──► history ring (last N samples)
 *                                                        └──► EventHub ──► SSE clients
 *   deps.events (paths, sessions, modem …) ──(coalesced)──────┘
 *
 * Throughput is computed here from the paths' byte counters so any WebDeps gets a chart.
 */

export interface Rate {
  txBps: number;
  rxBps: number;
}

export interface ThroughputSample {
  t: number;
  total: Rate;
  paths: Record<string, Rate & { state: 'up' | 'down'; access: PathView['access'] }>;
}

export class ThroughputSampler {
  readonly #paths: () => PathView[];
  readonly #history: ThroughputSample[] = [];
  readonly #max: number;
  readonly #prev = new Map<string, { tx: number; rx: number; t: number }>();
  readonly #listeners = new Set<(s: ThroughputSample) => void>();
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;

  constructor(paths: () => PathView[], opts: { historySize?: number; now?: () => number } = {}) {
    this.#paths = paths;
    this.#max = opts.historySize ?? 300;
    this.#now = opts.now ?? Date.now;
  }

  start(intervalMs: number): void {
    this.sample();
    this.#timer = setInterval(() => this.sample(), intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#listeners.clear();
  }

  onSample(fn: (s: ThroughputSample) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Take one sample now (the timer calls this; tests may too). */
  sample(): ThroughputSample | undefined {
    let paths: PathView[];
    try {
      paths = this.#paths();
    } catch (e) {
      log.warn({ err: e }, 'paths() failed while sampling throughput');
      return undefined;
    }
    const t = this.#now();
    const s: ThroughputSample = { t, total: { txBps: 0, rxBps: 0 }, paths: {} };
    const seen = new Set<string>();
    for (const p of paths) {
      seen.add(p.name);
      const prev = this.#prev.get(p.name);
      let rate: Rate = { txBps: 0, rxBps: 0 };
      if (prev !== undefined && t > prev.t) {
        const dt = (t - prev.t) / 1000;
        // A counter that went backwards was reset (interface re-created): no rate this time.
        rate = {
          txBps: p.bytesTx >= prev.tx ? Math.round(((p.bytesTx - prev.tx) * 8) / dt) : 0,
          rxBps: p.bytesRx >= prev.rx ? Math.round(((p.bytesRx - prev.rx) * 8) / dt) : 0,
        };
      }
      this.#prev.set(p.name, { tx: p.bytesTx, rx: p.bytesRx, t });
      s.paths[p.name] = { ...rate, state: p.state, access: p.access };
      s.total.txBps += rate.txBps;
      s.total.rxBps += rate.rxBps;
    }
    for (const k of [...this.#prev.keys()]) if (!seen.has(k)) this.#prev.delete(k);
    this.#history.push(s);
    if (this.#history.length > this.#max) this.#history.splice(0, this.#history.length - this.#max);
    for (const fn of this.#listeners) fn(s);
    return s;
  }

  history(): ThroughputSample[] {
    return this.#history.slice();
  }

  latest(name: string): Rate | undefined {
    const last = this.#history[this.#history.length - 1];
    const r = last?.paths[name];
    return r === undefined ? undefined : { txBps: r.txBps, rxBps: r.rxBps };
  }
}

interface Client {
  res: ServerResponse;
}

/**
 * Server-sent events to the page. Bounded: at most maxClients streams; a client that does not
 * read (more than maxBuffered bytes queued) is dropped rather than buffered without end.
 */
export class EventHub {
  readonly #clients = new Set<Client>();
  readonly #maxClients: number;
  readonly #maxBuffered: number;
  readonly #unsubs: Array<() => void> = [];
  readonly #pending = new Map<WebEventName, NodeJS.Timeout>();
  readonly #keepalive: NodeJS.Timeout;
  #seq = 0;

  constructor(
    readonly deps: WebDeps,
    sampler: ThroughputSampler,
    opts: { maxClients?: number; maxBuffered?: number; coalesceMs?: number; keepaliveMs?: number } = {},
  ) {
    this.#maxClients = opts.maxClients ?? 16;
    this.#maxBuffered = opts.maxBuffered ?? 1 << 20;
    const coalesceMs = opts.coalesceMs ?? 500;
    this.#unsubs.push(sampler.onSample((s) => this.broadcast('throughput', s)));
    const names: WebEventName[] = ['paths', 'sessions', 'modem', 'wlan', 'policy', 'ota', 'subscribers'];
    for (const name of names) {
      this.#unsubs.push(
        deps.events.on(name, () => {
          // Coalesce bursts: one event per name per coalesceMs, carrying the state then.
          if (this.#pending.has(name) || this.#clients.size === 0) return;
          const timer = setTimeout(() => {
            this.#pending.delete(name);
            this.#emitState(name);
          }, coalesceMs);
          timer.unref();
          this.#pending.set(name, timer);
        }),
      );
    }
    this.#keepalive = setInterval(() => this.#writeAll(': keep-alive\n\n'), opts.keepaliveMs ?? 15_000);
    this.#keepalive.unref();
  }

  #emitState(name: WebEventName): void {
    try {
      switch (name) {
        case 'paths':
          return this.broadcast('paths', this.deps.paths());
        case 'sessions': {
          const all = this.deps.sessions();
          return this.broadcast('sessions', { count: all.length, sessions: all.slice(0, 200) });
        }
        case 'modem':
          return this.broadcast('modem', this.deps.modem?.() ?? null);
        case 'wlan':
          return this.broadcast('wlan', this.deps.wlan?.() ?? null);
        case 'ota':
          return this.broadcast('ota', this.deps.ota.status());
        default:
          return this.broadcast(name, {});
      }
    } catch (e) {
      log.warn({ err: e, event: name }, 'reading state for an event failed');
    }
  }

  get size(): number {
    return this.#clients.size;
  }

  get maxClients(): number {
    return this.#maxClients;
  }

  /** One event to one stream (the state a new client starts with). */
  sendTo(res: ServerResponse, event: string, data: unknown): void {
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /** Take over a response as an event stream. Throws DC_WEB_BUSY when full. */
  attach(res: ServerResponse, headers: Record<string, string> = {}): void {
    if (this.#clients.size >= this.#maxClients) throw new DuocellError('DC_WEB_BUSY', `at most ${this.#maxClients} event streams`);
    res.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 3000\n\n');
    const c: Client = { res };
    this.#clients.add(c);
    const drop = (): void => {
      this.#clients.delete(c);
    };
    res.on('close', drop);
    res.on('error', drop);
  }

  broadcast(event: string, data: unknown): void {
    if (this.#clients.size === 0) return;
    this.#writeAll(`id: ${++this.#seq}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  #writeAll(chunk: string): void {
    for (const c of this.#clients) {
      if (c.res.writableLength > this.#maxBuffered) {
        log.warn('event-stream client too slow; dropped');
        this.#clients.delete(c);
        c.res.destroy();
        continue;
      }
      c.res.write(chunk);
    }
  }

  close(): void {
    for (const u of this.#unsubs) u();
    for (const t of this.#pending.values()) clearTimeout(t);
    this.#pending.clear();
    clearInterval(this.#keepalive);
    for (const c of this.#clients) c.res.end();
    this.#clients.clear();
  }
}

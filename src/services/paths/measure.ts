import { randomInt } from 'node:crypto';
import { DuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import { decodeProbe, encodeProbe } from '../../protocols/probe/codec.js';
import type { PathView } from './types.js';

/**
 * Per-path measurement (ATSSS's performance measurement function): each uplink's RTT, jitter and
 * loss, measured continuously by active probes sent FROM that uplink, plus the passive RTT of the
 * MPTCP subflows leaving through it (TCP_INFO, when there are any).
 *
 *   every intervalMs, for each path that is up, allowed by policy and has a target:
 *     send probe(seq) from the path's address ──► responder (configured target / gateway)
 *     reply(seq) within timeoutMs ─► sample rtt = now − sent   (our own clock, never the packet's)
 *     no reply by timeoutMs       ─► sample lost
 *   window: the last `window` samples ─► median, p95, min RTT; jitter; loss %
 *
 * Jitter is the mean absolute difference of consecutive received RTTs (RFC 3550's estimator
 * without its smoothing). A path that goes down or that policy forbids is not probed and its
 * window is cleared: stale figures would mislead the smallest-delay mode. The socket is the
 * injected ProbeTransport (drivers/probe: UDP echo or ICMP echo, chosen per path by whoever
 * builds the targets); this file does no I/O and never asks which transport it has.
 */
const log = logger('duocell:paths:measure');

import type { ProbeSocket, ProbeTransport } from '../../drivers/probe/types.js';
export type { ProbeSocket, ProbeTransport };

export interface ProbeTarget {
  /** Numeric address of the responder; absent: the path's gateway. */
  readonly address?: string;
  /** UDP port of the echo responder (default 7, RFC 862 echo; a transport without ports ignores it). */
  readonly port?: number;
  /** This path's transport, when not the meter's default `transport`. */
  readonly transport?: ProbeTransport;
}

export interface MeasureOptions {
  transport: ProbeTransport;
  /** Per path name; a path without an entry is probed at its gateway on port 7 (when it has one). */
  targets?: Readonly<Record<string, ProbeTarget>>;
  /** Probe period per path (default 1000 ms: at most 1 packet/s per path). Minimum 100 ms. */
  intervalMs?: number;
  /** A probe not answered within this is lost (default 2000 ms). */
  timeoutMs?: number;
  /** Samples kept per path (default 60). */
  window?: number;
  /** Probe size in bytes (default 64). */
  size?: number;
  /** May this path be probed (policy allows traffic over it)? Default: yes. */
  allowed?: (p: PathView) => boolean;
  /** Passive RTTs (ms) of the established MPTCP subflows through a path (TCP_INFO). */
  passive?: (p: PathView) => readonly number[];
  /** Monotonic clock in ms (default performance.now). */
  now?: () => number;
}

export interface PathMeasure {
  /** Echo responder probed. */
  readonly target: string;
  readonly samples: number;
  readonly received: number;
  readonly rttMs?: { readonly median: number; readonly p95: number; readonly min: number; readonly last: number };
  readonly jitterMs?: number;
  readonly lossPct?: number;
  /** Mean smoothed RTT of the MPTCP subflows through this path, when there are any. */
  readonly passiveRttMs?: number;
  readonly passiveSubflows?: number;
}

type Sample = { at: number; rttMs: number | null };

type Wanted = { key: string; label: string; target: string; port: number; local: string; device: string; transport: ProbeTransport };

interface Probing {
  key: string;
  label: string;
  target: string;
  port: number;
  session: number;
  socket: ProbeSocket | undefined;
  opening: boolean;
  seq: number;
  pending: Map<number, number>;
  samples: Sample[];
  timer: NodeJS.Timeout | undefined;
}

/** Median (p = 0.5) and other quantiles by nearest rank over a sorted copy. */
export function quantile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  if (p === 0.5) return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
}

/** Window figures from samples (null = lost), in the order they were sent. */
export function windowStats(samples: readonly (number | null)[]): Pick<PathMeasure, 'samples' | 'received' | 'rttMs' | 'jitterMs' | 'lossPct'> {
  const got = samples.filter((x): x is number => x !== null);
  let jsum = 0;
  for (let i = 1; i < got.length; i++) jsum += Math.abs(got[i]! - got[i - 1]!);
  const r3 = (x: number): number => Math.round(x * 1000) / 1000;
  return {
    samples: samples.length,
    received: got.length,
    ...(got.length === 0 ? {} : { rttMs: { median: r3(quantile(got, 0.5)), p95: r3(quantile(got, 0.95)), min: r3(Math.min(...got)), last: r3(got[got.length - 1]!) } }),
    ...(got.length < 2 ? {} : { jitterMs: r3(jsum / (got.length - 1)) }),
    ...(samples.length === 0 ? {} : { lossPct: r3((100 * (samples.length - got.length)) / samples.length) }),
  };
}

export class PathMeter {
  readonly #o: Required<Pick<MeasureOptions, 'intervalMs' | 'timeoutMs' | 'window' | 'size'>> & MeasureOptions;
  readonly #probing = new Map<string, Probing>();
  readonly #views = new Map<string, PathView>();
  readonly #now: () => number;
  /** Datagrams sent and replies dropped (malformed, foreign, late), for tests and metrics. */
  readonly counters = { sent: 0, received: 0, dropped: 0 };

  constructor(o: MeasureOptions) {
    const intervalMs = o.intervalMs ?? 1000;
    const timeoutMs = o.timeoutMs ?? 2000;
    const window = o.window ?? 60;
    const size = o.size ?? 64;
    if (!Number.isInteger(intervalMs) || intervalMs < 100) throw new DuocellError('DC_CONFIG_INVALID', 'probe interval must be an integer ≥ 100 ms');
    if (!Number.isInteger(timeoutMs) || timeoutMs < 10) throw new DuocellError('DC_CONFIG_INVALID', 'probe timeout must be an integer ≥ 10 ms');
    if (!Number.isInteger(window) || window < 1 || window > 10_000) throw new DuocellError('DC_CONFIG_INVALID', 'probe window must be 1..10000 samples');
    for (const [name, t] of Object.entries(o.targets ?? {})) {
      if (t.port !== undefined && (!Number.isInteger(t.port) || t.port < 1 || t.port > 65535)) throw new DuocellError('DC_CONFIG_INVALID', `probe port of ${name} must be 1..65535`);
    }
    this.#o = { ...o, intervalMs, timeoutMs, window, size };
    this.#now = o.now ?? (() => performance.now());
  }

  /** Follow a path's state: start, keep or stop probing it. Call on every path event. */
  update(p: PathView): void {
    this.#views.set(p.name, p);
    const want = this.#wanted(p);
    const cur = this.#probing.get(p.name);
    if (cur !== undefined && (want === undefined || want.key !== cur.key)) this.#stop(p.name);
    if (want !== undefined && (cur === undefined || want.key !== cur.key)) this.#start(p.name, want);
  }

  /** Where passive figures come from (the pm service starts after the paths). */
  setPassive(fn: (p: PathView) => readonly number[]): void {
    this.#o.passive = fn;
  }

  /** Re-check every known path (policy changed). */
  refresh(): void {
    for (const p of this.#views.values()) this.update(p);
  }

  stop(): void {
    for (const n of [...this.#probing.keys()]) this.#stop(n);
  }

  /** The figures of one path (undefined: never measured and no passive figure). */
  get(name: string): PathMeasure | undefined {
    const pr = this.#probing.get(name);
    const view = this.#views.get(name);
    const passive = view === undefined ? [] : (this.#o.passive?.(view) ?? []).filter((x) => Number.isFinite(x) && x > 0);
    if (pr === undefined && passive.length === 0) return undefined;
    return {
      target: pr === undefined ? '' : pr.label,
      ...windowStats((pr?.samples ?? []).map((s) => s.rttMs)),
      ...(passive.length === 0 ? {} : { passiveRttMs: Math.round((passive.reduce((a, b) => a + b, 0) / passive.length) * 1000) / 1000, passiveSubflows: passive.length }),
    };
  }

  /** The median RTT the steering modes use: the probes' median, else the passive mean. */
  rttMs(name: string): number | undefined {
    const m = this.get(name);
    return m?.rttMs?.median ?? m?.passiveRttMs;
  }

  #wanted(p: PathView): Wanted | undefined {
    if (p.state !== 'up') return undefined;
    if (this.#o.allowed !== undefined && !this.#o.allowed(p)) return undefined;
    const t = this.#o.targets?.[p.name];
    const target = t?.address ?? p.gateway4 ?? p.gateway6;
    if (target === undefined) return undefined;
    const v6 = target.includes(':');
    const local = p.addresses.find((a) => a.includes(':') === v6 && !(v6 && a.toLowerCase().startsWith('fe80')));
    if (local === undefined) return undefined;
    const port = t?.port ?? 7;
    const transport = t?.transport ?? this.#o.transport;
    const label = transport.describe?.(target, port) ?? `${target}:${port}`;
    return { key: `${p.interface}|${local}>${label}`, label, target, port, local, device: p.interface, transport };
  }

  #start(name: string, w: Wanted): void {
    const pr: Probing = { key: w.key, label: w.label, target: w.target, port: w.port, session: randomInt(1, 0xffffffff), socket: undefined, opening: true, seq: 0, pending: new Map(), samples: [], timer: undefined };
    this.#probing.set(name, pr);
    w.transport
      .open({
        local: w.local,
        target: w.target,
        port: w.port,
        device: w.device,
        onMessage: (b) => this.#reply(pr, b),
        onError: (e) => log.debug({ path: name, err: e.message }, 'probe socket error'),
      })
      .then((sock) => {
        pr.opening = false;
        if (this.#probing.get(name) !== pr) {
          sock.close();
          return;
        }
        pr.socket = sock;
        log.info({ path: name, device: w.device, local: w.local, target: w.label, intervalMs: this.#o.intervalMs }, 'probing path');
        this.#tick(name, pr);
        pr.timer = setInterval(() => this.#tick(name, pr), this.#o.intervalMs);
        pr.timer.unref();
      })
      .catch((e: unknown) => {
        pr.opening = false;
        log.warn({ path: name, err: (e as Error).message }, 'cannot open the probe socket; the path is not measured');
        if (this.#probing.get(name) === pr) this.#probing.delete(name);
      });
  }

  #stop(name: string): void {
    const pr = this.#probing.get(name);
    if (pr === undefined) return;
    this.#probing.delete(name);
    clearInterval(pr.timer);
    pr.socket?.close();
    log.info({ path: name }, 'probing stopped');
  }

  #tick(_name: string, pr: Probing): void {
    const now = this.#now();
    // probes older than the timeout count as lost
    for (const [seq, at] of pr.pending) {
      if (now - at >= this.#o.timeoutMs) {
        pr.pending.delete(seq);
        this.#push(pr, { at, rttMs: null });
      }
    }
    const seq = pr.seq;
    pr.seq = (pr.seq + 1) >>> 0;
    pr.pending.set(seq, now);
    try {
      pr.socket?.send(encodeProbe({ session: pr.session, seq, sentUs: BigInt(Math.round(now * 1000)) }, this.#o.size));
      this.counters.sent++;
    } catch (e) {
      log.debug({ err: (e as Error).message }, 'probe send failed');
    }
  }

  #reply(pr: Probing, b: Buffer): void {
    const now = this.#now();
    let f;
    try {
      f = decodeProbe(b);
    } catch {
      this.counters.dropped++;
      return;
    }
    const at = f.session === pr.session ? pr.pending.get(f.seq) : undefined;
    if (at === undefined) {
      this.counters.dropped++; // another prober's, a duplicate, or one already counted lost
      return;
    }
    pr.pending.delete(f.seq);
    this.counters.received++;
    this.#push(pr, { at, rttMs: now - at });
  }

  #push(pr: Probing, s: Sample): void {
    // keep send order (a late reply's sample goes where its probe was sent)
    let i = pr.samples.length;
    while (i > 0 && pr.samples[i - 1]!.at > s.at) i--;
    pr.samples.splice(i, 0, s);
    if (pr.samples.length > this.#o.window) pr.samples.splice(0, pr.samples.length - this.#o.window);
  }
}

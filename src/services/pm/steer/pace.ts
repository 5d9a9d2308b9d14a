import { logger } from '../../../core/logger.js';
import type { SteerPacer } from './types.js';

/**
 * Pacing for the ratio mode: a rate limit on what the box sends on the cellular access
 * (drivers/tc HtbPacer). With greedy flows on two bottlenecks every connection that may use a
 * path fills it, so backup flags only switch the split between its extremes (docs/policy.md);
 * a paced cellular egress instead holds cellular at a rate, and as the cellular subflows'
 * queues build (TCP small queues push back) the MPTCP scheduler sends the rest on WLAN.
 *
 *   rate = target / (1 − target) × WLAN's rate over the last second × c
 *
 * The feed-forward term puts the split on target in one step when WLAN is saturated; `c` is a
 * slow integral correction on the window's share (the sender's acked bytes and the receiver's
 * counts differ a little, and WLAN may not be saturated). Pacing only lowers cellular's share:
 * where the target needs more than cellular gives unpaced, the ladder acts (ratio.ts).
 */
const log = logger('duocell:pm:steer');

export interface PaceState {
  /** Integral correction factor (1: none). */
  readonly c: number;
  /** The rate asked for, bits/s (undefined: no limit). */
  readonly rate: number | undefined;
}

export const initialPaceState: PaceState = { c: 1, rate: undefined };

export interface PaceInput {
  readonly target: number;
  /** The window's cellular share (undefined: too few bytes). */
  readonly share: number | undefined;
  /** Recent ticks' bytes per access, oldest first. */
  readonly samples: ReadonlyArray<{ readonly t: number; readonly cell: number; readonly wlan: number }>;
  readonly intervalMs: number;
  /** How far back the rates look (default 1000 ms). */
  readonly spanMs?: number;
  /** Integral gain per tick and unit of share error (default 0.1). */
  readonly ki?: number;
}

/** One pacing decision (pure). */
export function paceStep(s: PaceState, i: PaceInput): PaceState {
  if (i.target <= 0 || i.target >= 1 || i.samples.length === 0) return initialPaceState;
  const wlanBps = recentBps(i.samples, 'wlan', i.spanMs ?? 2000, i.intervalMs);
  // WLAN carries nothing: no rate to derive cellular's from (and pacing must not starve it)
  if (wlanBps < 100_000) return { c: s.c, rate: undefined };
  const c = i.share === undefined ? s.c : Math.max(0.5, Math.min(2, s.c * (1 + (i.ki ?? 0.1) * (i.target - i.share))));
  const want = (i.target / (1 - i.target)) * wlanBps * c;
  // at most ±15 % a tick: one late or short tick must not swing the rate
  return { c, rate: s.rate === undefined ? want : Math.max(0.85 * s.rate, Math.min(1.15 * s.rate, want)) };
}

/** Bits/s an access carried over the samples of the last `spanMs` (each covers the time since the one before). */
export function recentBps(samples: PaceInput['samples'], a: 'cell' | 'wlan', spanMs: number, intervalMs: number): number {
  const last = samples[samples.length - 1]!.t;
  const k = samples.findIndex((x) => x.t > last - spanMs);
  const from = k > 0 ? samples[k - 1]!.t : samples[0]!.t - intervalMs;
  let bytes = 0;
  for (let j = Math.max(0, k); j < samples.length; j++) bytes += samples[j]![a];
  return (8000 * bytes) / Math.max(intervalMs, last - from);
}

/**
 * The controller's side of one pacer: the groups' requests summed (one class paces the whole
 * egress), a command only when the rate changed by more than `minChange` (or appeared or went),
 * one command in flight, the latest request wins. A pacer that failed once (no tc, no htb) is
 * not asked again: the ladder alone steers (ratio.ts sees no rate).
 */
export class PaceGate {
  readonly #req = new Map<string, number>();
  #applied: number | undefined;
  #busy = false;
  #dirty = false;
  /** Rates applied (the controller's `paceChanges` statistic). */
  changes = 0;
  failed = false;

  constructor(
    readonly pacer: SteerPacer,
    readonly minChange = 0.02,
  ) {}

  request(group: string, bitsPerSec: number | undefined): void {
    if (this.failed) return;
    if (bitsPerSec === undefined) this.#req.delete(group);
    else this.#req.set(group, bitsPerSec);
    void this.#apply();
  }

  /** Drop every request and remove the limit. */
  async clear(): Promise<void> {
    this.#req.clear();
    this.#applied = undefined;
    await (this.pacer.restore?.() ?? this.pacer.setRate(undefined));
  }

  #want(): number | undefined {
    return this.#req.size === 0 ? undefined : [...this.#req.values()].reduce((x, y) => x + y, 0);
  }

  async #apply(): Promise<void> {
    if (this.#busy) {
      this.#dirty = true;
      return;
    }
    this.#busy = true;
    try {
      do {
        this.#dirty = false;
        const want = this.#want();
        const a = this.#applied;
        if (want === a || (want !== undefined && a !== undefined && Math.abs(want - a) <= this.minChange * a)) continue;
        await this.pacer.setRate(want).then(
          () => {
            this.#applied = want;
            this.changes++;
          },
          (e: unknown) => {
            this.failed = true;
            log.warn({ err: e }, 'pacing the cellular egress failed: ratio steers with backup flags only');
          },
        );
      } while (this.#dirty);
    } finally {
      this.#busy = false;
    }
  }
}

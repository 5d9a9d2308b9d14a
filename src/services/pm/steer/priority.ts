import { logger } from '../../../core/logger.js';
import type { SteerMode } from './mode.js';
import { accesses } from './mode.js';

/**
 * priority: as active-standby while the preferred access keeps up, but the other access is also
 * used when the preferred one is saturated (its subflows' smoothed RTT well above their minimum:
 * a standing queue); released when the group's total throughput falls below 80 % of what the
 * preferred access alone carried.
 */

const log = logger('duocell:pm:steer');

export interface PriorityState {
  readonly overflow: boolean;
  readonly since: number;
  /** Highest rate (bytes/ms) the preferred access carried while saturated. */
  readonly capacity: number;
}

export interface PriorityInput {
  readonly now: number;
  /** Mean and minimum smoothed RTT (ms) of the preferred access's subflows. */
  readonly rttMs: number | undefined;
  readonly minRttMs: number | undefined;
  /** Rates over the window, bytes/ms. */
  readonly preferredRate: number;
  readonly totalRate: number;
  readonly holdMs: number;
}

/** Saturated: a standing queue of at least max(minRtt, 10 ms) on the preferred access. */
export function prioritySaturated(rttMs: number | undefined, minRttMs: number | undefined): boolean {
  if (rttMs === undefined || minRttMs === undefined) return false;
  return rttMs - minRttMs >= Math.max(minRttMs, 10);
}

export function priorityStep(s: PriorityState, i: PriorityInput): PriorityState {
  const sat = prioritySaturated(i.rttMs, i.minRttMs);
  if (!s.overflow) {
    const capacity = sat ? Math.max(s.capacity, i.preferredRate) : s.capacity;
    if (sat && i.now - s.since >= i.holdMs) return { overflow: true, since: i.now, capacity };
    return { overflow: false, since: sat ? s.since : i.now, capacity };
  }
  const low = s.capacity > 0 && i.totalRate < 0.8 * s.capacity;
  if (low && i.now - s.since >= i.holdMs) return { overflow: false, since: i.now, capacity: s.capacity };
  return { overflow: true, since: low ? s.since : i.now, capacity: s.capacity };
}


export const priorityMode: SteerMode<PriorityState> = {
  name: 'priority',
  init: (now) => ({ overflow: false, since: now, capacity: 0 }),
  tick(s, m) {
    const pref = m.policy.preferred ?? 'wlan';
    const r = m.rtt[pref];
    const next = priorityStep(s, {
      now: m.now, rttMs: r?.meanMs, minRttMs: r?.minMs,
      preferredRate: (pref === 'cellular' ? m.cell : m.wlan) / m.spanMs, totalRate: (m.cell + m.wlan) / m.spanMs, holdMs: m.holdMs,
    });
    if (next.overflow !== s.overflow) log.info({ group: m.group, overflow: next.overflow }, 'priority: secondary access ' + (next.overflow ? 'added' : 'released'));
    Object.assign(s, next);
  },
  carry: (s, p) => (s.overflow ? accesses('cellular', 'wlan') : accesses(p.preferred ?? 'wlan')),
  view: (s) => ({ overflow: s.overflow }),
};

import { logger } from '../../../core/logger.js';
import type { ModeTick, SteerMode } from './mode.js';
import { accesses } from './mode.js';
import { priorityStep, type PriorityState } from './priority.js';
import type { SteerAccess } from './types.js';

/**
 * smallest-delay (ATSSS's "smallest delay", for MPTCP): every connection of the group sends on
 * the access with the lowest measured base RTT; the other access is added only when that one is
 * saturated, and released again with the priority mode's hysteresis.
 *
 *   base RTT of an access = the lower of the paths service's figure (probe median, else passive)
 *                           and the group's subflows' minimum RTT (TCP_INFO min_rtt)
 *   fastest  = argmin base RTT; changed only by a margin (max(1 ms, 10 %)) and never while
 *              overflowing (a standing queue would make the loaded path look slow)
 *   saturated = a standing queue on the fastest access: its subflows' smoothed RTT above their
 *              minimum by max(minimum, 10 ms) for holdMs (priority.ts prioritySaturated): an
 *              application-limited connection never builds one, a bulk one (cwnd/send-buffer
 *              limited) does
 *   released = the group's total rate falls below 80 % of what the fastest access carried alone
 *
 * Until any RTT is known, the policy's preferred access (default WLAN) is taken as the fastest.
 */

const log = logger('duocell:pm:steer');

export interface SmallestDelayState {
  fastest: SteerAccess | undefined;
  prio: PriorityState;
}

/** The access's base RTT (ms), or undefined when nothing measured it. */
export function baseRttMs(m: Pick<ModeTick, 'rtt' | 'pathRttMs'>, a: SteerAccess): number | undefined {
  const v = [m.pathRttMs[a], m.rtt[a]?.minMs].filter((x): x is number => x !== undefined && Number.isFinite(x) && x > 0);
  return v.length === 0 ? undefined : Math.min(...v);
}

/** The fastest access: the current one unless the other's base RTT is lower by the margin. */
export function pickFastest(current: SteerAccess | undefined, rtt: Partial<Record<SteerAccess, number>>, fallback: SteerAccess): SteerAccess {
  const c = rtt.cellular;
  const w = rtt.wlan;
  if (c === undefined && w === undefined) return current ?? fallback;
  if (c === undefined) return 'wlan';
  if (w === undefined) return 'cellular';
  const best: SteerAccess = c < w ? 'cellular' : 'wlan';
  if (current === undefined || current === best) return best;
  const cur = rtt[current]!;
  const other = rtt[best]!;
  return cur - other > Math.max(1, 0.1 * cur) ? best : current;
}

export const smallestDelayMode: SteerMode<SmallestDelayState> = {
  name: 'smallest-delay',
  init: (now) => ({ fastest: undefined, prio: { overflow: false, since: now, capacity: 0 } }),
  tick(s, m) {
    const fallback = m.policy.preferred ?? 'wlan';
    if (!s.prio.overflow) {
      const next = pickFastest(s.fastest, { cellular: baseRttMs(m, 'cellular'), wlan: baseRttMs(m, 'wlan') }, fallback);
      if (next !== s.fastest) {
        if (s.fastest !== undefined) log.info({ group: m.group, from: s.fastest, to: next }, 'smallest-delay: fastest access changed');
        s.fastest = next;
        s.prio = { overflow: false, since: m.now, capacity: 0 };
      }
    }
    const a = s.fastest ?? fallback;
    const r = m.rtt[a];
    const next = priorityStep(s.prio, {
      now: m.now, rttMs: r?.meanMs, minRttMs: r?.minMs,
      preferredRate: (a === 'cellular' ? m.cell : m.wlan) / m.spanMs, totalRate: (m.cell + m.wlan) / m.spanMs, holdMs: m.holdMs,
    });
    if (next.overflow !== s.prio.overflow) log.info({ group: m.group, fastest: a, overflow: next.overflow }, 'smallest-delay: second access ' + (next.overflow ? 'added' : 'released'));
    s.prio = next;
  },
  carry: (s, p) => (s.prio.overflow ? accesses('cellular', 'wlan') : accesses(s.fastest ?? p.preferred ?? 'wlan')),
  view: (s) => ({ overflow: s.prio.overflow, ...(s.fastest === undefined ? {} : { fastest: s.fastest }) }),
};

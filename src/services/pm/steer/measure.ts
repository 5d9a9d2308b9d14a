import { addressKey } from '../../../core/net.js';
import type { SubflowView } from '../types.js';
import type { AccessRtt } from './mode.js';
import type { SteerAccess, SteerCounters } from './types.js';

/** One tick's bytes per access of a group. */
export interface SteerSample {
  t: number;
  cell: number;
  wlan: number;
}

/** A subflow's key by value (sock_diag and the events may spell one address differently). */
export const sfKey = (s: { saddr: string; sport: number; daddr: string; dport: number }): string => `${addressKey(s.saddr)}|${s.sport}|${addressKey(s.daddr)}|${s.dport}`;

/**
 * One measurement round over the subflow counters (sock_diag): per group, the bytes each access
 * carried since the last round (acked sent + received; `last` keeps each subflow's previous
 * total and forgets subflows no longer listed) and the mean smoothed / minimum RTT per access.
 */
export function measure<G>(
  list: readonly SteerCounters[],
  last: Map<string, number>,
  now: number,
  member: (token: number) => { group: G; subflows: readonly SubflowView[] } | undefined,
  accessOf: (sf: SubflowView) => SteerAccess | undefined,
  complete = true,
): { delta: Map<G, SteerSample>; rtt: Map<G, Partial<Record<SteerAccess, AccessRtt>>> } {
  const delta = new Map<G, SteerSample>();
  const sums = new Map<G, Record<SteerAccess, { sum: number; n: number; min: number }>>();
  const seen = new Set<string>();
  for (const c of list) {
    if (c.token === undefined) continue;
    const key = `${c.token}|${sfKey(c)}`;
    seen.add(key);
    const bytes = (c.bytesAcked ?? c.bytesSent) + c.bytesReceived;
    const prev = last.get(key);
    last.set(key, bytes);
    const m = member(c.token);
    if (m === undefined) continue;
    const g = m.group;
    const sf = m.subflows.find((f) => sfKey(f) === sfKey(c));
    const a = sf === undefined ? undefined : accessOf(sf);
    if (a === undefined) continue;
    const d = delta.get(g) ?? { t: now, cell: 0, wlan: 0 };
    const inc = prev === undefined ? 0 : Math.max(0, bytes - prev);
    if (a === 'cellular') d.cell += inc;
    else d.wlan += inc;
    delta.set(g, d);
    if (c.rttMs !== undefined && c.rttMs > 0) {
      const r = sums.get(g) ?? { cellular: { sum: 0, n: 0, min: Infinity }, wlan: { sum: 0, n: 0, min: Infinity } };
      r[a].sum += c.rttMs;
      r[a].n++;
      r[a].min = Math.min(r[a].min, c.minRttMs ?? c.rttMs);
      sums.set(g, r);
    }
  }
  if (complete) for (const k of [...last.keys()]) if (!seen.has(k)) last.delete(k);
  const rtt = new Map<G, Partial<Record<SteerAccess, AccessRtt>>>();
  for (const [g, r] of sums) {
    const out: Partial<Record<SteerAccess, AccessRtt>> = {};
    for (const a of ['cellular', 'wlan'] as const) if (r[a].n > 0) out[a] = { meanMs: r[a].sum / r[a].n, minMs: r[a].min };
    rtt.set(g, out);
  }
  return { delta, rtt };
}

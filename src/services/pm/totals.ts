import { sameAddress } from '../../core/net.js';
import type { AccessTotals, SubflowView } from './types.js';

/** Smoothed RTTs (TCP_INFO, ms) of the established subflows leaving from these addresses. */
export function subflowRtts(subflows: Iterable<SubflowView>, addresses: readonly string[]): number[] {
  const out: number[] = [];
  for (const f of subflows) if (f.state === 'established' && f.rttMs !== undefined && addresses.some((a) => sameAddress(a, f.saddr))) out.push(f.rttMs);
  return out;
}

/** Bytes and RTT per access type over the established subflows (the actual path split). */
export function accessTotals(subflows: Iterable<SubflowView>): Record<string, AccessTotals> {
  const acc: Record<string, { subflows: number; bytesSent: number; bytesReceived: number; rtt: number[] }> = {};
  for (const f of subflows) {
    if (f.state !== 'established') continue;
    const a = (acc[f.access] ??= { subflows: 0, bytesSent: 0, bytesReceived: 0, rtt: [] });
    a.subflows++;
    a.bytesSent += f.bytesSent ?? 0;
    a.bytesReceived += f.bytesReceived ?? 0;
    if (f.rttMs !== undefined) a.rtt.push(f.rttMs);
  }
  return Object.fromEntries(Object.entries(acc).map(([k, v]) => [k, {
    subflows: v.subflows, bytesSent: v.bytesSent, bytesReceived: v.bytesReceived,
    ...(v.rtt.length === 0 ? {} : { rttMs: v.rtt.reduce((x, y) => x + y, 0) / v.rtt.length }),
  }]));
}

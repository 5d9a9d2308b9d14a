import type { LinkOptions } from '../src/sim/hosts.js';
import { SIM_RATES } from '../src/sim/board.js';

/**
 * The link worlds the benchmarks run in:
 *   realistic  cellular links are `lte` (20 Mbit/s, 40 ms RTT ±10 ms, 0.1 % loss), WLAN links
 *              `wlan` (30 Mbit/s, 8 ms RTT ±3 ms, 0.5 % loss): the world of the targets
 *   ideal      today's veth links, shaped to the same rates, no delay, no loss
 * BENCH_LINKS=realistic,ideal (the default) chooses which; the first is the world of the targets.
 */
export type World = 'realistic' | 'ideal';
export type Access = 'cellular' | 'wlan';

export function worlds(): World[] {
  const w = (process.env.BENCH_LINKS ?? 'realistic,ideal').split(',').map((x) => x.trim()).filter((x): x is World => x === 'realistic' || x === 'ideal');
  return w.length > 0 ? w : ['realistic', 'ideal'];
}

export interface LinkProfile {
  rateMbit: number;
  /** One-way delay per direction (half the round trip). */
  delayMs: number;
  jitterMs: number;
  lossPct: number;
}

// TODO(linkemu): take these from src/sim/links.ts once it is on main.
const PROFILES: Record<Access, LinkProfile> = {
  cellular: { rateMbit: 20, delayMs: 20, jitterMs: 5, lossPct: 0.1 },
  wlan: { rateMbit: 30, delayMs: 4, jitterMs: 1.5, lossPct: 0.5 },
};

/** The profile names of a world, for the entries' `links`. */
export function profileNames(w: World): string {
  return w === 'realistic' ? 'realistic (lte + wlan)' : 'ideal';
}

/** Options for Topology.link() of an access link or uplink of the given access in world `w`. */
export function linkOptions(w: World, access: Access, addrs: { a: string[]; b: string[] }): LinkOptions {
  if (w === 'ideal') return { ...addrs, rateMbit: SIM_RATES[access] };
  const p = PROFILES[access];
  const o: LinkOptions & Partial<LinkProfile> = { ...addrs, rateMbit: p.rateMbit, delayMs: p.delayMs, jitterMs: p.jitterMs, lossPct: p.lossPct };
  return o;
}

/** The nominal rate of a path (the sum is what aggregate-of-sum divides by). */
export function rateOf(access: Access): number {
  return SIM_RATES[access];
}

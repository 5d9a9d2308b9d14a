import type { LinkOptions } from '../src/sim/hosts.js';
import { SIM_RATES } from '../src/sim/board.js';
import { profileShape, worldProfiles } from '../src/sim/links.js';

/**
 * The link worlds the benchmarks run in (src/sim/links.ts):
 *   realistic  cellular links are `lte` (20 Mbit/s, 40 ms RTT ±10 ms, 0.1 % loss), WLAN links
 *              `wlan` (30 Mbit/s, 8 ms RTT ±3 ms, 0.5 % loss): the world of the targets
 *   ideal      plain veth links, shaped to the same rates, no delay, no loss
 * BENCH_LINKS=realistic,ideal (the default) chooses which; the first is the world of the targets.
 */
export type World = 'realistic' | 'ideal';
export type Access = 'cellular' | 'wlan';

export function worlds(): World[] {
  const w = (process.env.BENCH_LINKS ?? 'realistic,ideal').split(',').map((x) => x.trim()).filter((x): x is World => x === 'realistic' || x === 'ideal');
  return w.length > 0 ? w : ['realistic', 'ideal'];
}

/** Options for Topology.link() of an access link or uplink of the given access in world `w`. */
export function linkOptions(w: World, access: Access, addrs: { a: string[]; b: string[] }): LinkOptions {
  return { ...addrs, ...profileShape(worldProfiles(w)[access], SIM_RATES[access]) };
}

/** The nominal rate of a path (the sum is what aggregate-of-sum divides by). */
export function rateOf(access: Access): number {
  return SIM_RATES[access];
}

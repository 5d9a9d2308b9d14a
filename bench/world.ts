import type { LinkOptions } from '../src/sim/hosts.js';
import { SIM_RATES } from '../src/sim/board.js';
import { profileShape, worldProfiles, type LinkShape } from '../src/sim/links.js';

/**
 * The link worlds the benchmarks run in (src/sim/links.ts):
 *   realistic  cellular links are `lte` (20 Mbit/s, 40 ms RTT ±10 ms, 0.1 % loss), WLAN links
 *              `wlan` (30 Mbit/s, 8 ms RTT ±3 ms, 0.5 % loss): the world of the targets
 *   ideal      the same rates, no delay, no loss: the rate is enforced by the delay line
 *              (src/sim/links.ts `rateIn: 'delayline'`, delay 0, its 50 ms tail-drop queue)
 * BENCH_LINKS=realistic,ideal (the default) chooses which; the first is the world of the targets.
 *
 * Why not a tbf at the sender's interface on `ideal` (what a rate alone gives, and the sim
 * board's default): with no delay the flows' windows sat in that tbf's 40 ms queue and it dropped
 * what the cell itself sent. One 24 MiB download through the cell on the netns rig: the cell's
 * ran0 tbf dropped 3,183 of 7,304 packets and the cell retransmitted 3,389 segments; through the
 * delay line at the same rate, 16 queue drops and 16 retransmissions (docs/relay.md, "The
 * benchmark rigs"). There the queue is a hop away from both ends, as a radio's is.
 */
export type World = 'realistic' | 'ideal';
export type Access = 'cellular' | 'wlan';

export function worlds(): World[] {
  const w = (process.env.BENCH_LINKS ?? 'realistic,ideal').split(',').map((x) => x.trim()).filter((x): x is World => x === 'realistic' || x === 'ideal');
  return w.length > 0 ? w : ['realistic', 'ideal'];
}

/** Where world `w` enforces its links' rate (see above); buildSim's `rateIn` for the sim board. */
export function rateIn(w: World): 'tbf' | 'delayline' {
  return w === 'ideal' ? 'delayline' : 'tbf';
}

/** The shape of an access link or uplink of the given access in world `w`. */
export function worldShape(w: World, access: Access): LinkShape {
  const s = profileShape(worldProfiles(w)[access], SIM_RATES[access]);
  return rateIn(w) === 'delayline' ? { ...s, rateIn: 'delayline' } : s;
}

/** Options for Topology.link() of an access link or uplink of the given access in world `w`. */
export function linkOptions(w: World, access: Access, addrs: { a: string[]; b: string[] }): LinkOptions {
  return { ...addrs, ...worldShape(w, access) };
}

/** The nominal rate of a path (the sum is what aggregate-of-sum divides by). */
export function rateOf(access: Access): number {
  return SIM_RATES[access];
}

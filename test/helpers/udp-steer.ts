// Shared by the UDP steering kernel tests: the world and its children live in src/sim (the
// `udp` benchmarks use the same ones).
export { CELL_ADDR, WLAN_ADDR, mono, start, steerWorld, stopChild, type Sink } from '../../src/sim/udp-steer.js';

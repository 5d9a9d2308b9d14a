// Test hosts: the same builder the simulated board uses.
export { Topology, Host, sh, netnsUnavailable } from '../../src/sim/hosts.js';

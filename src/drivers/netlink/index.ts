export * from './transport.js';
export * from './channel.js';
export * from './genl.js';
export { MptcpPm, type MptcpPmEvents, type MptcpPmOptions } from './mptcp-pm.js';
export { Rtnl, type RtnlEvents, type RtnlGroup } from './rtnetlink.js';
export * from './uplink-routing.js';
export * from './stack.js';
export * from './sock-diag.js';
export * from './path-manager.js';

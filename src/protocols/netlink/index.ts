export * from './attrs.js';
export * from './message.js';
export * from './genl-ctrl.js';
export * from './rtnetlink.js';
export * from './sock-diag.js';
export * from './nftables.js';

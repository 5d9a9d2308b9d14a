/** RFC 8803 0-RTT TCP Convert Protocol: the pure codec. See docs/convert.md. */
export * from './constants.js';
export * from './codec.js';
export { toIPv6Bytes, fromIPv6Bytes, forbiddenTarget, parseIPv4, parseIPv6, formatIPv6 } from './ip.js';
export { GRANT_MARKER, type ConvertGrant } from './grant.js';

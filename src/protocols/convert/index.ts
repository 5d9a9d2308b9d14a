/** RFC 8803 0-RTT TCP Convert Protocol: the pure codec. See docs/convert.md. */
export * from './constants.js';
export * from './tlv.js';
export { convertFault } from './faults.js';
export * from './decode.js';
export * from './roles.js';
export * from './encode.js';
export { toIPv6Bytes, fromIPv6Bytes, forbiddenTarget, parseIPv4, parseIPv6, formatIPv6 } from './ip.js';
export { GRANT_MARKER, type ConvertGrant } from './grant.js';

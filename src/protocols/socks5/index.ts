/** SOCKS5 (RFC 1928) + username/password (RFC 1929): the pure codec. See docs/convert.md. */
export * from './codec.js';

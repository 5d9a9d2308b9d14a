/** SOCKS5 (RFC 1928) + username/password (RFC 1929): the pure codec and the client handshake. See docs/convert.md. */
export * from './codec.js';
export * from './client.js';

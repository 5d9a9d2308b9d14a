/** TLS: the ClientHello's server name (SNI) for application matching. Pure, no I/O. See docs/proxies.md. */
export * from './client-hello.js';

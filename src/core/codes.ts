/**
 * Every error code duocell can emit, with one line saying what it means.
 * docs/errors.md is generated from this table and a test keeps them in step.
 * Add a code in the section of the layer that raises it.
 */
export const CODES = {
  // core
  DC_INTERNAL: 'an internal invariant failed (a bug)',
  DC_TIMEOUT: 'a waited-for reply or event did not arrive in time',
  DC_ABORTED: 'the operation was cancelled (shutdown or caller)',
  DC_CONFIG_INVALID: 'the configuration or board file is invalid',
  DC_USAGE: 'a command was called with bad arguments',

  // drivers/sockets
  DC_SOCKET_NATIVE: 'the native socket addon is missing or failed to load',
  DC_SOCKET_SYSCALL: 'a socket system call failed (errno attached)',
  DC_SOCKET_NOT_MPTCP: 'the socket is not (or no longer) MPTCP: fallback to TCP',
  DC_SOCKET_ADDRESS: 'an address is not a numeric IPv4/IPv6 address',

  // services/proxy
  DC_PROXY_CONNECT_TIMEOUT: 'the upstream connection was not established in time',
  DC_PROXY_CONNECT_FAILED: 'the upstream connection failed (errno attached)',
  DC_PROXY_IDLE_TIMEOUT: 'a session carried no bytes for longer than the idle timeout',
  DC_PROXY_RESET: 'one side reset the connection; the reset was propagated',
  DC_PROXY_CLIENT_ERROR: 'a client socket failed or misbehaved',
  DC_PROXY_EMFILE: 'out of file descriptors: accepts paused until some are freed',
  DC_PROXY_SHUTDOWN: 'the proxy is draining and accepts no new sessions',
  DC_PROXY_LISTEN: 'a listener could not be opened',

  // test hosts / simulated board
  DC_NETNS_COMMAND: 'an ip/tc/nft command building a test host failed',
  DC_SIM_STATE: 'the simulated board is not in the state the command needs',

  // web
  DC_HTTP_NOT_FOUND: 'no such route or resource',
  DC_HTTP_BAD_REQUEST: 'the request failed validation',
} as const;

export type ErrorCode = keyof typeof CODES;

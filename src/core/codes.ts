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
  DC_POLICY_LIMIT: 'a resource limit of the subscriber\'s policy is reached (M-sessions per UE or per N-server): Convert "Resource Exceeded", SOCKS "not allowed"',
  DC_PROXY_LISTEN: 'a listener could not be opened',
  DC_PROXY_CANDIDATE_DOWN: 'a candidate proxy failed K probes or a run of sessions in a row: new sessions go to the next candidate (logged)',
  DC_BIRD_COMMAND: 'BIRD (the anycast announcement of a concentrator pool) refused a command or its control socket did not answer',
  DC_PROXY_CANDIDATE_UP: 'a candidate proxy answered its probe again and takes new sessions (logged)',

  // protocols/convert + proxy fronts/convert, convert-client (RFC 8803 0-RTT TCP Convert)
  DC_CONVERT_UNSUPPORTED_VERSION: 'a Convert message carried a version other than 1 (Convert error 0)',
  DC_CONVERT_MALFORMED: 'a Convert message could not be parsed or validated (Convert error 1)',
  DC_CONVERT_UNSUPPORTED_MESSAGE: 'a Convert message carried a TLV this side does not accept (Convert error 2)',
  DC_CONVERT_MISSING_COOKIE: 'the converter requires a Cookie TLV and none was sent (Convert error 3)',
  DC_CONVERT_NOT_AUTHORIZED: 'the Cookie TLV is not one the converter accepts (Convert error 32)',
  DC_CONVERT_UNSUPPORTED_TCP_OPTION: 'the Connect TLV asked for a TCP option the converter cannot use (Convert error 33)',
  DC_CONVERT_TRUNCATED: 'the stream ended or timed out before a whole Convert message arrived',
  DC_CONVERT_ENCODE: 'a Convert message could not be encoded (bad address, bad field, too long)',
  DC_CONVERT_PEER_ERROR: 'the converter answered with an Error TLV (Convert error code attached)',
  DC_CONVERT_BACKOFF: 'the converter asked (Resource Exceeded / Network Failure) to wait before new connections: refused locally until then',

  // protocols/socks5 + proxy fronts/socks5 (RFC 1928, RFC 1929)
  DC_SOCKS_VERSION: 'a SOCKS message carried the wrong version byte',
  DC_SOCKS_MALFORMED: 'a SOCKS message could not be parsed or validated',
  DC_SOCKS_NO_ACCEPTABLE_METHOD: 'none of the SOCKS authentication methods offered is acceptable',
  DC_SOCKS_AUTH_FAILED: 'SOCKS username/password authentication failed',
  DC_SOCKS_COMMAND_UNSUPPORTED: 'the SOCKS command is not supported (only CONNECT is)',
  DC_SOCKS_ADDRESS_TYPE: 'the SOCKS address type is not supported',
  DC_SOCKS_TRUNCATED: 'the stream ended or timed out before a whole SOCKS message arrived',
  DC_SOCKS_ENCODE: 'a SOCKS message could not be encoded (bad address, field too long)',
  DC_SOCKS_PEER_REPLY: 'the SOCKS server answered with a failure reply (reply code attached)',
  DC_SOCKS_PEER_AUTH: 'the SOCKS5 proxy accepted none of the methods we offered, or refused our username/password (RFC 1929)',
  DC_SOCKS_PEER_NOT_ALLOWED: 'the SOCKS5 proxy refused the CONNECT by its ruleset (reply 02)',
  DC_SOCKS_PEER_UNREACHABLE: 'the SOCKS5 proxy could not reach the server (reply 03 network / 04 host unreachable, 06 TTL expired)',
  DC_SOCKS_PEER_REFUSED: 'the server refused the SOCKS5 proxy\'s connection (reply 05)',
  DC_SOCKS_PEER_ADDRESS_TYPE: 'the SOCKS5 proxy does not take the target\'s address type (reply 08): the next candidate is tried',

  // protocols/tls + the transparent front's SNI peek (RFC 8446 records and ClientHello, RFC 6066 server_name)
  DC_TLS_NOT_CLIENT_HELLO: 'the first bytes of a connection are not a TLS ClientHello: selection without SNI',
  DC_TLS_MALFORMED: 'a TLS ClientHello could not be parsed (bad framing or lengths): selection without SNI',
  DC_TLS_TOO_LARGE: 'a TLS ClientHello is larger than 16 KiB or spans more than 64 records: not read, selection without SNI',
  DC_TLS_SERVER_NAME: 'the ClientHello\'s host_name is not an ASCII DNS name: selection without SNI',
  DC_TLS_SNI_TIMEOUT: 'the client sent no whole ClientHello within the SNI wait bound (a server-speaks-first protocol?): selection without SNI',

  // drivers/nft + services/intercept, services/udp
  DC_NFT_APPLY: 'nftables refused a ruleset or command; the previous ruleset stays in force',
  DC_ROUTE_COMMAND: 'a policy-routing command (ip rule/route) for steering failed',
  DC_STEERING_SYSCTL: 'explicit steering: the MP_CAPABLE C-flag sysctl (net.mptcp.allow_join_initial_addr_port) could not be set or restored',
  DC_STEERING_ENDPOINT: 'explicit steering: a signal endpoint (ADD_ADDR of the unique address) or the subflow limit could not be set or removed',

  // test hosts / simulated board
  DC_NETNS_COMMAND: 'an ip/tc/nft command building a test host failed',
  DC_SIM_STATE: 'the simulated board is not in the state the command needs',
  DC_LINK_INVALID: 'an emulated link shape is impossible (negative delay or jitter, loss outside 0..100 %, a rate of 0) or names an unknown profile',
  DC_LINK_EMULATOR: 'a link\'s delay line (build/delayline) failed to start or exited',

  // store (SQLite state)
  DC_STORE_OPEN: 'the state database could not be opened, or is not a duocell database',
  DC_STORE_MIGRATION: 'a schema migration failed; the database stays at the previous version',
  DC_STORE_SCHEMA_NEWER: 'the database was written by a newer duocell (unknown schema version)',
  DC_STORE_CONSTRAINT: 'a write broke a uniqueness or reference constraint',
  DC_STORE_NOT_FOUND: 'no such subscriber, policy or record',
  DC_STORE_INVALID: 'a value to be stored is invalid (address, prefix, MAC, limit, mode, name)',
  DC_STORE_IN_USE: 'the policy is still used by subscribers and cannot be removed',
  DC_STORE_BUSY: 'the database stayed locked by another process',

  // ota (signed policy bundles)
  DC_OTA_MALFORMED: 'the bundle envelope is not well-formed (JSON, size, fields, encoding)',
  DC_OTA_UNSIGNED: 'the bundle carries no signature',
  DC_OTA_UNTRUSTED_KEY: 'the bundle is signed by a key this box does not trust',
  DC_OTA_BAD_SIGNATURE: 'the bundle signature does not verify',
  DC_OTA_SCHEMA_INVALID: 'the signed document fails the bundle schema',
  DC_OTA_CONTENT_INVALID: 'the document is schema-valid but inconsistent (unknown policy, duplicate identifier)',
  DC_OTA_EXPIRED: 'the bundle has expired',
  DC_OTA_NOT_YET_VALID: 'the bundle is issued in the future (beyond the allowed clock skew)',
  DC_OTA_FOREIGN_TARGET: 'the bundle targets other cells, not this one',
  DC_OTA_ROLLBACK: 'the bundle version is older than or equal to the newest applied (anti-rollback)',
  DC_OTA_BASE_MISMATCH: 'the delta bundle is against a base version that is not the current one',
  DC_OTA_NO_PREVIOUS: 'there is no previous version to roll back to',
  DC_OTA_FETCH: 'fetching the bundle URL failed (network error or HTTP status)',
  DC_OTA_KEY_INVALID: 'a key is not a valid Ed25519 key',

  // netlink (protocols/netlink, drivers/netlink: rtnetlink, generic netlink, mptcp_pm)
  DC_NETLINK_MALFORMED: 'a netlink message or attribute is malformed (bad length, missing or wrongly sized attribute)',
  DC_NETLINK_INVALID_ARG: 'a value given to a netlink encoder is out of range (attribute type, integer, address)',
  DC_NETLINK_SOCKET: 'opening, binding or sending on a netlink socket failed (errno attached)',
  DC_NETLINK_ERRNO: 'the kernel answered a netlink request with an error (errno attached)',
  DC_NETLINK_TIMEOUT: 'the kernel did not answer a netlink request in time',
  DC_NETLINK_CLOSED: 'the netlink socket was closed while a request was pending',
  DC_NETLINK_FAMILY_MISSING: 'a generic netlink family (mptcp_pm, nl80211) is not registered in this kernel',
  DC_MPTCP_PM_EVENT_INVALID: 'an mptcp_pm event lacks a required attribute or has a wrong one (dropped)',

  // modem (protocols/at, protocols/qmi, drivers/modem): local faults vs what the modem said
  DC_AT_PARSE: 'an AT reply did not have the documented form (local)',
  DC_AT_TIMEOUT: 'an AT command got no final result code in time (local)',
  DC_AT_ERROR: 'the modem answered ERROR (or BUSY/NO ANSWER/NO DIALTONE) to an AT command',
  DC_AT_CME_ERROR: 'the modem answered +CME ERROR (equipment error; number in detail.cme)',
  DC_AT_CMS_ERROR: 'the modem answered +CMS ERROR (message service error; number in detail.cms)',
  DC_AT_NO_CARRIER: 'the modem answered NO CARRIER (connection dropped or refused)',
  DC_QMI_FRAME_TRUNCATED: 'a QMUX frame is shorter than its length field says (local)',
  DC_QMI_FRAME_INVALID: 'a QMUX frame or QMI header is malformed: marker, flags or lengths (local)',
  DC_QMI_TLV_OVERFLOW: 'a QMI TLV or a field inside it runs past the end of its container (local)',
  DC_QMI_TLV_MISSING: 'a mandatory QMI TLV is absent from a message (local)',
  DC_QMI_UNKNOWN_MESSAGE: 'no description for this QMI service/message id (local)',
  DC_QMI_ENCODE: 'a value does not fit the QMI field it is written to (local)',
  DC_QMI_TIMEOUT: 'a QMI request got no response in time (local)',
  DC_QMI_RESULT: 'the modem answered a QMI request with a failure result (QMI error in detail)',
  DC_MODEM_PORT: 'a modem port could not be opened, failed, or vanished',
  DC_MODEM_PROBE: 'no port answered AT or QMI during probing',
  DC_MODEM_CLOSED: 'the modem client or port was closed while a request was in flight',
  DC_MODEM_PIN_REQUIRED: 'the SIM needs a PIN and none is configured',
  DC_MODEM_PIN_UNSAFE: 'PIN entry refused: too few attempts left, trying could lock the SIM',
  DC_MODEM_PIN_WRONG: 'the SIM rejected the configured PIN',
  DC_MODEM_SIM: 'the SIM is absent, blocked (PUK) or failed',
  DC_MODEM_REGISTRATION: 'the modem is not registered (lost, denied or searching too long)',
  DC_MODEM_CONNECT: 'starting the data session failed',
  DC_MODEM_DISCONNECTED: 'the data session dropped',
  DC_AT_GARBAGE: 'bytes from the AT port that are not AT text (control or 8-bit bytes) were counted and dropped (local)',
  DC_AT_OVERFLOW: 'an AT line longer than the framer bound was dropped up to its terminator (local)',
  DC_AT_RESYNC: 'after an AT command timed out, the port could not be brought back in step (late reply not drained, marker unanswered)',
  DC_MODEM_NETIF: 'configuring the data interface from the session settings (raw IP, MTU, addresses, link) failed',
  DC_MODEM_CONTROL: 'the configured modem control protocol is not supported by this build',
  DC_MODEM_DHCP: 'the DHCP lease on an AT-controlled modem\'s USB network interface (ECM/NCM) could not be obtained, was lost, or the DHCP client is missing',
  DC_MODEM_AT_REFUSED: 'an AT pass-through command was refused: not AT, too long, several lines, or one that would break the service\'s own modem session',

  // drivers/wlan (nl80211)
  DC_WLAN_UNAVAILABLE: 'nl80211 is absent (no cfg80211): link state from rtnetlink only, radio quality unknown',
  DC_WLAN_NO_INTERFACE: 'no such wireless interface',
  DC_WLAN_CONFIG_INVALID: 'the WLAN network settings (SSID, passphrase) are out of 802.11 limits (local)',
  DC_WLAN_CTRL_MALFORMED: 'a wpa_supplicant control-interface reply could not be parsed (local)',
  DC_WLAN_CTRL_FAILED: 'wpa_supplicant refused a control-interface command (FAIL, UNKNOWN COMMAND)',
  DC_WLAN_CTRL_UNREACHABLE: 'wpa_supplicant\'s control socket is absent or does not answer',
  DC_WLAN_DHCP: 'the WLAN uplink got no DHCP lease (no answer, client missing or died) or lost it',

  // services/paths, services/pm
  DC_PATH_UNKNOWN: 'no such path (uplink)',
  DC_PATH_ROUTING: 'installing or restoring an uplink routing table or source rule failed',
  DC_PM_SYNC: 'keeping kernel MPTCP endpoints or limits in step with the paths failed',
  DC_PM_SUBFLOW_UNKNOWN: 'no established MPTCP subflow with these addresses and ports among the connections the path manager follows',
  DC_PROBE_MALFORMED: 'a path probe datagram (or a probe setting) is malformed: the reply is dropped',
  DC_PROBE_PING_DENIED: 'the kernel refuses ping sockets (ICMP echo probes) to the service: its group is outside net.ipv4.ping_group_range (install the sysctl drop-in)',
  DC_UDP_STEER: 'installing the UDP steering ruleset or moving UDP flows (conntrack) failed',

  // web
  DC_HTTP_NOT_FOUND: 'no such route or resource',
  DC_HTTP_BAD_REQUEST: 'the request failed validation',

  // web (HTTP API, admin auth, event stream)
  DC_WEB_AUTH_REQUIRED: 'no valid admin session: log in first',
  DC_WEB_BAD_CREDENTIALS: 'the admin password is wrong',
  DC_WEB_CSRF: 'the CSRF token is missing or does not match the session',
  DC_WEB_HOST: 'the Host header names no address this box answers to (DNS-rebinding guard)',
  DC_WEB_RATE_LIMITED: 'too many failed logins from this client: retry later',
  DC_WEB_NOT_SET_UP: 'no admin password is set yet: the first-boot set-up is needed',
  DC_WEB_ALREADY_SET_UP: 'the admin password is already set',
  DC_WEB_FIRST_BOOT_SECRET: 'the first-boot secret is missing or wrong',
  DC_WEB_WEAK_PASSWORD: 'the new password does not meet the minimum rules',
  DC_WEB_PAYLOAD_TOO_LARGE: 'the request body is larger than this route accepts',
  DC_WEB_UNSUPPORTED_MEDIA: 'the request body has a content type this route does not accept',
  DC_WEB_UNAVAILABLE: 'that part of the box (modem, WLAN) is not present or not running',
  DC_WEB_BUSY: 'too many event-stream clients are connected',

  // board / drivers/udev
  DC_UDEV_QUERY: 'udevadm could not describe a device (modem port discovery)',

  // services/restore (kernel ledger)
  DC_KERNEL_RESTORE: 'a kernel setting duocell changed (sysctl, MPTCP limits or endpoint, uplink rule or route) could not be restored; the ledger keeps it for the next start',
  DC_KERNEL_FOREIGN: 'an MPTCP endpoint duocell did not make was left alone (not deleted, not re-flagged)',

  // wiring/first-boot (device certificate)
  DC_FIRST_BOOT_TLS: 'the per-device HTTPS certificate could not be made or read (openssl missing?): the page stays on plain HTTP',
  // services/proxy target filter
  DC_TARGET_FORBIDDEN: 'the relay target is the box itself, one of its listeners, or a special-purpose address (SOCKS5 reply 02, Convert error 32, reset)',
} as const;

export type ErrorCode = keyof typeof CODES;

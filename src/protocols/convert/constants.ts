/**
 * RFC 8803 (0-RTT TCP Convert Protocol) numbers, as registered by IANA in
 * "TCP Convert Protocol (Convert) Parameters".
 */

/** The only version this codec speaks (RFC 8803 section 4.1). */
export const CONVERT_VERSION = 1;
/** Fixed-header magic number: 0x2263 = 8803 in decimal. */
export const CONVERT_MAGIC = 0x2263;
/** The fixed header is one 32-bit word. */
export const CONVERT_HEADER_BYTES = 4;
/** Total Length is an 8-bit count of 32-bit words: no message is longer than 255 * 4 bytes. */
export const CONVERT_MAX_MESSAGE_BYTES = 255 * 4;
/** IANA port for the Convert service (tcp/5124). */
export const CONVERT_DEFAULT_PORT = 5124;

/** TLV type codes (Convert TLVs registry). */
export const TlvType = {
  INFO: 0x01,
  CONNECT: 0x0a,
  EXTENDED_TCP_HEADER: 0x14,
  SUPPORTED_TCP_EXTENSIONS: 0x15,
  COOKIE: 0x16,
  ERROR: 0x1e,
  /** Private Use (IANA range 192-255): the duocell grant extension, see grant.ts. */
  DUOCELL_GRANT: 0xd0,
} as const;
export type TlvTypeCode = (typeof TlvType)[keyof typeof TlvType];

/**
 * Error TLV codes (Convert Errors registry). Ranges: 0-31 message validation and processing,
 * 32-63 client side, 64-95 converter side, 96-127 caused by the destination server.
 */
export const ConvertErrorCode = {
  UNSUPPORTED_VERSION: 0,
  MALFORMED_MESSAGE: 1,
  UNSUPPORTED_MESSAGE: 2,
  MISSING_COOKIE: 3,
  NOT_AUTHORIZED: 32,
  UNSUPPORTED_TCP_OPTION: 33,
  RESOURCE_EXCEEDED: 64,
  NETWORK_FAILURE: 65,
  CONNECTION_RESET: 96,
  DESTINATION_UNREACHABLE: 97,
} as const;
export type ConvertErrorCodeValue = (typeof ConvertErrorCode)[keyof typeof ConvertErrorCode];

/** IANA "Convert TLVs" registry: 192-255 are Reserved for Private Use. */
export const TLV_PRIVATE_USE_MIN = 192;

export const CONVERT_ERROR_NAMES: Readonly<Record<number, string>> = {
  0: 'Unsupported Version',
  1: 'Malformed Message',
  2: 'Unsupported Message',
  3: 'Missing Cookie',
  32: 'Not Authorized',
  33: 'Unsupported TCP Option',
  64: 'Resource Exceeded',
  65: 'Network Failure',
  96: 'Connection Reset',
  97: 'Destination Unreachable',
};

export function convertErrorName(code: number): string {
  return CONVERT_ERROR_NAMES[code] ?? `Unassigned error ${code}`;
}

/** TCP option kinds that RFC 8803 forbids in a Connect TLV (no length byte) or in the
 * Supported TCP Extensions list (EOL, NOP, MSS are supported by every TCP). */
export const TCP_OPT_EOL = 0;
export const TCP_OPT_NOP = 1;
export const TCP_OPT_MSS = 2;
export const TCP_OPT_WSCALE = 3;
export const TCP_OPT_SACK_PERM = 4;
export const TCP_OPT_TIMESTAMPS = 8;
export const TCP_OPT_MPTCP = 30;
export const TCP_OPT_FASTOPEN = 34;

/**
 * RFC 8803 Convert TLVs as values: what the decoder produces and the encoder takes (the wire
 * layout is drawn in decode.ts).
 */
import type { ConvertGrant } from './grant.js';

/** One TCP option as carried in a Connect TLV: kind, and the bytes after kind+length. */
export interface TcpOption {
  kind: number;
  data: Buffer;
}

export interface InfoTlv {
  type: 'info';
}
export interface ConnectTlv {
  type: 'connect';
  /** Dotted IPv4 (sent IPv4-mapped) or RFC 5952 IPv6. */
  address: string;
  port: number;
  tcpOptions: TcpOption[];
}
export interface ExtendedTcpHeaderTlv {
  type: 'extended-tcp-header';
  /** Raw TCP options of the server's SYN+ACK (zero padding included when decoded). */
  tcpOptions: Buffer;
}
export interface SupportedTcpExtensionsTlv {
  type: 'supported-tcp-extensions';
  kinds: number[];
}
export interface CookieTlv {
  type: 'cookie';
  /** The opaque value. Decoded cookies include the zero padding to the 32-bit boundary. */
  cookie: Buffer;
}
export interface ErrorTlv {
  type: 'error';
  code: number;
  /** Error-specific value (zero padding included when decoded). */
  value: Buffer;
}
/** Client → converter: "tell me the grant" (duocell extension, Private Use type 0xD0). */
export interface GrantRequestTlv {
  type: 'grant-request';
}
/** Converter → client: the resource policy granted to this session (duocell extension). */
export interface GrantTlv {
  type: 'grant';
  grant: ConvertGrant;
}
/** Any other Private Use TLV (types 192-255), kept raw: `value` is everything after type and length. */
export interface PrivateTlv {
  type: 'private';
  code: number;
  value: Buffer;
}
export type ConvertTlv =
  | InfoTlv
  | ConnectTlv
  | ExtendedTcpHeaderTlv
  | SupportedTcpExtensionsTlv
  | CookieTlv
  | ErrorTlv
  | GrantRequestTlv
  | GrantTlv
  | PrivateTlv;

export interface ConvertMessage {
  tlvs: ConvertTlv[];
}

export type ConvertParse = { need: number } | { message: ConvertMessage; consumed: number };

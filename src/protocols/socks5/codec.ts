/**
 * SOCKS Protocol Version 5 (RFC 1928) and its username/password sub-negotiation
 * (RFC 1929): bytes ⇄ messages, both directions. Pure: no I/O.
 *
 *   client                                   server
 *   greeting   05 NMETHODS METHODS...   →
 *                                       ←    05 METHOD            (FF: none acceptable)
 *   [RFC 1929] 01 ULEN UNAME PLEN PASSWD →
 *                                       ←    01 STATUS            (00: success)
 *   request    05 CMD 00 ATYP ADDR PORT →
 *                                       ←    05 REP 00 ATYP ADDR PORT
 *
 *   ATYP 01: 4-byte IPv4 · 03: 1-byte length + domain name · 04: 16-byte IPv6
 *
 * Every parser is incremental: `{ need }` (at least this many bytes in total), or
 * `{ value, consumed }`, or it throws a DuocellError (DC_SOCKS_*). When the fault is in a
 * request, `detail.socksReply` is the REP code a server should answer with.
 */
import { DuocellError, type ErrorCode } from '../../core/errors.js';
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from '../convert/ip.js';

export const SOCKS_VERSION = 5;
export const USERPASS_VERSION = 1;

export const SocksMethod = {
  NO_AUTH: 0x00,
  GSSAPI: 0x01,
  USERPASS: 0x02,
  NO_ACCEPTABLE: 0xff,
} as const;

export const SocksCommand = {
  CONNECT: 0x01,
  BIND: 0x02,
  UDP_ASSOCIATE: 0x03,
} as const;

export const SocksAddressType = {
  IPV4: 0x01,
  DOMAIN: 0x03,
  IPV6: 0x04,
} as const;

/** REP field of a reply (RFC 1928 section 6). */
export const SocksReply = {
  SUCCEEDED: 0x00,
  GENERAL_FAILURE: 0x01,
  NOT_ALLOWED: 0x02,
  NETWORK_UNREACHABLE: 0x03,
  HOST_UNREACHABLE: 0x04,
  CONNECTION_REFUSED: 0x05,
  TTL_EXPIRED: 0x06,
  COMMAND_NOT_SUPPORTED: 0x07,
  ADDRESS_TYPE_NOT_SUPPORTED: 0x08,
} as const;

export const SOCKS_REPLY_NAMES: Readonly<Record<number, string>> = {
  0: 'succeeded',
  1: 'general SOCKS server failure',
  2: 'connection not allowed by ruleset',
  3: 'network unreachable',
  4: 'host unreachable',
  5: 'connection refused',
  6: 'TTL expired',
  7: 'command not supported',
  8: 'address type not supported',
};

export type SocksParse<T> = { need: number } | { value: T; consumed: number };

export interface SocksAddress {
  type: 'ipv4' | 'ipv6' | 'domain';
  /** Dotted IPv4, RFC 5952 IPv6, or the domain name as sent. */
  host: string;
}

export interface SocksRequest extends SocksAddress {
  command: number;
  port: number;
}

export interface SocksReplyMessage {
  reply: number;
  address: SocksAddress;
  port: number;
}

function fault(code: ErrorCode, message: string, extra: Record<string, unknown> = {}): DuocellError {
  return new DuocellError(code, message, { origin: 'local', ...extra });
}

const asBuffer = (b: Uint8Array): Buffer =>
  Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A domain name as we accept it: LDH labels (plus '_'), ≤ 63 bytes each, optional final dot. */
export function isValidDomain(name: string): boolean {
  if (name.length === 0 || name.length > 255) return false;
  const body = name.endsWith('.') ? name.slice(0, -1) : name;
  if (body.length === 0) return false;
  return body.split('.').every((l) => l.length >= 1 && l.length <= 63 && /^[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?$/.test(l));
}

// ───────────────────────────── parsers ─────────────────────────────

/** Client greeting: 05 NMETHODS METHODS. */
export function parseGreeting(input: Uint8Array): SocksParse<{ methods: number[] }> {
  const b = asBuffer(input);
  if (b.length < 1) return { need: 1 };
  if (b[0] !== SOCKS_VERSION) throw fault('DC_SOCKS_VERSION', `SOCKS version ${b[0]} (want 5)`, { version: b[0] });
  if (b.length < 2) return { need: 2 };
  const n = b[1]!;
  if (n === 0) throw fault('DC_SOCKS_MALFORMED', 'greeting offers no method');
  if (b.length < 2 + n) return { need: 2 + n };
  return { value: { methods: [...b.subarray(2, 2 + n)] }, consumed: 2 + n };
}

/** Server method selection: 05 METHOD. */
export function parseMethodSelection(input: Uint8Array): SocksParse<{ method: number }> {
  const b = asBuffer(input);
  if (b.length < 1) return { need: 1 };
  if (b[0] !== SOCKS_VERSION) throw fault('DC_SOCKS_VERSION', `SOCKS version ${b[0]} (want 5)`, { version: b[0] });
  if (b.length < 2) return { need: 2 };
  return { value: { method: b[1]! }, consumed: 2 };
}

/** RFC 1929 request: 01 ULEN UNAME PLEN PASSWD (names and passwords as UTF-8). */
export function parseUserPassRequest(input: Uint8Array): SocksParse<{ username: string; password: string }> {
  const b = asBuffer(input);
  if (b.length < 1) return { need: 1 };
  if (b[0] !== USERPASS_VERSION) {
    throw fault('DC_SOCKS_VERSION', `username/password version ${b[0]} (want 1)`, { version: b[0] });
  }
  if (b.length < 2) return { need: 2 };
  const ulen = b[1]!;
  if (ulen === 0) throw fault('DC_SOCKS_MALFORMED', 'empty username');
  if (b.length < 3 + ulen) return { need: 3 + ulen };
  const plen = b[2 + ulen]!;
  if (plen === 0) throw fault('DC_SOCKS_MALFORMED', 'empty password');
  const end = 3 + ulen + plen;
  if (b.length < end) return { need: end };
  let username: string;
  let password: string;
  try {
    username = utf8.decode(b.subarray(2, 2 + ulen));
    password = utf8.decode(b.subarray(3 + ulen, end));
  } catch (e) {
    throw fault('DC_SOCKS_MALFORMED', 'username or password is not UTF-8', { cause: e });
  }
  return { value: { username, password }, consumed: end };
}

/** RFC 1929 reply: 01 STATUS. */
export function parseUserPassReply(input: Uint8Array): SocksParse<{ status: number }> {
  const b = asBuffer(input);
  if (b.length < 1) return { need: 1 };
  if (b[0] !== USERPASS_VERSION) {
    throw fault('DC_SOCKS_VERSION', `username/password version ${b[0]} (want 1)`, { version: b[0] });
  }
  if (b.length < 2) return { need: 2 };
  return { value: { status: b[1]! }, consumed: 2 };
}

/** ATYP + address + port starting at `off`; `replyOnFault` goes into detail.socksReply. */
function parseAddressPort(
  b: Buffer,
  off: number,
  replyOnFault: boolean,
): SocksParse<{ address: SocksAddress; port: number }> {
  if (b.length < off + 1) return { need: off + 1 };
  const atyp = b[off]!;
  const rep = (r: number): Record<string, unknown> => (replyOnFault ? { socksReply: r } : {});
  let address: SocksAddress;
  let end: number;
  switch (atyp) {
    case SocksAddressType.IPV4:
      end = off + 1 + 4;
      if (b.length < end + 2) return { need: end + 2 };
      address = { type: 'ipv4', host: formatIPv4(b, off + 1) };
      break;
    case SocksAddressType.IPV6:
      end = off + 1 + 16;
      if (b.length < end + 2) return { need: end + 2 };
      address = { type: 'ipv6', host: formatIPv6(b, off + 1) };
      break;
    case SocksAddressType.DOMAIN: {
      if (b.length < off + 2) return { need: off + 2 };
      const n = b[off + 1]!;
      if (n === 0) throw fault('DC_SOCKS_MALFORMED', 'empty domain name', rep(SocksReply.GENERAL_FAILURE));
      end = off + 2 + n;
      if (b.length < end + 2) return { need: end + 2 };
      const name = b.toString('latin1', off + 2, end);
      if (!isValidDomain(name)) {
        throw fault('DC_SOCKS_MALFORMED', `invalid domain name ${JSON.stringify(name)}`, rep(SocksReply.GENERAL_FAILURE));
      }
      address = { type: 'domain', host: name };
      break;
    }
    default:
      throw fault('DC_SOCKS_ADDRESS_TYPE', `address type ${atyp} is not supported`, {
        atyp,
        ...rep(SocksReply.ADDRESS_TYPE_NOT_SUPPORTED),
      });
  }
  return { value: { address, port: b.readUInt16BE(end) }, consumed: end + 2 };
}

/** Client request: 05 CMD 00 ATYP DST.ADDR DST.PORT. */
export function parseRequest(input: Uint8Array): SocksParse<SocksRequest> {
  const b = asBuffer(input);
  if (b.length < 1) return { need: 1 };
  if (b[0] !== SOCKS_VERSION) {
    throw fault('DC_SOCKS_VERSION', `SOCKS version ${b[0]} (want 5)`, {
      version: b[0],
      socksReply: SocksReply.GENERAL_FAILURE,
    });
  }
  if (b.length < 2) return { need: 2 };
  const command = b[1]!;
  if (command < SocksCommand.CONNECT || command > SocksCommand.UDP_ASSOCIATE) {
    throw fault('DC_SOCKS_COMMAND_UNSUPPORTED', `SOCKS command ${command} is not defined`, {
      command,
      socksReply: SocksReply.COMMAND_NOT_SUPPORTED,
    });
  }
  if (b.length < 3) return { need: 3 };
  if (b[2] !== 0) {
    throw fault('DC_SOCKS_MALFORMED', `reserved byte is ${b[2]}, not 0`, { socksReply: SocksReply.GENERAL_FAILURE });
  }
  const r = parseAddressPort(b, 3, true);
  if ('need' in r) return r;
  return { value: { command, ...r.value.address, port: r.value.port }, consumed: r.consumed };
}

/** Server reply: 05 REP 00 ATYP BND.ADDR BND.PORT. */
export function parseReply(input: Uint8Array): SocksParse<SocksReplyMessage> {
  const b = asBuffer(input);
  if (b.length < 1) return { need: 1 };
  if (b[0] !== SOCKS_VERSION) throw fault('DC_SOCKS_VERSION', `SOCKS version ${b[0]} (want 5)`, { version: b[0] });
  if (b.length < 3) return { need: 3 };
  if (b[2] !== 0) throw fault('DC_SOCKS_MALFORMED', `reserved byte is ${b[2]}, not 0`);
  const r = parseAddressPort(b, 3, false);
  if ('need' in r) return r;
  return { value: { reply: b[1]!, address: r.value.address, port: r.value.port }, consumed: r.consumed };
}

// ───────────────────────────── encoders ─────────────────────────────

function encodeFault(message: string): DuocellError {
  return fault('DC_SOCKS_ENCODE', message);
}

export function encodeGreeting(methods: readonly number[]): Buffer {
  if (methods.length < 1 || methods.length > 255) throw encodeFault(`${methods.length} methods`);
  return Buffer.from([SOCKS_VERSION, methods.length, ...methods]);
}

export function encodeMethodSelection(method: number): Buffer {
  return Buffer.from([SOCKS_VERSION, method & 0xff]);
}

export function encodeUserPassRequest(username: string, password: string): Buffer {
  const u = Buffer.from(username, 'utf8');
  const p = Buffer.from(password, 'utf8');
  if (u.length < 1 || u.length > 255) throw encodeFault(`username of ${u.length} bytes`);
  if (p.length < 1 || p.length > 255) throw encodeFault(`password of ${p.length} bytes`);
  return Buffer.concat([Buffer.from([USERPASS_VERSION, u.length]), u, Buffer.from([p.length]), p]);
}

export function encodeUserPassReply(status: number): Buffer {
  return Buffer.from([USERPASS_VERSION, status & 0xff]);
}

/** ATYP + address bytes for a host: numeric IPv4/IPv6, else a domain name. */
function addressBytes(host: string): Buffer {
  const v4 = parseIPv4(host);
  if (v4 !== undefined) return Buffer.from([SocksAddressType.IPV4, ...v4]);
  const v6 = parseIPv6(host);
  if (v6 !== undefined) return Buffer.from([SocksAddressType.IPV6, ...v6]);
  if (!isValidDomain(host)) throw encodeFault(`not an address or domain name: ${JSON.stringify(host)}`);
  return Buffer.concat([Buffer.from([SocksAddressType.DOMAIN, host.length]), Buffer.from(host, 'latin1')]);
}

function portBytes(port: number): Buffer {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw encodeFault(`bad port ${port}`);
  const b = Buffer.alloc(2);
  b.writeUInt16BE(port);
  return b;
}

export function encodeRequest(command: number, host: string, port: number): Buffer {
  return Buffer.concat([Buffer.from([SOCKS_VERSION, command & 0xff, 0]), addressBytes(host), portBytes(port)]);
}

/** A reply; a failure reply binds 0.0.0.0:0 unless told otherwise. */
export function encodeReply(reply: number, bound: { host: string; port: number } = { host: '0.0.0.0', port: 0 }): Buffer {
  return Buffer.concat([Buffer.from([SOCKS_VERSION, reply & 0xff, 0]), addressBytes(bound.host), portBytes(bound.port)]);
}

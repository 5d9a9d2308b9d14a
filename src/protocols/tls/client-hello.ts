/**
 * The server name of a TLS ClientHello, read from the first bytes a client sends: pure, no I/O.
 * The transparent front peeks these bytes (they stay in the kernel) to match applications by
 * TLS SNI (docs/proxies.md "Matching by TLS SNI").
 *
 *   stream prefix ──► record header (5) ──► fragment ──► … ──► handshake message (4 + length)
 *                     type 22, 3.x, ≤ 2^14     reassembled across records and TCP segments
 *                                                          │ msg_type 1 (client_hello)
 *                                                          ▼
 *      legacy_version, random, session_id, cipher_suites, compression_methods, extensions
 *                                                                    │ server_name (0)
 *                                                                    ▼ host_name (0)
 *                                                          "video.example" (lower case)
 *
 * Framing: TLS 1.0–1.3 records (RFC 8446 §5.1: content type, legacy_record_version 0x03xx,
 * length ≤ 2^14); a handshake message may span records, and no other record type may come
 * between its fragments. ClientHello: RFC 8446 §4.1.2 (the TLS 1.0–1.2 layout is the same, and
 * extensions may be absent there). server_name: RFC 6066 §3 (a list; at most one host_name,
 * ASCII, no trailing dot — a trailing dot is tolerated and removed).
 *
 * ECH (draft-ietf-tls-esni): with Encrypted Client Hello the name here is the OUTER one (the
 * client-facing server's public name); the real name is encrypted and is never seen. `ech` says
 * that the ClientHello carried the encrypted_client_hello extension.
 *
 * Bounded: a handshake message above MAX_CLIENT_HELLO octets, or a prefix of more than
 * MAX_PREFIX octets (a hello cut in many tiny records), is refused (DC_TLS_TOO_LARGE) before it
 * is buffered. Never throws on any input: every outcome is a value.
 */

/** The largest ClientHello (handshake header + body) read: 16 KiB. */
export const MAX_CLIENT_HELLO = 16 * 1024;
/** The most records a ClientHello may span, and the longest stream prefix read for one. */
export const MAX_HELLO_RECORDS = 64;
export const MAX_PREFIX = MAX_CLIENT_HELLO + 5 * MAX_HELLO_RECORDS;

const RECORD_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
/** encrypted_client_hello (draft-ietf-tls-esni-18 §11.1 code point). */
export const EXT_ECH = 0xfe0d;
const NAME_HOST = 0;
const MAX_RECORD = 1 << 14;

export type TlsCode = 'DC_TLS_NOT_CLIENT_HELLO' | 'DC_TLS_MALFORMED' | 'DC_TLS_TOO_LARGE' | 'DC_TLS_SERVER_NAME';

export interface ClientHelloInfo {
  /** The host_name, lower case, no trailing dot; null when the ClientHello names none. */
  serverName: string | null;
  /** The ClientHello carried encrypted_client_hello: serverName is the outer (public) name. */
  ech: boolean;
  /** legacy_version of the ClientHello (0x0303 for TLS 1.2 and 1.3). */
  version: number;
  /** Octets of the stream the ClientHello's records occupy. */
  consumed: number;
}

export type ClientHelloResult =
  /** The prefix is too short: at least `need` octets of the stream are needed to say more. */
  | { kind: 'need-more'; need: number }
  /** The stream does not start with a TLS ClientHello (another protocol). */
  | { kind: 'not-tls'; code: 'DC_TLS_NOT_CLIENT_HELLO'; reason: string }
  /** It is a TLS handshake, but broken or too large. */
  | { kind: 'invalid'; code: Exclude<TlsCode, 'DC_TLS_NOT_CLIENT_HELLO'>; reason: string }
  | ({ kind: 'hello' } & ClientHelloInfo);

const notTls = (reason: string): ClientHelloResult => ({ kind: 'not-tls', code: 'DC_TLS_NOT_CLIENT_HELLO', reason });
const invalid = (code: Exclude<TlsCode, 'DC_TLS_NOT_CLIENT_HELLO'>, reason: string): ClientHelloResult => ({ kind: 'invalid', code, reason });

/**
 * Read the ClientHello at the start of `input` (the first octets a client sent, as many as
 * have arrived). Octets after the ClientHello are ignored.
 */
export function parseClientHello(input: Uint8Array): ClientHelloResult {
  // 1. Records: reassemble the first handshake message.
  let pos = 0;
  let msgLen = -1; // total handshake message length (header included), once its header is in
  const parts: Uint8Array[] = [];
  let have = 0;
  let records = 0;
  for (;;) {
    if (input.length < pos + 5) {
      // The first byte alone can already say "not TLS".
      if (pos === 0 && input.length >= 1 && input[0] !== RECORD_HANDSHAKE) return notTls(`first octet ${input[0]} is not a handshake record (22)`);
      if (pos === 0 && input.length >= 2 && input[1] !== 3) return notTls(`record version ${input[1]}.x is not TLS (3.x)`);
      return { kind: 'need-more', need: pos + 5 };
    }
    const type = input[pos]!;
    const major = input[pos + 1]!;
    const minor = input[pos + 2]!;
    const len = (input[pos + 3]! << 8) | input[pos + 4]!;
    if (pos === 0) {
      if (type !== RECORD_HANDSHAKE) return notTls(`first octet ${type} is not a handshake record (22)`);
      if (major !== 3) return notTls(`record version ${major}.x is not TLS (3.x)`);
      if (minor > 4) return notTls(`record version 3.${minor} is not TLS 1.0–1.3`);
    } else {
      if (type !== RECORD_HANDSHAKE) return invalid('DC_TLS_MALFORMED', `record ${records + 1} has type ${type} inside the ClientHello`);
      if (major !== 3 || minor > 4) return invalid('DC_TLS_MALFORMED', `record ${records + 1} has version ${major}.${minor}`);
    }
    if (len === 0) return invalid('DC_TLS_MALFORMED', `record ${records + 1} is an empty handshake fragment`);
    if (len > MAX_RECORD) return invalid('DC_TLS_MALFORMED', `record ${records + 1} is ${len} octets (more than 2^14)`);
    records++;
    if (records > MAX_HELLO_RECORDS) return invalid('DC_TLS_TOO_LARGE', `ClientHello spans more than ${MAX_HELLO_RECORDS} records`);
    const end = pos + 5 + len;
    const avail = Math.min(end, input.length);
    const before = have; // handshake octets before this record
    const frag = input.subarray(pos + 5, avail);
    parts.push(frag);
    have += frag.length;
    if (msgLen < 0 && have >= 4) {
      const head = gather(parts, have, 4);
      if (head[0] !== HANDSHAKE_CLIENT_HELLO) return notTls(`first handshake message has type ${head[0]} (not client_hello)`);
      msgLen = 4 + ((head[1]! << 16) | (head[2]! << 8) | head[3]!);
      if (msgLen > MAX_CLIENT_HELLO) return invalid('DC_TLS_TOO_LARGE', `ClientHello of ${msgLen} octets (more than ${MAX_CLIENT_HELLO})`);
    }
    // Where the message ends in the stream, if it ends in this record (octets after it are not read).
    const msgEnd = msgLen >= 0 && before + len >= msgLen ? pos + 5 + (msgLen - before) : end;
    if (input.length < msgEnd) return { kind: 'need-more', need: msgEnd };
    if (msgLen >= 0 && have >= msgLen) {
      const hello = parseBody(gather(parts, have, msgLen).subarray(4));
      return hello.kind === 'hello' ? { ...hello, consumed: msgEnd } : hello;
    }
    pos = end;
  }
}

function gather(parts: Uint8Array[], have: number, n: number): Uint8Array {
  if (parts.length === 1) return parts[0]!.subarray(0, n);
  const out = new Uint8Array(Math.min(have, n));
  let o = 0;
  for (const p of parts) {
    if (o >= out.length) break;
    const take = p.subarray(0, out.length - o);
    out.set(take, o);
    o += take.length;
  }
  return out;
}

type BodyResult = ClientHelloResult;

/** The ClientHello body (after the 4-octet handshake header): exactly its length, nothing more. */
function parseBody(b: Uint8Array): BodyResult {
  const bad = (why: string): BodyResult => invalid('DC_TLS_MALFORMED', `ClientHello: ${why}`);
  let p = 0;
  if (b.length < 2 + 32 + 1) return bad('shorter than version, random and session id');
  const version = (b[0]! << 8) | b[1]!;
  if (b[0] !== 3) return bad(`legacy_version ${b[0]}.${b[1]}`);
  p = 2 + 32;
  const sid = b[p]!;
  if (sid > 32) return bad(`session id of ${sid} octets (at most 32)`);
  p += 1 + sid;
  if (p + 2 > b.length) return bad('cut in cipher_suites');
  const cs = (b[p]! << 8) | b[p + 1]!;
  if (cs < 2 || cs % 2 !== 0) return bad(`cipher_suites of ${cs} octets`);
  p += 2 + cs;
  if (p + 1 > b.length) return bad('cut in cipher_suites or compression_methods');
  const cm = b[p]!;
  if (cm < 1) return bad('no compression method');
  p += 1 + cm;
  if (p > b.length) return bad('cut in compression_methods');
  if (p === b.length) return { kind: 'hello', serverName: null, ech: false, version, consumed: 0 }; // TLS ≤ 1.2 without extensions
  if (p + 2 > b.length) return bad('cut in the extensions length');
  const extLen = (b[p]! << 8) | b[p + 1]!;
  p += 2;
  if (p + extLen !== b.length) return bad(`extensions of ${extLen} octets where ${b.length - p} remain`);
  const seen = new Set<number>();
  let serverName: string | null = null;
  let ech = false;
  while (p < b.length) {
    if (p + 4 > b.length) return bad('cut in an extension header');
    const type = (b[p]! << 8) | b[p + 1]!;
    const len = (b[p + 2]! << 8) | b[p + 3]!;
    p += 4;
    if (p + len > b.length) return bad(`extension ${type} of ${len} octets overruns the ClientHello`);
    if (seen.has(type)) return bad(`extension ${type} appears twice`);
    seen.add(type);
    if (type === EXT_SERVER_NAME) {
      const r = serverNameList(b.subarray(p, p + len));
      if (typeof r !== 'string' && r !== null) return r;
      serverName = r;
    } else if (type === EXT_ECH) ech = true;
    p += len;
  }
  return { kind: 'hello', serverName, ech, version, consumed: 0 };
}

/** RFC 6066 §3 ServerNameList: the host_name (normalised), null for none, or a fault. */
function serverNameList(d: Uint8Array): string | null | BodyResult {
  const bad = (why: string): BodyResult => invalid('DC_TLS_MALFORMED', `server_name: ${why}`);
  if (d.length === 0) return null; // a server's (empty) server_name; tolerated
  if (d.length < 2) return bad('cut in the list length');
  const listLen = (d[0]! << 8) | d[1]!;
  if (listLen + 2 !== d.length) return bad(`list of ${listLen} octets in an extension of ${d.length}`);
  if (listLen < 3) return bad('empty list');
  let p = 2;
  let host: string | null = null;
  while (p < d.length) {
    if (p + 3 > d.length) return bad('cut in an entry header');
    const nameType = d[p]!;
    const len = (d[p + 1]! << 8) | d[p + 2]!;
    p += 3;
    if (len < 1 || p + len > d.length) return bad(`entry of ${len} octets`);
    if (nameType === NAME_HOST) {
      if (host !== null) return bad('more than one host_name');
      const n = normalizeServerName(d.subarray(p, p + len));
      if (n === undefined) return invalid('DC_TLS_SERVER_NAME', 'host_name is not an ASCII DNS name (RFC 6066 §3: A-labels, no trailing dot)');
      host = n;
    }
    p += len;
  }
  return host;
}

/**
 * A host name as the ClientHello carries it → lower case, one trailing dot removed; undefined
 * when it is not a DNS name in ASCII (labels of 1–63 letters, digits, '-' or '_', 253 octets at
 * most). Internationalised names are compared in their A-label form ("xn--…"), as sent.
 */
export function normalizeServerName(raw: Uint8Array | string): string | undefined {
  let s = typeof raw === 'string' ? raw : latin1(raw);
  if (s.endsWith('.')) s = s.slice(0, -1);
  if (s.length === 0 || s.length > 253) return undefined;
  if (!/^[A-Za-z0-9_-]{1,63}(\.[A-Za-z0-9_-]{1,63})*$/.test(s)) return undefined;
  return s.toLowerCase();
}

function latin1(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += String.fromCharCode(x);
  return s;
}

/**
 * Whether a rule's name matches a server name (both compared case-insensitively, without a
 * trailing dot): `video.example` matches exactly that name; `*.example.com` matches any name
 * that ends in `.example.com` (one label or more before it), not `example.com` itself.
 */
export function serverNameMatches(rule: string, name: string): boolean {
  const r = normalizeRule(rule);
  if (r === undefined) return false;
  const n = name.toLowerCase().replace(/\.$/, '');
  if (r.startsWith('*.')) return n.length > r.length - 1 && n.endsWith(r.slice(1));
  return n === r;
}

/** A rule (`name` or `*.suffix`) in the form matching uses, or undefined when it is not one. */
export function normalizeRule(rule: string): string | undefined {
  const wild = rule.startsWith('*.');
  const n = normalizeServerName(wild ? rule.slice(2) : rule);
  if (n === undefined) return undefined;
  return wild ? `*.${n}` : n;
}

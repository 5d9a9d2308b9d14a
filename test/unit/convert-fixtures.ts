/**
 * Hand-built RFC 8803 messages, one comment per field. Shared by the Convert codec tests
 * and the fuzz seeds. `hex` strings ignore whitespace.
 */
export const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** A commented multi-line dump: on each line, the bytes end where two spaces start a comment. */
export const wire = (s: string): Buffer =>
  hex(
    s
      .split('\n')
      .map((l) => l.trim().split(/\s{2,}/)[0] ?? '')
      .join(''),
  );

/** Valid messages, and what they decode to. */
export const VALID = {
  /** Client → converter: Connect to 192.0.2.1:80 (IPv4 sent IPv4-mapped). */
  connectV4: wire(`
    01            version 1
    06            total length 6 words = 24 bytes
    2263          magic number 8803
    0a            TLV type Connect
    05            TLV length 5 words = 20 bytes (base Connect)
    0050          remote peer port 80
    00000000 00000000 0000ffff c0000201   ::ffff:192.0.2.1
  `),

  /** Client → converter: Connect to [2001:db8::1]:443 asking for TFO (kind 34, no value)
   * upstream, and a Cookie "cell-01". */
  connectV6CookieTfo: wire(`
    01 0a 2263                             version 1, 10 words = 40 bytes, magic
    0a 06 01bb                             Connect, 6 words, port 443
    20010db8 00000000 00000000 00000001    2001:db8::1
    22 02 0000                             TCP option kind 34 (TFO) length 2, then 2 bytes padding
    16 03 0000                             Cookie, 3 words, zero
    63656c6c 2d303100                      "cell-01" + 1 byte padding
  `),

  /** Client → converter: Info only (what do you support?). */
  info: hex('01 02 2263  01 01 0000'),

  /** Converter → client: success, empty Extended TCP Header. */
  okEmpty: hex('01 02 2263  14 01 0000'),

  /** Converter → client: success, SYN+ACK options MSS 1460, SACK-permitted, WS 7. */
  okOptions: wire(`
    01 05 2263           version 1, 5 words = 20 bytes, magic
    14 04 0000           Extended TCP Header, 4 words, unassigned
    02 04 05b4           MSS 1460
    04 02                SACK permitted
    03 03 07             window scale 7
    000000               padding to 32 bits
  `),

  /** Converter → client: Supported TCP Extensions MPTCP(30) TFO(34) WS(3) SACK(4) TS(8). */
  supported: hex('01 04 2263  15 03 0000  1e 22 03 04  08 000000'),

  /** Converter → client: Error 97 Destination Unreachable, ICMP code 1 (host unreachable). */
  errUnreachable: hex('01 02 2263  1e 01 61 01'),

  /** Converter → client: Error 0 Unsupported Version, value = supported version 1. */
  errVersion: hex('01 02 2263  1e 01 00 01'),

  /** Converter → client: Error 3 Missing Cookie + the Cookie to use next time ("abcd"). */
  errMissingCookie: hex('01 04 2263  1e 01 03 00  16 02 0000 61626364'),
} as const;

/** Odd but acceptable: RFC 8803 section 5.1 says a converter ignores NOPs in a Connect TLV. */
export const TOLERATED = {
  /** Connect to 192.0.2.1:80 with NOP, TFO (34, no value), then 1 byte of padding. */
  nopThenTfo: hex('01 07 2263 0a 06 0050 00000000 00000000 0000ffff c0000201 01 22 02 00'),
  /** A whole extra word of zeros after the options. */
  extraZeroWord: hex('01 08 2263 0a 07 0050 00000000 00000000 0000ffff c0000201 22 02 0000 00000000'),
} as const;

/** Malformed inputs and the Convert error code RFC 8803 prescribes for each. */
export const INVALID: ReadonlyArray<{ name: string; bytes: Buffer; convertError: number }> = [
  { name: 'version 2', bytes: hex('02 02 2263 01 01 0000'), convertError: 0 },
  { name: 'version 0', bytes: hex('00'), convertError: 0 },
  { name: 'bad magic', bytes: hex('01 02 2264 01 01 0000'), convertError: 1 },
  { name: 'total length 0', bytes: hex('01 00 2263'), convertError: 1 },
  { name: 'TLV length 0', bytes: hex('01 02 2263 01 00 0000'), convertError: 1 },
  // total length says 3 words, the Connect TLV says 5: the lie is caught at the TLV header
  { name: 'total length shorter than TLVs', bytes: hex('01 03 2263 0a 05 0050 00000000'), convertError: 1 },
  { name: 'unknown TLV type 0x02', bytes: hex('01 02 2263 02 01 0000'), convertError: 2 },
  // A Private Use TLV (192-255) parses; the role checks decide (converter: Unsupported Message,
  // client: skipped): test/unit/convert-grant.test.ts.
  { name: 'Info of 2 words', bytes: hex('01 03 2263 01 02 0000 00000000'), convertError: 1 },
  {
    name: 'Connect of 4 words',
    bytes: hex('01 05 2263 0a 04 0050 00000000 00000000 0000ffff'),
    convertError: 1,
  },
  {
    name: 'Connect port 0',
    bytes: hex('01 06 2263 0a 05 0000 00000000 00000000 0000ffff c0000201'),
    convertError: 1,
  },
  {
    name: 'Connect to IPv4 loopback',
    bytes: hex('01 06 2263 0a 05 0050 00000000 00000000 0000ffff 7f000001'),
    convertError: 1,
  },
  {
    name: 'Connect to IPv4 broadcast',
    bytes: hex('01 06 2263 0a 05 0050 00000000 00000000 0000ffff ffffffff'),
    convertError: 1,
  },
  {
    name: 'Connect to IPv4 multicast',
    bytes: hex('01 06 2263 0a 05 0050 00000000 00000000 0000ffff e0000001'),
    convertError: 1,
  },
  {
    name: 'Connect to IPv6 loopback',
    bytes: hex('01 06 2263 0a 05 0050 00000000 00000000 00000000 00000001'),
    convertError: 1,
  },
  {
    name: 'Connect to IPv6 multicast',
    bytes: hex('01 06 2263 0a 05 0050 ff020000 00000000 00000000 00000001'),
    convertError: 1,
  },
  {
    name: 'Connect option length 1',
    bytes: hex('01 07 2263 0a 06 0050 00000000 00000000 0000ffff c0000201 22 01 0000'),
    convertError: 1,
  },
  {
    name: 'Connect option runs past TLV',
    bytes: hex('01 07 2263 0a 06 0050 00000000 00000000 0000ffff c0000201 22 08 0000'),
    convertError: 1,
  },
  {
    name: 'Connect options: junk after the end',
    bytes: hex('01 07 2263 0a 06 0050 00000000 00000000 0000ffff c0000201 22 02 00 07'),
    convertError: 1,
  },
  { name: 'empty Cookie', bytes: hex('01 02 2263 16 01 0000'), convertError: 1 },
  { name: 'Supported lists NOP', bytes: hex('01 03 2263 15 02 0000 01000000'), convertError: 1 },
  { name: 'Supported junk after padding', bytes: hex('01 03 2263 15 02 0000 1e00ff00'), convertError: 1 },
];

import t from 'tap';
import { isDuocellError } from '../../src/core/errors.js';
import {
  ConvertErrorCode,
  MAX_ECHO_BYTES,
  echoOf,
  encodeConvertError,
  encodeConvertMessage,
  encodeFaultReply,
  errorTlv,
  parseConvertMessage,
  splitTcpOptions,
  validateRequest,
  validateResponse,
  type ConvertMessage,
  type ConvertParse,
  type ConvertTlv,
} from '../../src/protocols/convert/index.js';
import { INVALID, TOLERATED, VALID, hex } from './convert-fixtures.js';

function whole(r: ConvertParse): { message: ConvertMessage; consumed: number } {
  if ('need' in r) throw new Error(`incomplete: need ${r.need}`);
  return r;
}

function convertErrorOf(f: () => unknown): number | string {
  try {
    f();
  } catch (e) {
    if (isDuocellError(e) && typeof e.detail.convertError === 'number') return e.detail.convertError;
    return `not a coded error: ${String(e)}`;
  }
  return 'no error';
}

t.test('Connect IPv4 fixture decodes byte for byte', async (t) => {
  const r = whole(parseConvertMessage(VALID.connectV4));
  t.equal(r.consumed, 24);
  t.same(r.message.tlvs, [{ type: 'connect', address: '192.0.2.1', port: 80, tcpOptions: [] }]);
  const req = validateRequest(r.message);
  t.same(req.connect, { address: '192.0.2.1', port: 80, tcpOptions: [] });
  t.equal(req.info, false);
  t.equal(req.cookie, undefined);
});

t.test('Connect IPv6 + TFO option + Cookie fixture', async (t) => {
  const r = whole(parseConvertMessage(VALID.connectV6CookieTfo));
  t.equal(r.consumed, 40);
  const req = validateRequest(r.message);
  t.equal(req.connect?.address, '2001:db8::1');
  t.equal(req.connect?.port, 443);
  t.same(
    req.connect?.tcpOptions.map((o) => [o.kind, o.data.length]),
    [[34, 0]],
  );
  t.equal(req.cookie?.toString('latin1'), 'cell-01\0', 'cookie keeps its zero padding');
});

t.test('Info, success and error replies', async (t) => {
  t.same(validateRequest(whole(parseConvertMessage(VALID.info)).message), { info: true });
  const ok = validateResponse(whole(parseConvertMessage(VALID.okEmpty)).message);
  t.equal(ok.error, undefined);
  t.equal(ok.extendedTcpHeader?.length, 0);
  const opt = validateResponse(whole(parseConvertMessage(VALID.okOptions)).message);
  t.same(
    splitTcpOptions(opt.extendedTcpHeader!).map((o) => [o.kind, o.data.toString('hex')]),
    [
      [2, '05b4'],
      [4, ''],
      [3, '07'],
    ],
  );
  const sup = validateResponse(whole(parseConvertMessage(VALID.supported)).message);
  t.same(sup.supportedTcpExtensions, [30, 34, 3, 4, 8]);
  const un = validateResponse(whole(parseConvertMessage(VALID.errUnreachable)).message);
  t.equal(un.error?.code, ConvertErrorCode.DESTINATION_UNREACHABLE);
  t.equal(un.error?.name, 'Destination Unreachable');
  t.equal(un.error?.value[0], 1, 'ICMP code echoed');
  const mc = validateResponse(whole(parseConvertMessage(VALID.errMissingCookie)).message);
  t.equal(mc.error?.code, ConvertErrorCode.MISSING_COOKIE);
  t.equal(mc.cookie?.toString(), 'abcd');
});

t.test('NOPs and extra zero padding in the Connect options are ignored (RFC 8803 5.1)', async (t) => {
  const a = validateRequest(whole(parseConvertMessage(TOLERATED.nopThenTfo)).message);
  t.same(a.connect?.tcpOptions.map((o) => o.kind), [34], 'NOP skipped, TFO kept');
  const b = validateRequest(whole(parseConvertMessage(TOLERATED.extraZeroWord)).message);
  t.same(b.connect?.tcpOptions.map((o) => o.kind), [34]);
});

t.test('encoders produce the fixture bytes exactly', async (t) => {
  t.same(encodeConvertMessage([{ type: 'connect', address: '192.0.2.1', port: 80, tcpOptions: [] }]), VALID.connectV4);
  t.same(
    encodeConvertMessage([
      { type: 'connect', address: '2001:db8::1', port: 443, tcpOptions: [{ kind: 34, data: Buffer.alloc(0) }] },
      { type: 'cookie', cookie: Buffer.from('cell-01') },
    ]),
    VALID.connectV6CookieTfo,
  );
  t.same(encodeConvertMessage([{ type: 'info' }]), VALID.info);
  t.same(encodeConvertMessage([{ type: 'extended-tcp-header', tcpOptions: Buffer.alloc(0) }]), VALID.okEmpty);
  t.same(
    encodeConvertMessage([{ type: 'extended-tcp-header', tcpOptions: hex('020405b4 0402 030307') }]),
    VALID.okOptions,
  );
  t.same(encodeConvertMessage([{ type: 'supported-tcp-extensions', kinds: [30, 34, 3, 4, 8] }]), VALID.supported);
  t.same(encodeConvertError(ConvertErrorCode.DESTINATION_UNREACHABLE, { icmpCode: 1 }), VALID.errUnreachable);
  t.same(encodeConvertError(ConvertErrorCode.UNSUPPORTED_VERSION), VALID.errVersion);
  t.same(encodeConvertError(ConvertErrorCode.MISSING_COOKIE, { cookie: Buffer.from('abcd') }), VALID.errMissingCookie);
});

t.test('every malformed fixture maps to the RFC error code, however it is split', async (t) => {
  for (const c of INVALID) {
    t.equal(convertErrorOf(() => parseConvertMessage(c.bytes)), c.convertError, c.name);
    // Every prefix is either "need more" (asking for more than it has) or the same fault.
    for (let i = 0; i < c.bytes.length; i++) {
      let r: ConvertParse | undefined;
      try {
        r = parseConvertMessage(c.bytes.subarray(0, i));
      } catch (e) {
        if (!isDuocellError(e) || e.detail.convertError !== c.convertError) {
          t.fail(`${c.name}: prefix ${i} threw ${String(e)}`);
        }
        continue;
      }
      if (!('need' in r) || r.need <= i) t.fail(`${c.name}: prefix ${i} gave ${JSON.stringify(r)}`);
    }
  }
});

t.test('valid fixtures split at every byte: need, then the same message', async (t) => {
  for (const [name, bytes] of Object.entries(VALID)) {
    const full = whole(parseConvertMessage(bytes));
    for (let i = 0; i < bytes.length; i++) {
      const r = parseConvertMessage(bytes.subarray(0, i));
      t.ok('need' in r && r.need > i && r.need <= bytes.length, `${name} prefix ${i}`);
    }
    // Application data after the message is left alone (bytes of the SYN payload).
    const withData = Buffer.concat([bytes, Buffer.from('GET / HTTP/1.1\r\n')]);
    const r = whole(parseConvertMessage(withData));
    t.equal(r.consumed, bytes.length, `${name} consumed`);
    t.same(r.message, full.message, `${name} same with trailing data`);
  }
});

t.test('role checks', async (t) => {
  const m = (tlvs: ConvertTlv[]): ConvertMessage => whole(parseConvertMessage(encodeConvertMessage(tlvs))).message;
  const connect: ConvertTlv = { type: 'connect', address: '198.51.100.7', port: 8080, tcpOptions: [] };
  t.equal(convertErrorOf(() => validateRequest(m([errorTlv(1)]))), 2, 'client may not send Error');
  t.equal(
    convertErrorOf(() => validateRequest(m([{ type: 'extended-tcp-header', tcpOptions: Buffer.alloc(0) }]))),
    2,
  );
  t.equal(convertErrorOf(() => validateRequest(m([connect, connect]))), 1, 'two Connect');
  t.equal(convertErrorOf(() => validateRequest(m([{ type: 'cookie', cookie: Buffer.from('x') }]))), 1, 'cookie only');
  t.equal(convertErrorOf(() => validateRequest(m([{ type: 'info' }, { type: 'info' }]))), 1, 'two Info');
  t.equal(convertErrorOf(() => validateResponse(m([connect]))), 2, 'converter may not send Connect');
  t.equal(convertErrorOf(() => validateResponse(m([errorTlv(1), errorTlv(96)]))), 1, 'two Error');
  const both = validateRequest(m([{ type: 'info' }, connect, { type: 'cookie', cookie: Buffer.from('k') }]));
  t.ok(both.info);
  t.equal(both.connect?.port, 8080);
});

t.test('Error TLV values', async (t) => {
  const received = VALID.connectV4;
  const mal = encodeConvertError(ConvertErrorCode.MALFORMED_MESSAGE, { received });
  // header (4) + type,len,code (3) + shift byte (1) + the 24 echoed bytes: aligned as sent
  t.equal(mal.length, 4 + 4 + 24);
  t.same(mal.subarray(8), received, 'echo starts on a 32-bit boundary');
  const back = validateResponse(whole(parseConvertMessage(mal)).message);
  t.same(echoOf(back.error!.value), received);

  const huge = Buffer.alloc(5000, 0xab);
  const cut = encodeConvertError(ConvertErrorCode.UNSUPPORTED_MESSAGE, { received: huge });
  t.equal(cut.length, 1020, 'echo truncated to fit one message');
  t.equal(echoOf(validateResponse(whole(parseConvertMessage(cut)).message).error!.value).length, MAX_ECHO_BYTES);

  const opt = encodeConvertError(ConvertErrorCode.UNSUPPORTED_TCP_OPTION, { kinds: [19, 29] });
  t.same(opt, hex('01 03 2263 1e 02 21 13 1d 000000'));
  t.same(encodeConvertError(ConvertErrorCode.RESOURCE_EXCEEDED, { delaySeconds: 60 }), hex('01 02 2263 1e 01 40 3c'));
  t.same(encodeConvertError(ConvertErrorCode.CONNECTION_RESET), hex('01 02 2263 1e 01 60 00'));
  t.same(encodeConvertError(ConvertErrorCode.NOT_AUTHORIZED), hex('01 02 2263 1e 01 20 00'));

  // The answer to a parse fault carries that fault's code.
  const bad = INVALID.find((c) => c.name === 'bad magic')!;
  try {
    parseConvertMessage(bad.bytes);
    t.fail('should throw');
  } catch (e) {
    if (!isDuocellError(e)) throw e;
    t.equal(e.code, 'DC_CONVERT_MALFORMED');
    t.equal(e.origin, 'local');
    const reply = encodeFaultReply(e, bad.bytes);
    t.equal(reply[6], ConvertErrorCode.MALFORMED_MESSAGE);
    t.same(reply.subarray(8, 8 + bad.bytes.length), bad.bytes);
  }
});

t.test('encoder refuses what cannot be sent', async (t) => {
  const codeOf = (f: () => unknown): string => {
    try {
      f();
      return 'none';
    } catch (e) {
      return isDuocellError(e) ? e.code : String(e);
    }
  };
  t.equal(codeOf(() => encodeConvertMessage([{ type: 'connect', address: 'example.com', port: 80, tcpOptions: [] }])), 'DC_CONVERT_ENCODE');
  t.equal(codeOf(() => encodeConvertMessage([{ type: 'connect', address: '192.0.2.1', port: 0, tcpOptions: [] }])), 'DC_CONVERT_ENCODE');
  t.equal(
    codeOf(() =>
      encodeConvertMessage([
        { type: 'connect', address: '192.0.2.1', port: 1, tcpOptions: [{ kind: 1, data: Buffer.alloc(0) }] },
      ]),
    ),
    'DC_CONVERT_ENCODE',
  );
  t.equal(codeOf(() => encodeConvertMessage([{ type: 'cookie', cookie: Buffer.alloc(1100) }])), 'DC_CONVERT_ENCODE');
  t.equal(codeOf(() => encodeConvertMessage([{ type: 'cookie', cookie: Buffer.alloc(0) }])), 'DC_CONVERT_ENCODE');
  t.equal(codeOf(() => encodeConvertMessage([{ type: 'supported-tcp-extensions', kinds: [2] }])), 'DC_CONVERT_ENCODE');
});

t.test('round trip of random well-formed messages', async (t) => {
  let seed = 7;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  for (let i = 0; i < 300; i++) {
    const v4 = rnd(2) === 0;
    const address = v4 ? `${1 + rnd(126)}.${rnd(256)}.${rnd(256)}.${1 + rnd(254)}` : `2001:db8:${rnd(65536).toString(16)}::${(1 + rnd(65535)).toString(16)}`;
    const tcpOptions = Array.from({ length: rnd(4) }, () => ({
      kind: 2 + rnd(250),
      data: Buffer.from(Array.from({ length: rnd(10) }, () => rnd(256))),
    }));
    const tlvs: ConvertTlv[] = [{ type: 'connect', address, port: 1 + rnd(65535), tcpOptions }];
    if (rnd(2) === 0) tlvs.push({ type: 'cookie', cookie: Buffer.from(Array.from({ length: 1 + rnd(40) }, () => 1 + rnd(255))) });
    const bytes = encodeConvertMessage(tlvs);
    const back = whole(parseConvertMessage(bytes));
    if (back.consumed !== bytes.length) t.fail(`round trip ${i}: consumed ${back.consumed}`);
    const c = back.message.tlvs[0]!;
    if (c.type !== 'connect') throw new Error('not connect');
    if (c.address !== address || c.port !== (tlvs[0] as { port: number }).port || c.tcpOptions.length !== tcpOptions.length) {
      t.fail(`round trip ${i}: ${JSON.stringify(c)} vs ${address}`);
    }
  }
  t.pass('300 round trips');
});

// Every proxy front refuses the box itself (its own addresses, its listener ports) and
// link-local targets, IPv4 and IPv6, each with its protocol's own answer: SOCKS5 reply 02,
// Convert Error TLV 32 (Not Authorized), transparent and explicit a reset. Real sockets on
// loopback only; the connector is a stand-in that would relay to a loopback echo server, so a
// target that got through shows up as relayed bytes instead of leaving the machine.
import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import type { BoardProfile } from '../../src/core/board.js';
import { LocalAddresses, createEngine, type Connector, type Target } from '../../src/services/proxy/index.js';
import { explicitFront, transparentFront } from '../../src/services/proxy/fronts/basic.js';
import { socks5Front } from '../../src/services/proxy/fronts/socks5.js';
import { convertFront } from '../../src/services/proxy/fronts/convert.js';
import { encodeGreeting, encodeRequest } from '../../src/protocols/socks5/index.js';
import { encodeConvertMessage, parseConvertMessage } from '../../src/protocols/convert/index.js';
import { socketIo } from '../../src/drivers/sockets/io.js';

const echo = net.createServer((s) => s.pipe(s));
await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
const echoPort = (echo.address() as net.AddressInfo).port;
t.teardown(() => echo.close());

const asked: Target[] = [];
const connector: Connector = {
  name: 'echo-stand-in',
  async connect(req) {
    asked.push(req.target);
    const socket = net.connect(echoPort, '127.0.0.1');
    await once(socket, 'connect');
    return { socket, serverMptcp: false };
  },
};

async function freePort(host: string): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, host, r));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

// The box: loopback plus 10.250.0.1 / fd00:250::1 on a "lan0"; a SOCKS5 port and a web port.
const SOCKS_PORT = 1080;
const WEB_PORT = 8080;
const tp4 = await freePort('127.0.0.1');
const tp6 = await freePort('::1');
const board = {
  name: 'target-test',
  preset: 'cell',
  uplinks: [],
  lan: { interfaces: ['lan0'] },
  web: { listen: [{ host: '10.250.0.1', port: WEB_PORT }] },
  listeners: [
    { kind: 'socks5', host: '::', port: SOCKS_PORT, mptcp: true },
    { kind: 'transparent', host: '127.0.0.1', port: tp4, mptcp: true },
    { kind: 'transparent', host: '::1', port: tp6, mptcp: true },
  ],
  accessNetworks: [],
} as unknown as BoardProfile;
const local = new LocalAddresses(() => ({
  lo: [{ address: '127.0.0.1' }, { address: '::1' }],
  lan0: [{ address: '10.250.0.1' }, { address: 'fd00:250::1' }, { address: 'fe80::250%lan0' }],
}) as never);
const engine = createEngine(board, { io: socketIo, local, handshakeTimeoutMs: 3000 });
t.teardown(() => engine.close(50));

const common = { mptcp: false, connector, upstream: { mptcp: false } } as const;
const socksAt = (await engine.listen({ name: 'socks', host: '127.0.0.1', port: 0, front: socks5Front({ allowAnonymous: true }), ...common })).port;
const convertAt = (await engine.listen({ name: 'convert', host: '127.0.0.1', port: 0, front: convertFront({ allowWithoutCookie: true }), ...common })).port;
const tAt4 = (await engine.listen({ name: 'transparent4', host: '127.0.0.1', port: tp4, front: transparentFront, ...common })).port;
const tAt6 = (await engine.listen({ name: 'transparent6', host: '::1', port: tp6, front: transparentFront, ...common })).port;

/** The cases every front must refuse, IPv4 and IPv6, with the reason counted. */
const CASES: Array<{ what: string; host: string; port: number; reason: string }> = [
  { what: "IPv4 own address", host: '10.250.0.1', port: 22, reason: 'own-address' },
  { what: "IPv6 own address", host: 'fd00:250::1', port: 22, reason: 'own-address' },
  { what: 'IPv4 link-local', host: '169.254.10.1', port: 80, reason: 'link-local' },
  { what: 'IPv6 link-local', host: 'fe80::1', port: 80, reason: 'link-local' },
  { what: "IPv4 own SOCKS5 listener", host: '10.250.0.1', port: SOCKS_PORT, reason: 'own-listener' },
  { what: "IPv6 own web port", host: 'fd00:250::1', port: WEB_PORT, reason: 'own-listener' },
  { what: 'v4-mapped own address', host: '::ffff:10.250.0.1', port: 22, reason: 'own-address' },
  { what: 'NAT64 form of link-local', host: '64:ff9b::169.254.10.1', port: 80, reason: 'link-local' },
];

function socksTry(host: string, port: number): Promise<number | string> {
  return new Promise((resolve) => {
    const c = net.connect(socksAt, '127.0.0.1', () => c.write(Buffer.concat([encodeGreeting([0]), encodeRequest(1, host, port)])));
    let buf = Buffer.alloc(0);
    c.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 4) {
        resolve(buf[3]!); // [05 00] method, then [05 REP ...]
        c.destroy();
      }
    });
    c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    c.on('close', () => resolve('closed'));
  });
}

function convertTry(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const c = net.connect(convertAt, '127.0.0.1', () => c.write(encodeConvertMessage([{ type: 'connect', address: host, port, tcpOptions: [] }])));
    let buf = Buffer.alloc(0);
    c.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const r = parseConvertMessage(buf);
      if ('message' in r) {
        const e = r.message.tlvs.find((x) => x.type === 'error');
        resolve(e !== undefined && e.type === 'error' ? `error ${e.code}` : 'relayed');
        c.destroy();
      }
    });
    c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    c.on('close', () => resolve('closed'));
  });
}

/** A byte-stream front: 'relayed' when the echo came back, else how the connection ended. */
function streamTry(port: number, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve) => {
    const c = net.connect(port, host, () => c.write('ping'));
    c.on('data', () => {
      resolve('relayed');
      c.destroy();
    });
    c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    c.on('close', () => resolve('closed'));
  });
}

const counted = (front: string, reason: string): number => engine.targetRefusals.get(`${front} ${reason}`) ?? 0;

t.test('SOCKS5 answers 02 (not allowed by ruleset) and never connects', async (t) => {
  for (const c of CASES) {
    const before = counted('socks5', c.reason);
    asked.length = 0;
    t.equal(await socksTry(c.host, c.port), 0x02, `${c.what}: reply 02`);
    t.same(asked, [], `${c.what}: no upstream connection`);
    t.equal(counted('socks5', c.reason), before + 1, `${c.what}: counted as ${c.reason}`);
  }
  const lo = counted('socks5', 'loopback');
  t.equal(await socksTry('::1', 80), 0x02, "loopback: reply 02 from the front's own check");
  t.equal(counted('socks5', 'loopback'), lo + 1, 'counted under the same code and reason');
  t.equal(await socksTry('10.31.0.2', 80), 0x00, 'a private-range server (the sim N-server) is still relayed');
  t.equal(await socksTry('fd00:31::2', 80), 0x00, 'a unique-local server is still relayed');
});

t.test('Convert answers Error TLV 32 (Not Authorized) and never connects', async (t) => {
  for (const c of CASES) {
    const before = counted('convert', c.reason);
    asked.length = 0;
    t.equal(await convertTry(c.host, c.port), 'error 32', `${c.what}: Error TLV 32`);
    t.same(asked, [], `${c.what}: no upstream connection`);
    t.equal(counted('convert', c.reason), before + 1, `${c.what}: counted as ${c.reason}`);
  }
  t.equal(await convertTry('10.31.0.2', 80), 'relayed', 'a private-range server is still relayed');
  t.equal(await convertTry('fd00:31::2', 80), 'relayed', 'a unique-local server is still relayed');
});

t.test('explicit listeners pointed at the box or link-local reset the client', async (t) => {
  for (const c of CASES) {
    const at = (await engine.listen({ name: `explicit-${c.what}`, host: '127.0.0.1', port: 0, front: explicitFront({ host: c.host, port: c.port }), ...common })).port;
    asked.length = 0;
    t.equal(await streamTry(at), 'ECONNRESET', `${c.what}: reset`);
    t.same(asked, [], `${c.what}: no upstream connection`);
  }
  t.ok(counted('explicit', 'own-address') >= 3 && counted('explicit', 'link-local') >= 3 && counted('explicit', 'own-listener') >= 2, 'counted by reason');
  const ok = (await engine.listen({ name: 'explicit-ok', host: '127.0.0.1', port: 0, front: explicitFront({ host: '10.31.0.2', port: 8000 }), ...common })).port;
  t.equal(await streamTry(ok), 'relayed', 'an explicit listener to a private-range server still relays');
});

t.test("transparent: a connection to the box's own address and listener port is reset", async (t) => {
  asked.length = 0;
  t.equal(await streamTry(tAt4, '127.0.0.1'), 'ECONNRESET', 'IPv4: reset');
  t.equal(await streamTry(tAt6, '::1'), 'ECONNRESET', 'IPv6: reset');
  t.same(asked, [], 'no upstream connection');
  t.equal(counted('transparent', 'own-listener'), 2, 'counted as own-listener (the proxy would connect to itself)');
});

t.test('every refusal is counted under DC_TARGET_FORBIDDEN', async (t) => {
  const n = [...engine.targetRefusals.values()].reduce((a, b) => a + b, 0);
  t.equal(engine.refusals.get('DC_TARGET_FORBIDDEN'), n);
  t.ok(n >= CASES.length * 3 + 3);
});

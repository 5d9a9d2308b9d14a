// Needs root, network namespaces and the kernel's MPTCP (runs in CI as root).
// Explicit modes answer a resource limit in their own protocol, on the wire: a concentrator
// (duocell run, Convert + SOCKS5 listeners) serving a client whose policy allows one session.
import t from 'tap';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { Topology, netnsUnavailable, type Host } from '../helpers/hosts.js';
import { BIN, startCell, startPeerServerIn } from '../helpers/appliance.js';
import { encodeConvertMessage, parseConvertMessage, validateResponse, ConvertErrorCode } from '../../src/protocols/convert/index.js';

const why = await netnsUnavailable();
const run = promisify(execFile);

/**
 * In `h`: open one connection per request (in order), send its bytes, collect what comes back
 * for 1.5 s, keep every connection open until all are done. Prints the replies as hex.
 */
async function exchange(h: Host, host: string, port: number, requests: Buffer[]): Promise<Buffer[]> {
  const script = `import net from 'node:net';
const [host, port, ...reqs] = process.argv.slice(1);
const socks = []; const out = [];
for (const hex of reqs) {
  const s = net.connect({ host, port: Number(port) }); socks.push(s);
  const got = [];
  s.on('data', (d) => got.push(d)); s.on('error', () => undefined);
  s.write(Buffer.from(hex, 'hex'));
  await new Promise((r) => setTimeout(r, 1500));
  out.push(Buffer.concat(got).toString('hex'));
}
for (const s of socks) s.destroy();
process.stdout.write(JSON.stringify(out));`;
  const o = await h.exec(process.execPath, ['--input-type=module', '-e', script, host, String(port), ...requests.map((b) => b.toString('hex'))]);
  return (JSON.parse(o) as string[]).map((x) => Buffer.from(x, 'hex'));
}

t.test('a limit refuses explicit clients with the protocol\'s own error', { skip: why === false ? false : why, timeout: 120_000 }, async (t) => {
  const topo = new Topology(`tpex${process.pid % 100000}`);
  t.teardown(() => topo.destroy());
  const cli = await topo.host('cli');
  const conc = await topo.host('conc');
  await topo.link(cli, 'c0', conc, 'c0', { a: ['10.64.0.2/24'], b: ['10.64.0.1/24'] });
  const server = startPeerServerIn(conc, '10.64.0.1', 18000, false);
  await server.ready;
  const board = {
    name: 'test-policy-conc',
    preset: 'concentrator',
    uplinks: [],
    lan: { interfaces: [] },
    web: { listen: [{ host: '127.0.0.1', port: 18095 }] },
    listeners: [
      { kind: 'convert', host: '0.0.0.0', port: 15124, mptcp: true, upstream: 'tcp', options: { cookies: [{ cookie: 'c-test', subscriber: 'cell-a' }] } },
      { kind: 'socks5', host: '0.0.0.0', port: 11080, mptcp: true, upstream: 'tcp', options: { users: [{ username: 'u', password: 'p', subscriber: 'phone' }] } },
    ],
    accessNetworks: [],
    // The test server listens on the concentrator's own address: allowed on purpose (the proxy
    // refuses the box's own addresses by default).
    proxyTargets: { allow: ['10.64.0.1/32'] },
  };
  const app = await startCell(conc, board, 18095);
  t.teardown(async () => {
    app.child.kill('SIGTERM');
    if (app.child.exitCode === null) await new Promise((r) => app.child.once('exit', r));
  });
  const stateDir = path.join(app.dir, 'state');
  await run(process.execPath, [BIN, 'policy', 'set', 'one', '--max-sessions', '1', '--state-dir', stateDir]);
  await run(process.execPath, [BIN, 'subscribers', 'add', 'cell-a', '--policy', 'one', '--addr', '10.64.0.2', '--state-dir', stateDir]);
  await new Promise((r) => setTimeout(r, 600));

  t.test('Convert: the second connect gets Error TLV Resource Exceeded (64)', async (t) => {
    const connect = encodeConvertMessage([
      { type: 'connect', address: '10.64.0.1', port: 18000, tcpOptions: [] },
      { type: 'cookie', cookie: Buffer.from('c-test') },
    ]);
    const [first, second] = await exchange(cli, '10.64.0.1', 15124, [connect, connect]);
    const parse = (b: Buffer | undefined): ReturnType<typeof validateResponse> | undefined => {
      if (b === undefined) return undefined;
      const p = parseConvertMessage(b);
      return 'message' in p ? validateResponse(p.message) : undefined;
    };
    const r1 = parse(first);
    t.ok(r1 !== undefined && r1.error === undefined, 'the first is accepted (a Convert reply without an Error TLV)');
    const r2 = parse(second);
    t.equal(r2?.error?.code, ConvertErrorCode.RESOURCE_EXCEEDED, `the second: Error TLV code ${r2?.error?.code} (${r2?.error?.name})`);
  });

  t.test('SOCKS5: the second CONNECT gets reply 0x02, connection not allowed by ruleset', async (t) => {
    const req = Buffer.from([5, 1, 2, 1, 1, 0x75, 1, 0x70, 5, 1, 0, 1, 10, 64, 0, 1, 18000 >> 8, 18000 & 0xff]);
    const [first, second] = await exchange(cli, '10.64.0.1', 11080, [req, req]);
    // method selection [5,2], auth status [1,0], then the reply [5, REP, 0, ATYP, …]
    t.same([...(first ?? Buffer.alloc(0)).subarray(0, 6)], [5, 2, 1, 0, 5, 0], 'the first: authenticated and succeeded');
    t.same([...(second ?? Buffer.alloc(0)).subarray(0, 6)], [5, 2, 1, 0, 5, 2], 'the second: authenticated, then not allowed');
  });
});

// Proxy engine on loopback with the kernel's MPTCP (needs MPTCP in this namespace; runs in CI as root).
import t from 'tap';
import net from 'node:net';
import { ProxyEngine } from '../../src/services/proxy/engine.js';
import { explicitFront } from '../../src/services/proxy/fronts/basic.js';
import { directConnector } from '../../src/services/proxy/connector.js';
import { startPeerServer, runPeerClient, type PeerReport } from '../../src/sim/peer.js';
import { openFdCount, createConnectSocket } from '../../src/drivers/sockets/index.js';
import { sh } from '../helpers/hosts.js';
import { socketIo } from '../../src/drivers/sockets/io.js';

const mptcpOn = (await sh('sysctl', ['-n', 'net.mptcp.enabled'], { allowFail: true })).trim() === '1';

t.test('proxy on loopback (kernel MPTCP)', { skip: mptcpOn ? false : 'net.mptcp.enabled is not 1 here' }, async (t) => {
  const reports: PeerReport[] = [];
  const srv = await startPeerServer({ host: '127.0.0.1', port: 0, mptcp: false }, (r) => reports.push(r));
  t.teardown(() => srv.close());
  const srvPort = (srv.address() as net.AddressInfo).port;
  const engine = new ProxyEngine({ io: socketIo, idleTimeoutMs: 60_000 });
  t.teardown(() => engine.close(100));
  const addr = await engine.listen({
    name: 'lo',
    host: '127.0.0.1',
    port: 0,
    mptcp: true,
    front: explicitFront({ host: '127.0.0.1', port: srvPort }),
    connector: directConnector,
    upstream: { mptcp: false },
  });

  t.test('MPTCP client → proxy → plain server: 8 MiB each way intact', async (t) => {
    const r = await runPeerClient({ host: '127.0.0.1', port: addr.port, mptcp: true, send: 8 << 20, receive: 8 << 20 });
    t.equal(r.error, undefined, 'no client error');
    t.ok(r.mptcp, 'client side is MPTCP');
    await waitFor(() => reports.length > 0);
    const s = reports.shift()!;
    t.equal(s.mptcp, false, 'server saw plain TCP');
    t.equal(s.received, 8 << 20);
    t.equal(r.received, 8 << 20);
    t.equal(s.receivedHash, r.sentHash, 'upstream bytes intact');
    t.equal(r.receivedHash, s.sentHash, 'downstream bytes intact');
    await waitFor(() => engine.registry.size === 0);
    t.equal(engine.registry.totals.byCombination['M-N'] >= 1, true, 'counted as M-N');
  });

  t.test('half-close: client FIN, server still answers', async (t) => {
    // receive 1 MiB after sending nothing: the client's FIN comes first.
    const r = await runPeerClient({ host: '127.0.0.1', port: addr.port, mptcp: true, send: 0, receive: 1 << 20 });
    t.equal(r.error, undefined);
    t.equal(r.received, 1 << 20, 'all bytes after our FIN arrived');
    await waitFor(() => reports.length > 0);
    t.equal(reports.shift()!.sentHash, r.receivedHash);
  });

  t.test('unreachable upstream: client is reset, nothing leaks', async (t) => {
    const dead = net.createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const deadPort = (dead.address() as net.AddressInfo).port;
    await new Promise((r) => dead.close(r));
    const eng2 = new ProxyEngine({ io: socketIo });
    t.teardown(() => eng2.close(10));
    const a2 = await eng2.listen({ name: 'dead', host: '127.0.0.1', port: 0, mptcp: true, front: explicitFront({ host: '127.0.0.1', port: deadPort }), connector: directConnector });
    const res = await new Promise<string>((resolve) => {
      const c = net.connect(a2.port, '127.0.0.1');
      c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      c.on('close', () => resolve('closed'));
    });
    t.equal(res, 'ECONNRESET', 'client saw a reset');
    t.equal(eng2.refusals.get('DC_PROXY_CONNECT_FAILED'), 1, 'refusal counted with its code');
  });

  t.test('reset from the server reaches the client as a reset', async (t) => {
    const rst = net.createServer((s) => s.once('data', () => s.resetAndDestroy()));
    await new Promise<void>((r) => rst.listen(0, '127.0.0.1', r));
    t.teardown(() => rst.close());
    const eng3 = new ProxyEngine({ io: socketIo });
    t.teardown(() => eng3.close(10));
    const a3 = await eng3.listen({ name: 'rst', host: '127.0.0.1', port: 0, mptcp: true, front: explicitFront({ host: '127.0.0.1', port: (rst.address() as net.AddressInfo).port }), connector: directConnector });
    const res = await new Promise<string>((resolve) => {
      const c = net.connect(a3.port, '127.0.0.1', () => c.write('hello'));
      c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      c.on('close', () => resolve('closed'));
    });
    t.equal(res, 'ECONNRESET');
    await waitFor(() => eng3.registry.size === 0);
    t.equal(eng3.registry.totals.reset, 1, 'counted as reset');
  });

  t.test('1,000 abandoned connections leave no session or fd behind', async (t) => {
    await waitFor(() => engine.registry.size === 0);
    const before = openFdCount();
    for (let batch = 0; batch < 10; batch++) {
      await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          new Promise<void>((resolve) => {
            const fd = createConnectSocket({ family: 4, mptcp: i % 2 === 0 });
            const c = new net.Socket({ fd });
            c.on('error', () => resolve());
            c.on('close', () => resolve());
            c.connect(addr.port, '127.0.0.1', () => {
              if (i % 3 === 0) c.resetAndDestroy();
              else if (i % 3 === 1) c.destroy();
              else c.end(Buffer.from([0, 0, 0, 0]));
            });
          }),
        ),
      );
    }
    await waitFor(() => engine.registry.size === 0, 10_000);
    t.equal(engine.registry.size, 0, 'no live session');
    await waitFor(() => openFdCount() <= before + 2, 10_000);
    t.ok(openFdCount() <= before + 2, `fds back to baseline (${before} → ${openFdCount()})`);
    // and the server side saw its connections end too: none is left open there
    const open = (): Promise<number> => new Promise((r) => srv.getConnections((e, n) => r(e ? -1 : n)));
    let left = await open();
    const until = Date.now() + 10_000;
    while (left !== 0 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
      left = await open();
    }
    t.equal(left, 0, 'the server holds no connection of theirs');
  });
});

async function waitFor(cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

// The fast path (services/proxy/fast.ts) on loopback with the real addon: idle sessions hold only
// their two sockets (no pipe made before a byte), a client's bytes and FIN sent at once still
// arrive, and DUOCELL_FAST_PATH=0 takes the JS path. Plain TCP: needs only the built addon.
import t from 'tap';
import net from 'node:net';
import { ProxyEngine } from '../../src/services/proxy/engine.js';
import { explicitFront } from '../../src/services/proxy/fronts/basic.js';
import { directConnector } from '../../src/services/proxy/connector.js';
import { openFdCount } from '../../src/drivers/sockets/index.js';
import { socketIo } from '../../src/drivers/sockets/io.js';
import { FastRelay } from '../../src/services/proxy/fast.js';

const why = socketIo.fastAvailable() ? false : 'the socket addon has no fast path (npm run setup)';

async function waitFor(cond: () => boolean, ms = 20_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

t.test('fast path on loopback', { skip: why }, async (t) => {
  const held: net.Socket[] = [];
  const srv = net.createServer({ allowHalfOpen: true }, (c) => {
    held.push(c);
    const parts: Buffer[] = [];
    c.on('data', (d: Buffer) => parts.push(d));
    c.on('end', () => c.end(Buffer.concat([Buffer.from('got:'), ...parts])));
    c.on('error', () => undefined);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => srv.close());
  const port = (srv.address() as net.AddressInfo).port;
  const engine = new ProxyEngine({ io: socketIo, idleTimeoutMs: 60_000 });
  t.teardown(() => engine.close(100));
  const addr = await engine.listen({ name: 'fast', host: '127.0.0.1', port: 0, mptcp: false, front: explicitFront({ host: '127.0.0.1', port }), connector: directConnector });

  t.test('bytes and FIN sent at once arrive; the answer comes back', async (t) => {
    const got = await new Promise<string>((resolve, reject) => {
      const c = net.connect({ host: '127.0.0.1', port: addr.port, allowHalfOpen: true }, () => c.end('hello'));
      const parts: Buffer[] = [];
      c.on('data', (d: Buffer) => parts.push(d));
      c.on('end', () => resolve(Buffer.concat(parts).toString()));
      c.on('error', reject);
    });
    t.equal(got, 'got:hello');
    t.ok(await waitFor(() => engine.registry.size === 0), 'the session ended');
    t.equal(engine.registry.totals.completed, 1);
  });

  t.test('idle sessions hold two sockets each, no pipe', async (t) => {
    const n = 100;
    const before = openFdCount();
    const clients: net.Socket[] = [];
    await Promise.all(
      Array.from({ length: n }, () =>
        new Promise<void>((resolve) => {
          const c = net.connect({ host: '127.0.0.1', port: addr.port }, () => resolve());
          c.on('error', () => resolve());
          clients.push(c);
        }),
      ),
    );
    t.ok(await waitFor(() => [...engine.registry.values()].filter((s) => s.state === 'relaying').length === n), `${n} sessions relaying`);
    t.ok([...engine.registry.values()].every((s) => s.relay instanceof FastRelay && s.client.destroyed), 'all on the fast path, no Node socket');
    // this process holds both ends here: the client's (n), the server's accepted (n), and the
    // proxy's two per session (2n); a pipe per direction would add 4n more
    const added = openFdCount() - before;
    t.ok(added <= 4 * n + 10, `fds added ${added} for ${n} idle sessions (≤ ${4 * n + 10})`);
    for (const c of clients) c.destroy();
    t.ok(await waitFor(() => engine.registry.size === 0), 'all ended');
    for (const c of held) c.destroy();
  });

  t.test('DUOCELL_FAST_PATH=0: the JS path', async (t) => {
    process.env['DUOCELL_FAST_PATH'] = '0';
    t.teardown(() => delete process.env['DUOCELL_FAST_PATH']);
    const e2 = new ProxyEngine({ io: socketIo });
    t.teardown(() => e2.close(100));
    const a2 = await e2.listen({ name: 'js', host: '127.0.0.1', port: 0, mptcp: false, front: explicitFront({ host: '127.0.0.1', port }), connector: directConnector });
    const c = net.connect({ host: '127.0.0.1', port: a2.port });
    t.teardown(() => c.destroy());
    await new Promise<void>((r) => c.once('connect', () => r()));
    t.ok(await waitFor(() => e2.registry.size === 1 && [...e2.registry.values()][0]!.state === 'relaying'));
    t.notOk([...e2.registry.values()][0]!.relay instanceof FastRelay, 'the JS path’s Relay');
  });
});

/**
 * A role of convert-steering.test.ts, run inside its namespace with `ip netns exec`:
 *   echo  an echo server on 10.70.0.1:9000 (the concentrator itself is `duocell run`)
 *   conc  Convert front on the SHARED service address 10.60.0.1:5124, an echo server on 10.70.0.1:9000
 *   cell  explicit listener on 127.0.0.1 → Convert client (MPTCP from 10.51.0.2) → 10.60.0.1:5124;
 *         drives one session itself and reports the upstream connection's subflows
 *         (MPTCP_FULL_INFO) while it is open.
 */
import net from 'node:net';
import { ProxyEngine } from '../../src/services/proxy/engine.js';
import { directConnector } from '../../src/services/proxy/connector.js';
import { explicitFront } from '../../src/services/proxy/fronts/basic.js';
import { convertFront } from '../../src/services/proxy/fronts/convert.js';
import { convertConnector } from '../../src/services/proxy/convert-client.js';
import { socketIo } from '../../src/drivers/sockets/io.js';

const out = (o: Record<string, unknown>): void => void process.stdout.write(JSON.stringify(o) + '\n');
const COOKIE = 'steer-1';

async function main(): Promise<void> {
  const role = process.argv[2];
  if (role === 'echo') {
    const echo = net.createServer({ allowHalfOpen: true }, (c) => {
      c.on('error', () => undefined);
      c.pipe(c);
    });
    await new Promise<void>((r) => echo.listen(9000, '10.70.0.1', r));
    out({ ready: true });
    return;
  }
  if (role === 'conc') {
    const echo = net.createServer({ allowHalfOpen: true }, (c) => {
      c.on('error', () => undefined);
      c.pipe(c);
    });
    await new Promise<void>((r) => echo.listen(9000, '10.70.0.1', r));
    const e = new ProxyEngine({ io: socketIo });
    await e.listen({
      name: 'convert', host: '10.60.0.1', port: 5124, mptcp: true,
      front: convertFront({ cookies: [{ cookie: COOKIE }] }),
      connector: directConnector, upstream: { mptcp: false },
    });
    out({ ready: true });
    return;
  }
  const e = new ProxyEngine({ io: socketIo });
  // Ask the concentrator (duocell) for the grant and keep what its reply carried.
  const conv = convertConnector({ concentrator: { address: '10.60.0.1', port: 5124 }, cookie: COOKIE, askGrant: true });
  let grant: unknown;
  const connector = {
    name: conv.name,
    async connect(req: Parameters<typeof conv.connect>[0]) {
      const r = await conv.connect(req);
      grant = r.grant ?? null;
      return r;
    },
  };
  const a = await e.listen({
    name: 'cell', host: '127.0.0.1', port: 0, mptcp: false,
    front: explicitFront({ host: '10.70.0.1', port: 9000 }),
    connector,
    upstream: { mptcp: true, localAddresses: ['10.51.0.2'] },
  });
  const c = net.connect(a.port, '127.0.0.1');
  let echoed = 0;
  c.on('data', (d: Buffer) => (echoed += d.length));
  await new Promise((r) => c.once('connect', r));
  // Keep the session busy for a while so the path manager can add subflows.
  const samples: Array<Array<{ local: string; remote: string; bytesSent: number }>> = [];
  for (let i = 0; i < 30; i++) {
    c.write(Buffer.alloc(16 * 1024, i));
    await new Promise((r) => setTimeout(r, 100));
    for (const s of e.registry.values()) {
      s.sample(); // MPTCP_FULL_INFO of both legs, wherever the relay keeps the fds
      const fi = s.lastServerInfo;
      if (fi !== undefined) {
        samples.push(
          fi.subflows.map((sf) => ({
            local: `${sf.local?.address}:${sf.local?.port}`,
            remote: `${sf.remote?.address}:${sf.remote?.port}`,
            bytesSent: Number(sf.tcp.bytesSent),
          })),
        );
      }
    }
  }
  c.end();
  await new Promise((r) => c.once('close', r));
  out({ subflows: samples[samples.length - 1] ?? [], maxSubflows: Math.max(0, ...samples.map((s) => s.length)), echoed, grant });
  await e.close(100);
  process.exit(0);
}

main().catch((e: unknown) => {
  out({ fatal: String((e as Error)?.stack ?? e) });
  process.exit(1);
});

// A transparent session whose upstream answered MPTCP is remembered for end-to-end bypass only
// when the MPTCP peer is the server itself: through a Transport Converter (RFC 8803) the peer is
// the concentrator. The connector says which per session (a cell's transparent listener has the
// selecting connector, named 'select', whose sessions may go either way): convert-setup found
// every pooled session paying a store write and an nft run again when the check was by name.
import net from 'node:net';
import t from 'tap';
import { socketIo } from '../../src/drivers/sockets/io.js';
import { ProxyEngine } from '../../src/services/proxy/engine.js';
import { explicitFront } from '../../src/services/proxy/fronts/basic.js';
import type { Connector, ProxyIo } from '../../src/services/proxy/types.js';

process.env['DUOCELL_RELAY'] = 'js';

const nodeFd = (s: net.Socket | net.Server): number | undefined => (s as unknown as { _handle?: { fd?: number } | null })._handle?.fd;

/** Node's own sockets, a listener that claims to be transparent, every peer claimed MPTCP. */
const io: ProxyIo = {
  ...socketIo,
  createListenSocket: (o) => socketIo.createListenSocket({ ...o, mptcp: false, transparent: false }),
  fdOf: nodeFd,
  isMptcp: () => true,
  spliceAvailable: () => false,
};

/** A connector named like the cell's selecting one; its sessions go through a converter or not. */
const selecting = (port: number, converter: boolean | undefined): Connector => ({
  name: 'select',
  connect: () =>
    new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true }, () => resolve({ socket, serverMptcp: true, ...(converter === undefined ? {} : { converter }) }));
      socket.once('error', reject);
    }),
});

for (const [converter, expected] of [[true, 0], [undefined, 1]] as const) {
  t.test(`converter ${String(converter)}: ${expected === 0 ? 'nothing' : 'the server'} remembered for bypass`, async (t) => {
    const echo = net.createServer({ allowHalfOpen: true }, (c) => c.pipe(c));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    t.teardown(() => echo.close());
    const port = (echo.address() as net.AddressInfo).port;
    const remembered: Array<{ address: string; port: number }> = [];
    const engine = new ProxyEngine({ io, onMptcpServer: (s) => remembered.push(s) });
    t.teardown(() => engine.close(100));
    const addr = await engine.listen({ name: 'tp', host: '127.0.0.1', port: 0, mptcp: true, transparent: true, front: explicitFront({ host: '127.0.0.1', port }), connector: selecting(port, converter) });
    const got = await new Promise<string>((resolve, reject) => {
      const c = net.connect(addr.port, '127.0.0.1', () => c.write('x'));
      c.once('data', (d) => {
        resolve(d.toString());
        c.end();
      });
      c.once('error', reject);
    });
    t.equal(got, 'x', 'the session relayed');
    t.equal(remembered.length, expected, `onMptcpServer called ${remembered.length} times`);
    if (expected === 1) t.same(remembered[0], { address: '127.0.0.1', port });
  });
}

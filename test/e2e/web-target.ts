// What the browser test runs against. Now: a web server on 127.0.0.1 with fake deps whose
// links carry more traffic on startTransfer(). To run the same test against the simulated
// board, make startTarget() bring the board up with a fresh state directory and return its
// page URL and a transfer starter (e.g. iperf3 from dc-mue).
import { createFakeDeps, type FakeUdpView } from '../helpers/fake-deps.js';
import { createWebServer } from '../../src/web/server.js';

export interface Target {
  base: string;
  /** Make traffic flow over both paths. */
  startTransfer(): Promise<void>;
  /** What GET /api/v1/udp answers on this target (the fake deps' UDP flows). */
  udp(): Promise<FakeUdpView>;
  close(): Promise<void>;
}

export async function startTarget(): Promise<Target> {
  const deps = createFakeDeps({ tickMs: 250 });
  deps.setLoad(0.3);
  const server = await createWebServer(deps, { listen: [{ host: '127.0.0.1', port: 0 }], sampleMs: 250 });
  return {
    base: `http://127.0.0.1:${server.addresses()[0]!.port}`,
    async startTransfer() {
      deps.setLoad(3);
    },
    udp: () => deps.udp(),
    async close() {
      deps.stop();
      await server.close();
    },
  };
}

/**
 * The cell side of proxy-socks5.test.ts, run inside its namespace with `ip netns exec`, where
 * lo carries 10.77.0.1 (the N-server), 10.77.0.2 (duocell's own SOCKS5 front, a concentrator)
 * and 10.77.0.3 (danted, started by the parent on port 1080).
 *
 *   client ─► cell 127.0.0.1 (explicit front → 10.77.0.1) ─► selecting connector
 *               ├─ own   10.77.0.2  socks5, username/password, MPTCP front   priority 10
 *               └─ dante 10.77.0.3  socks5, no authentication, plain TCP     priority 5
 *
 * Steps, each reported as a JSON line:
 *   probes  both candidates probed (greeting, credentials): their RTTs
 *   own     3 sessions of 2 MiB each way: hashes, the candidate chosen, MPTCP on the server side
 *   dead    the own front closes its listener: 4 more sessions, the same report, and the health
 *           of both candidates afterwards
 */
import { ProxyEngine } from '../../src/services/proxy/engine.js';
import { directConnector } from '../../src/services/proxy/connector.js';
import { explicitFront } from '../../src/services/proxy/fronts/basic.js';
import { socks5Front } from '../../src/services/proxy/fronts/socks5.js';
import { probeSocks5 } from '../../src/services/proxy/socks5-client.js';
import { ProxySelector } from '../../src/services/proxy/selection.js';
import { selectingConnector } from '../../src/services/proxy/select-connector.js';
import { normalizeProxies } from '../../src/store/validate.js';
import { socketIo } from '../../src/drivers/sockets/io.js';
import { runPeerClient, startPeerServer, type PeerReport } from '../../src/sim/peer.js';
import type { SessionView } from '../../src/services/proxy/types.js';
import type net from 'node:net';

const out = (o: Record<string, unknown>): void => void process.stdout.write(JSON.stringify(o) + '\n');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const MIB = 1 << 20;

async function main(): Promise<void> {
  const srvReports: PeerReport[] = [];
  const srv = await startPeerServer({ host: '10.77.0.1', port: 0, mptcp: false }, (r) => srvReports.push(r));
  const srvPort = (srv.address() as net.AddressInfo).port;

  // duocell's own SOCKS5 front, as a concentrator runs it: MPTCP toward cells, plain TCP onward.
  const conc = new ProxyEngine({ io: socketIo });
  const concAddr = await conc.listen({
    name: 'socks5', host: '10.77.0.2', port: 0, mptcp: true,
    front: socks5Front({ users: [{ username: 'cell-1', password: 'pw-cell-1' }] }),
    connector: directConnector, upstream: { mptcp: false },
  });
  const candidates = normalizeProxies([
    { name: 'own', address: '10.77.0.2', port: concAddr.port, protocol: 'socks5', priority: 10, auth: { username: 'cell-1', password: 'pw-cell-1' } },
    { name: 'dante', address: '10.77.0.3', port: 1080, protocol: 'socks5', priority: 5 },
  ]);
  const selector = new ProxySelector({
    candidates: () => candidates,
    probe: (c, signal) =>
      probeSocks5({ address: c.address, port: c.port }, {
        ...(c.auth?.password === undefined ? {} : { auth: { username: c.auth.username, password: c.auth.password } }),
        options: { mptcp: true }, signal, timeoutMs: 1000, io: socketIo,
      }),
    timeoutMs: 1000,
    // Probes slow enough that the dead candidate below is found by its failed sessions.
    intervalMs: 60_000,
    recoverIntervalMs: 60_000,
  });
  const cell = new ProxyEngine({ io: socketIo });
  const views = new Map<number, SessionView>();
  cell.on('session', (v) => views.set(v.client.port, v));
  const refused: string[] = [];
  cell.on('refused', (r) => refused.push(r.code));
  const cellAddr = await cell.listen({
    name: 'lan', host: '127.0.0.1', port: 0, mptcp: false,
    front: explicitFront({ host: '10.77.0.1', port: srvPort }),
    connector: selectingConnector({ selector, fallback: directConnector }),
    upstream: { mptcp: true },
  });

  // Probes: one round, both must answer.
  await Promise.all(candidates.map((c) => selector.probeOnce(c)));
  out({ probes: selector.list().map((x) => ({ name: x.candidate.name, healthy: x.health.healthy, rttMs: x.health.rttMs, lastError: x.health.lastError })) });

  async function sessions(n: number): Promise<Array<Record<string, unknown>>> {
    const res: Array<Record<string, unknown>> = [];
    for (let i = 0; i < n; i++) {
      const before = srvReports.length;
      const c = await runPeerClient({ host: '127.0.0.1', port: cellAddr.port, mptcp: false, send: 2 * MIB, receive: 2 * MIB, timeoutMs: 30_000 });
      for (let w = 0; w < 200 && srvReports.length === before; w++) await sleep(25);
      const s = srvReports[before];
      const port = Number(c.local.split(':').pop());
      const v = views.get(port);
      res.push({
        error: c.error ?? null,
        upIntact: s !== undefined && s.receivedHash === c.sentHash && s.received === 2 * MIB,
        downIntact: s !== undefined && c.receivedHash === s.sentHash && c.received === 2 * MIB,
        sentHash: c.sentHash,
        proxy: v?.proxy ?? null,
        serverMptcp: v?.server.mptcp ?? null,
        combination: v?.combination ?? null,
      });
    }
    return res;
  }

  out({ own: await sessions(3) });
  await conc.close(100); // the concentrator is gone: its port refuses connections
  out({ dead: await sessions(4), refused, health: selector.list().map((x) => ({ name: x.candidate.name, healthy: x.health.healthy, sessionFailures: x.health.sessionFailures, lastError: x.health.lastError })) });
  selector.stop();
  await cell.close(100);
  srv.close();
  out({ done: true });
}

main().catch((e: unknown) => {
  out({ fatal: (e as Error).stack ?? String(e) });
  process.exitCode = 1;
});

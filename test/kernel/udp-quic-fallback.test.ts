// Needs root, network namespaces, nftables with TPROXY, conntrack and the kernel's MPTCP (runs in
// CI as root).
// quic: block as a browser meets it, in the running cell (`duocell run`: UDP steering and the
// proxy in one process). A browser's QUIC stack uses a *connected* UDP socket, on which Linux
// reports the cell's ICMP port-unreachable as ECONNREFUSED; it then falls back to TCP/443 at once,
// and the cell's transparent front carries that TCP connection as an MPTCP upstream session.
// (udp-quic-block.test.ts: ngtcp2's example client, unconnected socket, ignores the ICMP error.)
// The cell runs with the shipped fwmark sysctls (systemd/60-duocell.conf): with fwmark_reflect = 1
// the ICMP error took the UDP flow's uplink mark and left by the uplink, never reaching the
// device, until the ruleset cleared the mark before the reject (services/udp/ruleset.ts).
//
//   lan [lan0]──[lan0] cell [up0]──[up0] srv (M-server on TCP/443; nothing on UDP/443)
import t from 'tap';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { Topology, netnsUnavailable, sh } from '../helpers/hosts.js';
import { adminSession, nsFetch, startCell, startPeerServerIn, waitFor } from '../helpers/appliance.js';
import type { SessionView } from '../../src/services/proxy/types.js';
import type { PolicyView } from '../../src/web/deps.js';
import { parseSysctlConf, SHIPPED_SYSCTL } from '../../bench/sysctl.js';
import { start, stopChild } from '../helpers/udp-steer.js';

const has = (p: string): boolean => spawnSync('sh', ['-c', `command -v ${p}`]).status === 0;
const why = (await netnsUnavailable()) || ((await sh('nft', ['--version'], { allowFail: true })) === '' ? 'nft is not installed' : false) || (!has('conntrack') ? 'needs conntrack' : false);

const N = 184;
const SRV = `10.${N}.3.2`;
const WEB = 18184;

t.test('quic: block — a browser-like client (connected UDP) gets ECONNREFUSED at once and its TCP fallback is an M-session (needs root)', { skip: why === false ? false : why, timeout: 240_000 }, async (t) => {
  const topo = new Topology(`tqf${process.pid % 10000}`);
  t.teardown(() => topo.destroy());
  const lan = await topo.host('lan');
  const cell = await topo.host('cell', { forward: true });
  const srv = await topo.host('srv');
  // the box's own mark settings (systemd/60-duocell.conf), as steering-netns.test.ts sets them
  for (const s of parseSysctlConf(fs.readFileSync(SHIPPED_SYSCTL, 'utf8'), '60-duocell.conf').filter((x) => x.key.includes('fwmark'))) await cell.sysctl(s.key, s.value);
  await topo.link(lan, 'lan0', cell, 'lan0', { a: [`10.${N}.4.2/24`], b: [`10.${N}.4.1/24`] });
  await topo.link(cell, 'up0', srv, 'up0', { a: [`10.${N}.3.1/24`], b: [`${SRV}/24`] });
  await lan.ip('route', 'replace', 'default', 'via', `10.${N}.4.1`);
  await srv.ip('route', 'replace', 'default', 'via', `10.${N}.3.1`);
  for (const h of [cell, srv]) await h.mptcpLimits(4, 4);

  // the M-server on TCP/443; UDP/443 there is closed, but the cell answers first
  const mserver = startPeerServerIn(srv, '0.0.0.0', 443, true);
  t.teardown(() => {
    mserver.child.kill('SIGKILL');
  });
  await mserver.ready;

  const board = {
    name: 'test-quic-fallback',
    preset: 'cell',
    uplinks: [{ name: 'wlan', access: 'wlan', interface: 'up0', table: 202, gateway4: SRV }],
    lan: { interfaces: ['lan0'] },
    web: { listen: [{ host: '127.0.0.1', port: WEB }] },
    listeners: [{ kind: 'transparent', host: '::', port: 443, mptcp: true, upstream: 'mptcp', claim: 'all' }],
    accessNetworks: [{ prefix: `10.${N}.4.0/24`, access: 'lan' }],
    udpSteering: { enabled: true, mode: 'active-standby' },
  };
  const app = await startCell(cell, board, WEB);
  t.teardown(async () => {
    app.child.kill('SIGTERM');
    if (app.child.exitCode === null) await new Promise((r) => app.child.once('exit', r));
  });
  const base = `http://127.0.0.1:${WEB}`;
  const auth = await adminSession(cell, base);
  const api = async <T>(p: string, init: { method?: string; body?: string } = {}): Promise<{ status: number; body: T }> => {
    const r = await nsFetch(cell, `${base}/api/v1/${p}`, { ...init, headers: { ...auth, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) } });
    return { status: r.status, body: JSON.parse(r.body) as T };
  };

  // quic: block on the cell default policy, through the page's API
  const pol = await api<PolicyView>('policy');
  const put = await api<PolicyView>('policy', { method: 'PUT', body: JSON.stringify({ defaults: { ...pol.body.defaults, quic: 'block' } }) });
  t.equal(put.status, 200, 'quic: block set on the default policy');
  t.equal(put.body.defaults.quic, 'block');
  const ruled = await waitFor(async () => ((await cell.exec('nft', ['list', 'table', 'inet', 'duocell_udp'], { allowFail: true })).includes('chain quic') ? true : undefined), 30_000, 250);
  t.ok(ruled, 'the cell\'s UDP ruleset rejects UDP/443');
  if (ruled !== true) {
    t.comment(`nft: ${await cell.exec('nft', ['list', 'tables'], { allowFail: true })}\nudp: ${JSON.stringify((await api('udp')).body)}\nlogs: ${app.logs.join('').slice(-3000)}`);
    return;
  }

  // the browser-like client (src/sim/udp-steer-child.ts quic-browser): connected UDP, falls back to TCP/443 and holds it
  const browser = start(lan, ['quic-browser', SRV, 'hold']);
  t.teardown(() => stopChild(browser.child));
  type Step = { code?: string; syscall?: string; ms: number; local?: string };
  const next = async (key: string): Promise<Step | undefined> => {
    for (let i = 0; ; i++) {
      const l = await browser.line(i).catch(() => undefined);
      if (l === undefined || 'tcpError' in l) return undefined;
      if (key in l) return l[key] as Step;
    }
  };
  const quic = await next('quic');
  t.comment(`quic-fallback (browser-like, connected UDP): ${quic?.code} (${quic?.syscall}) ${quic?.ms.toFixed(1)} ms after the first 1200-byte datagram`);
  t.equal(quic?.code, 'ECONNREFUSED', 'the connected socket reports the ICMP port-unreachable as ECONNREFUSED');
  t.ok(quic !== undefined && quic.ms < 3000, `it arrives well before ngtcp2's 5 s handshake timeout (${quic?.ms.toFixed(1)} ms)`);
  const counter = await cell.exec('nft', ['list', 'counter', 'inet', 'duocell_udp', 'quic_blocked']);
  const rejected = Number(/packets (\d+)/.exec(counter)?.[1] ?? 0);
  t.ok(rejected >= 1, `the cell rejected the UDP/443 datagram (${rejected} packets)`);

  const tcp = await next('tcp');
  t.ok(tcp !== undefined, `the TCP fallback connected (${JSON.stringify(browser.lines)})`);
  t.comment(`quic-fallback: TCP/443 connected ${tcp?.ms.toFixed(1)} ms after the first datagram`);

  // the held fallback connection, as the cell's sessions show it
  const seen = await waitFor(async () => (await api<SessionView[]>('sessions')).body.find((s) => s.server.port === 443 && s.client.address.endsWith(`10.${N}.4.2`) && s.server.mptcp), 30_000, 300);
  t.ok(seen, 'the fallback connection is a session of the cell with an MPTCP upstream');
  t.equal(seen?.front, 'transparent', 'intercepted by the transparent front');
  t.equal(seen?.client.mptcp, false, 'the browser spoke plain TCP');
  t.equal(seen?.server.mptcp, true, 'the cell re-originated it as MPTCP: an M-session');
  t.equal(seen?.combination, 'N-M');
  // and the M-server's kernel holds it as an MPTCP connection from the cell
  const ss = await waitFor(async () => {
    const o = await srv.exec('ss', ['-HMn', 'state', 'established'], { allowFail: true });
    return /:443\s/.test(o) && o.includes(`10.${N}.3.1`) ? o : undefined;
  }, 15_000, 250);
  t.ok(ss, `ss -M in the server's namespace lists the MPTCP connection from the cell (${ss?.trim()})`);
});

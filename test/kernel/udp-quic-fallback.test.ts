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
import { spawnSync, type ChildProcess } from 'node:child_process';
import { Topology, netnsUnavailable, sh } from '../helpers/hosts.js';
import { adminSession, nsFetch, startCell, startPeerServerIn, waitFor } from '../helpers/appliance.js';
import type { SessionView } from '../../src/services/proxy/types.js';
import type { PolicyView } from '../../src/web/deps.js';
import { parseSysctlConf, SHIPPED_SYSCTL } from '../../bench/sysctl.js';

const has = (p: string): boolean => spawnSync('sh', ['-c', `command -v ${p}`]).status === 0;
const why = (await netnsUnavailable()) || ((await sh('nft', ['--version'], { allowFail: true })) === '' ? 'nft is not installed' : false) || (!has('conntrack') ? 'needs conntrack' : false);

const N = 184;
const SRV = `10.${N}.3.2`;
const WEB = 18184;

/**
 * The browser-like client, run in the LAN namespace: a connected UDP socket sends a
 * QUIC-Initial-sized datagram (1200 bytes, again every 1 s as a PTO would) to HOST:443; on the
 * first socket error it prints {"quic": {code, ms}} (ms from the first datagram, monotonic) and
 * falls back to TCP HOST:443, sends 4 bytes (half of the peer server's header: the server keeps
 * waiting, and the MPTCP upstream becomes fully established) and prints {"tcp": {ms, local}}; it
 * holds that connection until it is killed or the peer closes it.
 */
const BROWSER = `
import dgram from 'node:dgram';
import net from 'node:net';
const host = process.argv[1];
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const now = () => Number(process.hrtime.bigint()) / 1e6;
const s = dgram.createSocket('udp4');
let t0 = 0;
let pto;
s.once('error', (e) => {
  const ms = now() - t0;
  clearInterval(pto);
  s.close();
  out({ quic: { code: e.code, syscall: e.syscall, ms } });
  const c = net.connect({ host, port: 443 }, () => {
    c.write(Buffer.alloc(4));
    out({ tcp: { ms: now() - t0, local: c.localAddress + ':' + c.localPort } });
  });
  c.on('error', (err) => { out({ tcpError: err.code ?? err.message }); process.exit(1); });
  c.on('close', () => process.exit(0));
});
s.connect(443, host, () => {
  const initial = Buffer.alloc(1200);
  initial[0] = 0xc0; // long header, Initial
  initial.writeUInt32BE(1, 1); // QUIC version 1
  t0 = now();
  s.send(initial);
  pto = setInterval(() => s.send(initial), 1000);
  setTimeout(() => { out({ quic: { code: 'none', ms: now() - t0 } }); process.exit(2); }, 20000).unref();
});
`;

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

  const browser: ChildProcess = lan.spawn(process.execPath, ['--input-type=module', '-e', BROWSER, SRV]);
  t.teardown(() => {
    browser.kill('SIGKILL');
  });
  const lines: Array<Record<string, { code?: string; syscall?: string; ms: number; local?: string }>> = [];
  let err = '';
  browser.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  let buf = '';
  const waiters: Array<() => void> = [];
  browser.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buf.slice(0, i)) as (typeof lines)[number]);
      buf = buf.slice(i + 1);
    }
    waiters.splice(0).forEach((w) => w());
  });
  browser.once('exit', () => waiters.splice(0).forEach((w) => w()));
  const next = (key: string): Promise<(typeof lines)[number][string] | undefined> =>
    new Promise((resolve) => {
      const check = (): void => {
        const l = lines.find((x) => key in x || 'tcpError' in x);
        if (l !== undefined) resolve(l[key]);
        else if (browser.exitCode !== null) resolve(undefined);
        else waiters.push(check);
      };
      check();
    });

  const quic = await next('quic');
  t.comment(`quic-fallback (browser-like, connected UDP): ${quic?.code} (${quic?.syscall}) ${quic?.ms.toFixed(1)} ms after the first 1200-byte datagram${err === '' ? '' : `; stderr: ${err}`}`);
  t.equal(quic?.code, 'ECONNREFUSED', 'the connected socket reports the ICMP port-unreachable as ECONNREFUSED');
  t.ok(quic !== undefined && quic.ms < 3000, `it arrives well before ngtcp2's 5 s handshake timeout (${quic?.ms.toFixed(1)} ms)`);
  const counter = await cell.exec('nft', ['list', 'counter', 'inet', 'duocell_udp', 'quic_blocked']);
  const rejected = Number(/packets (\d+)/.exec(counter)?.[1] ?? 0);
  t.ok(rejected >= 1, `the cell rejected the UDP/443 datagram (${rejected} packets)`);

  const tcp = await next('tcp');
  t.ok(tcp !== undefined, `the TCP fallback connected (${JSON.stringify(lines)})`);
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

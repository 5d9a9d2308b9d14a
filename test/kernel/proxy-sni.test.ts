// Matching an application by TLS SNI on the transparent front (issue 15), in namespaces
// (sni<pid>-*; needs root and MPTCP; runs in CI as root). The cell is composed by the product's
// wiring; subscriber alice's policy has a rule "video (SNI video.example, *.cdn.example; ports
// 443, 25) → siteA"; everything else goes to the default candidate.
//
//   ue 10.65.0.2 ──10.65.0.0/24── cell (owns 10.66.0.1: listeners :443 :25 :8443)
//                                  ├─eth1 10.61.1.0/24── c1 "siteA"   ──10.62.1.0/24──┐
//                                  └─eth2 10.61.2.0/24── c2 "default" ──10.62.2.0/24──┴── srv (10.66.0.1)
import t from 'tap';
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { netnsUnavailable, Topology, type Host } from '../helpers/hosts.js';
import { SLOW_FILE_MS, START_MS, startRole, type Role } from '../helpers/roles.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const reason = await netnsUnavailable();

const start = (h: Host, role: string, args: string[] = []): Role => startRole(h, path.join(here, 'proxy-sni-child.ts'), role, args, 'ignore');

const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([p, new Promise<T>((_r, rej) => setTimeout(() => rej(new Error(`timed out: ${what}`)), ms).unref())]);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Result {
  label: string;
  port: number;
  ok: boolean;
  sentHash?: string;
  gotHash?: string;
  bannerMs?: number;
  err?: string;
}

t.setTimeout(SLOW_FILE_MS); // start-up waits of up to START_MS each (helpers/roles.ts)
t.test('kernel, root, netns: an SNI rule places TLS sessions; bytes arrive unchanged; server-first still works', { skip: reason, timeout: SLOW_FILE_MS - 60_000 }, async (t) => {
  const topo = new Topology(`sni${process.pid}`);
  t.teardown(() => topo.destroy());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'duocell-sni-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const ue = await topo.host('ue');
  const cell = await topo.host('cell');
  const c1 = await topo.host('c1');
  const c2 = await topo.host('c2');
  const srv = await topo.host('srv');
  await topo.link(ue, 'eth0', cell, 'eth0', { a: ['10.65.0.2/24'], b: ['10.65.0.1/24'] });
  await topo.link(cell, 'eth1', c1, 'eth0', { a: ['10.61.1.1/24'], b: ['10.61.1.2/24'] });
  await topo.link(cell, 'eth2', c2, 'eth0', { a: ['10.61.2.1/24'], b: ['10.61.2.2/24'] });
  await topo.link(c1, 'eth1', srv, 'eth1', { a: ['10.62.1.1/24'], b: ['10.62.1.2/24'] });
  await topo.link(c2, 'eth1', srv, 'eth2', { a: ['10.62.2.1/24'], b: ['10.62.2.2/24'] });
  await srv.ip('addr', 'add', '10.66.0.1/32', 'dev', 'lo');
  await cell.ip('addr', 'add', '10.66.0.1/32', 'dev', 'lo'); // the cell stands in for the server, as TPROXY makes it
  await ue.route('10.66.0.0/24', '10.65.0.1');
  await c1.route('10.66.0.1/32', '10.62.1.2');
  await c2.route('10.66.0.1/32', '10.62.2.2');

  const roles = [start(srv, 'srv'), start(c1, 'conc'), start(c2, 'conc')];
  for (const r of roles) await withTimeout(r.line('ready'), START_MS, 'servers ready').catch((e: Error) => {
    throw new Error(`${e.message}: ${roles.map((x) => `${x.lines.length} lines, stderr ${x.stderr().slice(-600)}`).join(' | ')}`);
  });
  const cellR = start(cell, 'cell', [dir, '300']);
  roles.push(cellR);
  t.teardown(() => {
    for (const r of roles) r.child.kill('SIGKILL');
  });
  await withTimeout(cellR.line('ready'), START_MS, 'cell ready (both candidates probed)');
  const ueR = start(ue, 'ue', ['21']);
  roles.push(ueR);
  const rep = await withTimeout(ueR.line('results'), 180_000, 'client results');
  const results = rep.results as Result[];
  const sessions = new Map(cellR.lines.filter((l) => l.session !== undefined).map((l) => {
    const s = l.session as { port: number; proxy: string | null; sni: string | null };
    return [s.port, s] as const;
  }));
  const by = (label: string): Result & { proxy?: string | null; sni?: string | null } => {
    const r = results.find((x) => x.label === label);
    if (r === undefined) throw new Error(`no result ${label}`);
    const s = sessions.get(r.port);
    return { ...r, proxy: s?.proxy, sni: s?.sni };
  };
  const cases: Array<[string, string, string | null]> = [
    ['video.example :443', 'siteA', 'video.example'],
    ['video.example :443 in two segments 40 ms apart', 'siteA', 'video.example'],
    ['edge7.cdn.example :443', 'siteA', 'edge7.cdn.example'],
    ['news.example :443', 'default', 'news.example'],
    ['not TLS :443', 'default', null],
    ['video.example :8443 (no rule names the port)', 'default', null],
  ];
  for (const [label, proxy, sni] of cases) {
    const r = by(label);
    t.equal(r.err, undefined, `${label}: no client error`);
    t.ok(r.ok && r.gotHash === r.sentHash, `${label}: the server received exactly the client's bytes (sha256 ${r.sentHash?.slice(0, 12)} = ${r.gotHash?.slice(0, 12)})`);
    t.equal(r.proxy, proxy, `${label}: placed on ${proxy} (session view "proxy")`);
    t.equal(r.sni, sni, `${label}: session view "sni" ${sni}`);
  }
  const sf = by('server-first :25');
  t.ok(sf.ok, `server-first on a port an SNI rule names: banner and reply arrive (${sf.err ?? 'ok'})`);
  t.equal(sf.proxy, 'default', 'server-first: placed without SNI (the default candidate)');
  t.ok((sf.bannerMs ?? 0) >= 250, `server-first: the banner waited for the SNI bound (${Math.round(sf.bannerMs ?? 0)} ms, bound 300 ms)`);
  const lat = rep.latency as { withRule: number[]; without: number[] };
  const mw = median(lat.withRule);
  const mo = median(lat.without);
  t.ok(lat.withRule.every((x) => x > 0) && lat.without.every((x) => x > 0), 'every latency session answered');
  t.comment(`figures: set-up latency (connect → server's first byte after a ClientHello), median of ${lat.withRule.length} interleaved: ` +
    `with an SNI rule on the port ${mw.toFixed(2)} ms, without ${mo.toFixed(2)} ms (difference ${(mw - mo).toFixed(2)} ms); server-first banner after ${Math.round(sf.bannerMs ?? 0)} ms`);
});

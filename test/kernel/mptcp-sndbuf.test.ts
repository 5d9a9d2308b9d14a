// Needs root, network namespaces and the kernel's MPTCP (runs in CI as root).
// The product's MPTCP sockets have a bounded send buffer (DUOCELL_MPTCP_SNDBUF, docs/relay.md
// "Handover"): set on the listener and on an outgoing socket, it reaches every subflow, the
// accepted connection's and the joins' too (the kernel doubles the value and locks it).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { Topology, netnsUnavailable, type Host } from '../helpers/hosts.js';

const why = await netnsUnavailable();
const here = path.dirname(fileURLToPath(import.meta.url));
const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript') || (a.startsWith('--import=') && a.includes('tsx')));

interface Report {
  port: number;
  rows: Array<{ kind: string; tb: number }>;
}

async function run(h: Host, bytes: number): Promise<Report> {
  const child = h.spawn(process.execPath, [...loader, path.join(here, 'mptcp-sndbuf-child.ts'), String(bytes)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, DUOCELL_LOG_LEVEL: 'silent' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`child exited ${code}: ${stderr}`);
  return JSON.parse(stdout.trim().split('\n').pop()!) as Report;
}

t.test('MPTCP send buffer bound reaches every subflow (needs root, netns, MPTCP)', { skip: why === false ? false : why, timeout: 90_000 }, async (t) => {
  const topo = new Topology(`thandsb${process.pid % 100000}`);
  t.teardown(() => topo.destroy());
  const h = await topo.host('a');
  await h.ip('link', 'set', 'lo', 'up');
  await h.ip('addr', 'add', '10.98.0.1/32', 'dev', 'lo');
  await h.ip('addr', 'add', '10.98.0.2/32', 'dev', 'lo');
  await h.sysctl('net.mptcp.enabled', 1);
  await h.mptcpLimits(4, 4);
  await h.mptcpEndpoint('10.98.0.2', 'lo', ['subflow']);

  const bound = await run(h, 70_000);
  const sub = bound.rows.filter((r) => r.kind === 'tcp');
  t.ok(sub.length >= 4, `both ends have the initial subflow and the join (${sub.length} TCP rows)`);
  t.same(sub.map((r) => r.tb), sub.map(() => 140_000), 'every subflow, accepted, joined or outgoing: twice the value (the kernel doubles it)');
  const msk = bound.rows.filter((r) => r.kind === 'mptcp');
  t.ok(msk.length >= 2 && msk.every((r) => r.tb === 140_000), 'both MPTCP connections too');

  const free = await run(h, 0);
  const sub0 = free.rows.filter((r) => r.kind === 'tcp');
  t.ok(sub0.length >= 2, 'the control run has subflows');
  t.ok(sub0.every((r) => r.tb !== 140_000), 'without the setting the kernel autotunes (not that value)');
});

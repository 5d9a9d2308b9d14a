// Needs root and network namespaces (runs in CI as root), and a kernel with
// CONFIG_INET_DIAG_DESTROY (the one `ss -K` needs).
// The sock_diag driver aborts TCP connections by their 4-tuple (SOCK_DESTROY): the peer sees a
// reset, the owner of the destroyed socket an abort; a tuple no socket has aborts nothing.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { Topology, netnsUnavailable } from '../helpers/hosts.js';

const why = await netnsUnavailable();
const here = path.dirname(fileURLToPath(import.meta.url));
const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript') || (a.startsWith('--import=') && a.includes('tsx')));

t.test('sock_diag SOCK_DESTROY in a namespace (needs root, CONFIG_INET_DIAG_DESTROY)', { skip: why === false ? false : why, timeout: 60_000 }, async (t) => {
  const topo = new Topology(`tiosd${process.pid % 100000}`);
  t.teardown(() => topo.destroy());
  const h = await topo.host('a');
  const child = h.spawn(process.execPath, [...loader, path.join(here, 'sock-diag-destroy-child.ts')], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, DUOCELL_LOG_LEVEL: 'silent' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  t.equal(code, 0, `child exited cleanly ${stderr}`);
  const r = JSON.parse(stdout.trim().split('\n').pop()!) as {
    error?: { code: string; message: string };
    out: Array<{ name: string; aborted: number; again: number; peer: string; own: string }>;
    none: number;
  };
  t.notOk(r.error, `no error: ${JSON.stringify(r.error)}`);
  t.equal(r.out.length, 3);
  for (const o of r.out) {
    t.equal(o.aborted, 1, `${o.name}: one socket aborted`);
    t.equal(o.peer, 'ECONNRESET', `${o.name}: the peer sees a reset`);
    t.equal(o.own, 'ECONNABORTED', `${o.name}: the owner sees its socket aborted`);
    t.equal(o.again, 0, `${o.name}: destroyed again, nothing is left to abort`);
  }
  t.equal(r.none, 0, 'a 4-tuple no socket has: nothing aborted, no error');
});

// End to end on the simulated board's topology (own namespaces tcvc-*; needs root, MPTCP, nftables
// TPROXY; runs in CI as root): N-UE plain TCP → cell (TPROXY, Convert client, MPTCP over both
// shaped uplinks) → concentrator (Convert front) → N-server, and an MPTCP M-UE through the
// concentrator's SOCKS5 front with and without auth. Bytes hashed end to end.
import t from 'tap';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { netnsUnavailable, type Host } from '../helpers/hosts.js';
import { buildSim } from '../../src/sim/board.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const reason = await netnsUnavailable();
const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));
const MiB = 1 << 20;
const SIZE = Number(process.env.CONVERT_CHAIN_BYTES ?? 64 * MiB);

interface Role {
  child: ChildProcess;
  lines: Array<Record<string, unknown>>;
  ready: Promise<void>;
  exited: Promise<number | null>;
  stderr: () => string;
  next: (key: string) => Promise<Record<string, unknown>>;
}

function start(h: Host, role: string, args: string[] = [], env: Record<string, string> = {}): Role {
  const child = h.spawn(process.execPath, [...loader, path.join(here, 'convert-chain-child.ts'), role, ...args], {
    env: { ...process.env, DUOCELL_LOG_LEVEL: 'silent', ...env },
  });
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<{ key: string; resolve: (l: Record<string, unknown>) => void }> = [];
  let err = '';
  let buf = '';
  let onReady!: () => void;
  const ready = new Promise<void>((r) => (onReady = r));
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const raw = buf.slice(0, i);
      buf = buf.slice(i + 1);
      let l: Record<string, unknown>;
      try {
        l = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        err += raw + '\n';
        continue;
      }
      lines.push(l);
      if (l.ready === true) onReady();
      for (const w of [...waiters]) {
        if (l[w.key] !== undefined) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(l);
        }
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  const next = (key: string): Promise<Record<string, unknown>> =>
    new Promise((resolve) => {
      const have = lines.find((l) => l[key] !== undefined && !taken.has(l));
      if (have !== undefined) {
        taken.add(have);
        resolve(have);
        return;
      }
      waiters.push({
        key,
        resolve: (l) => {
          taken.add(l);
          resolve(l);
        },
      });
    });
  const taken = new Set<Record<string, unknown>>();
  return { child, lines, ready, exited, stderr: () => err, next };
}

async function txBytes(h: Host, dev: string): Promise<number> {
  const j = JSON.parse(await h.exec('ip', ['-j', '-s', 'link', 'show', 'dev', dev])) as Array<{ stats64: { tx: { bytes: number } } }>;
  return j[0]!.stats64.tx.bytes;
}

async function nstat(h: Host, name: string): Promise<number> {
  const m = new RegExp(`^${name}\\s+(\\d+)`, 'm').exec(await h.exec('nstat', ['-az', name], { allowFail: true }));
  return m === null ? 0 : Number(m[1]);
}

const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([p, new Promise<T>((_r, rej) => setTimeout(() => rej(new Error(`timed out: ${what}`)), ms).unref())]);

t.test('Convert and SOCKS5 end to end over the shaped sim topology', { skip: reason, timeout: 600_000 }, async (t) => {
  const sim = await buildSim(`tcvc${process.pid}`); // pid: concurrent runs never share namespaces
  t.teardown(() => sim.topo.destroy());
  const { cell, conc, srv, lan, mue } = sim;
  for (const h of [cell, conc]) {
    await h.sysctl('net.ipv4.tcp_fastopen', '0x207');
    await h.exec('nstat', ['-n'], { allowFail: true });
  }
  // TPROXY: LAN TCP to port 8000 (any destination) → the cell's transparent listener on :15001.
  const nft = (...a: string[]): Promise<string> => cell.exec('nft', a);
  await nft('add', 'table', 'inet', 'tcvc');
  await nft('add', 'chain', 'inet', 'tcvc', 'pre', '{', 'type', 'filter', 'hook', 'prerouting', 'priority', 'mangle', ';', 'policy', 'accept', ';', '}');
  await nft('add', 'rule', 'inet', 'tcvc', 'pre', 'meta', 'l4proto', 'tcp', 'socket', 'transparent', '1', 'meta', 'mark', 'set', '1', 'accept');
  await nft('add', 'rule', 'inet', 'tcvc', 'pre', 'iifname', 'lan0', 'tcp', 'dport', '8000', 'tproxy', 'ip', 'to', ':15001', 'meta', 'mark', 'set', '1', 'accept');
  await nft('add', 'rule', 'inet', 'tcvc', 'pre', 'iifname', 'lan0', 'tcp', 'dport', '8002', 'tproxy', 'ip', 'to', ':15002', 'meta', 'mark', 'set', '1', 'accept');
  await cell.ip('rule', 'add', 'fwmark', '1', 'lookup', '100');
  await cell.ip('route', 'add', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', '100');

  const roles = [start(srv, 'srv'), start(conc, 'conc'), start(cell, 'cell')];
  t.teardown(() => {
    for (const r of roles) r.child.kill('SIGKILL');
  });
  for (const r of roles) {
    await withTimeout(Promise.race([r.ready, r.exited.then(() => Promise.reject(new Error(r.stderr())))]), 60_000, 'roles ready');
  }
  const [srvR, concR, cellR] = roles as [Role, Role, Role];

  t.test(`N-UE → TPROXY cell → Convert/MPTCP over both uplinks → concentrator → N-server: ${SIZE / MiB} MiB each way`, async (t) => {
    const wwan0 = await txBytes(cell, 'wwan0');
    const wlan0 = await txBytes(cell, 'wlan0');
    const nue = start(lan, 'nue', [], { CONVERT_CHAIN_BYTES: String(SIZE) });
    const c = (await withTimeout(nue.next('client'), 300_000, 'N-UE transfer')).client as Record<string, unknown>;
    const s = (await withTimeout(srvR.next('server'), 30_000, 'server report')).server as Record<string, unknown>;
    t.equal(c.error, undefined, `no client error ${nue.stderr()}`);
    t.equal(c.mptcp, false, 'the N-UE spoke plain TCP');
    t.equal(c.remote, '10.31.0.2:8000', 'the N-UE talked to the server address it chose');
    t.equal(c.received, SIZE, 'all bytes down');
    t.equal(s.received, SIZE, 'all bytes up');
    t.equal(s.receivedHash, c.sentHash, 'upstream bytes intact');
    t.equal(c.receivedHash, s.sentHash, 'downstream bytes intact');
    t.match(String(s.remote), /^10\.31\.0\.1:/, 'the N-server saw the concentrator');
    const dWwan = (await txBytes(cell, 'wwan0')) - wwan0;
    const dWlan = (await txBytes(cell, 'wlan0')) - wlan0;
    t.comment(`cell uplink tx: wwan0 ${(dWwan / MiB).toFixed(1)} MiB, wlan0 ${(dWlan / MiB).toFixed(1)} MiB; ${c.ms} ms`);
    t.ok(dWwan > SIZE * 0.1, 'cellular uplink carried data');
    t.ok(dWlan > SIZE * 0.1, 'WLAN uplink carried data');
    const cs = (await withTimeout(concR.next('concSession'), 10_000, 'concentrator session')).concSession as Record<string, unknown>;
    t.equal(cs.front, 'convert');
    t.equal(cs.combination, 'M-N', 'MPTCP from the cell, plain TCP to the server');
    t.equal(cs.subscriber, 'cell-1', 'authorised by its cookie');
    const cl = (await withTimeout(cellR.next('cellSession'), 10_000, 'cell session')).cellSession as Record<string, unknown>;
    t.equal(cl.front, 'transparent');
    t.equal(cl.combination, 'N-M', 'plain TCP from the N-UE, MPTCP upstream');
  });

  t.test('the same with the concentrator taking the Convert message from the SYN (TFO passive): 4 MiB', async (t) => {
    const run = async (port: string): Promise<Record<string, unknown>> => {
      const nue = start(lan, 'nue', [port], { CONVERT_CHAIN_BYTES: String(4 * MiB) });
      const c = (await withTimeout(nue.next('client'), 300_000, 'N-UE transfer')).client as Record<string, unknown>;
      const s = (await withTimeout(srvR.next('server'), 30_000, 'server report')).server as Record<string, unknown>;
      t.equal(c.error, undefined, `no client error ${nue.stderr()}`);
      t.equal(s.receivedHash, c.sentHash, `port ${port}: upstream bytes intact`);
      t.equal(c.receivedHash, s.sentHash, `port ${port}: downstream bytes intact`);
      await withTimeout(concR.next('concSession'), 10_000, 'concentrator session');
      await withTimeout(cellR.next('cellSession'), 10_000, 'cell session');
      return c;
    };
    const passive0 = await nstat(conc, 'TcpExtTCPFastOpenPassive');
    const withTfo = await run('8002');
    t.ok((await nstat(conc, 'TcpExtTCPFastOpenPassive')) > passive0, 'the concentrator accepted the data in the SYN');
    const without = await run('8000');
    const ratio = Number(withTfo.ms) / Number(without.ms);
    t.comment(`4 MiB each way: ${String(withTfo.ms)} ms with passive TFO, ${String(without.ms)} ms without (×${ratio.toFixed(1)})`);
    t.ok(ratio < 2, 'passive TFO costs no throughput', {
      todo: 'kernel 6.18: an MPTCP connection opened with TCP_FASTOPEN_CONNECT whose SYN data the listener accepted runs several times slower over the shaped paths (retransmissions, MPTcpExtNoDSSInWindow); see docs/convert.md',
    });
  });

  const socksRun = async (args: string[], bytes: number): Promise<Record<string, unknown>> => {
    const m = start(mue, 'mue', args, { CONVERT_CHAIN_BYTES: String(bytes) });
    const r = (await withTimeout(m.next('socks'), 300_000, 'M-UE SOCKS transfer')).socks as Record<string, unknown>;
    return { ...r, stderr: m.stderr() };
  };

  t.test(`M-UE (MPTCP) → SOCKS5 with username/password → N-server: ${SIZE / MiB} MiB each way`, async (t) => {
    const r = await socksRun(['1080', 'kt', 'phone-1'], SIZE);
    t.equal(r.error, undefined, `no client error ${String(r.stderr)}`);
    const s = (await withTimeout(srvR.next('server'), 30_000, 'server report')).server as Record<string, unknown>;
    t.equal(r.mptcp, true, 'the M-UE spoke MPTCP to the concentrator');
    t.equal(r.received, SIZE);
    t.equal(s.received, SIZE);
    t.equal(s.receivedHash, r.txHash, 'upstream bytes intact');
    t.equal(r.rxHash, s.sentHash, 'downstream bytes intact');
    t.ok(Number(r.maxSubflows) >= 2, `both M-UE accesses joined (${String(r.maxSubflows)} subflows)`);
    t.comment(`per-subflow bytes received at the M-UE: ${JSON.stringify(r.perSubflow)}; ${r.ms} ms`);
    const cs = (await withTimeout(concR.next('concSession'), 10_000, 'concentrator session')).concSession as Record<string, unknown>;
    t.equal(cs.front, 'socks5');
    t.equal(cs.subscriber, 'kt');
  });

  t.test('M-UE → SOCKS5 without auth (anonymous listener): 8 MiB each way', async (t) => {
    const r = await socksRun(['1081', '-'], 8 * MiB);
    t.equal(r.error, undefined, `no client error ${String(r.stderr)}`);
    const s = (await withTimeout(srvR.next('server'), 30_000, 'server report')).server as Record<string, unknown>;
    t.equal(r.received, 8 * MiB);
    t.equal(s.received, 8 * MiB, `server report ${JSON.stringify(s)}`);
    t.equal(s.receivedHash, r.txHash);
    t.equal(r.rxHash, s.sentHash);
  });

  t.test('M-UE → SOCKS5 with wrong credentials: refused, nothing relayed', async (t) => {
    const before = srvR.lines.filter((l) => l.server !== undefined).length;
    const r = await socksRun(['1080', 'kt', 'guess'], MiB);
    t.equal(r.refused, true, 'the concentrator closed the connection');
    t.equal(r.handshake, '05020101', 'method 02 chosen, then authentication failure');
    await new Promise((res) => setTimeout(res, 300));
    t.equal(srvR.lines.filter((l) => l.server !== undefined).length, before, 'the server saw no connection');
  });
});

// Needs root, network namespaces, nft, conntrack and Debian 12's ngtcp2 example programs
// (packages ngtcp2-client, ngtcp2-server: gtlsclient, gtlsserver). A real QUIC transfer (HTTP/3,
// ngtcp2) from a LAN device behind the cell survives the move of its flow from the WLAN uplink to
// the cellular one: UDP steering (active-standby) deletes the flow's conntrack entry when the WLAN
// dies, the client's next packet is NATed out of the cellular uplink, and the server sees the
// client's address change (a NAT rebinding), validates the new path and carries on.
//
// Why the stall happened and what the client must do: after the move only a packet FROM the
// client can tell the server the new address (the cell cannot forge an encrypted QUIC packet, and
// the server's packets go to the dead uplink's address). The client resends only what is
// ack-eliciting and unacknowledged (RFC 9002 PTO); ACK-only packets are never resent. With
// ngtcp2's defaults (6 MiB stream / 15 MiB connection windows) a downloading client sends only
// ACKs for megabytes, so when the WLAN dies it has nothing in flight, sends nothing more, and the
// transfer stalls until the idle timeout. A client that opens its flow-control window in small
// steps, as curl's ngtcp2 back end does (128 KiB per stream), has a MAX_STREAM_DATA frame in
// flight most of the time: lost with the WLAN, it is resent by PTO through the new NAT binding,
// and the server migrates. Most of the time, not always: the update in flight may have been
// acknowledged just before the failure (2 of 9 runs by hand). ngtcp2 0.12's client has no
// keep-alive option (browsers send PINGs on open streams). So each attempt is a fresh world and
// the test asserts that the move works in one of up to 3 attempts, and reports every attempt.
import t from 'tap';
import { createHash, randomFillSync } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { netnsUnavailable } from '../helpers/hosts.js';
import { mono, start, steerWorld, stopChild } from '../helpers/udp-steer.js';

const has = (p: string): boolean => spawnSync('sh', ['-c', `command -v ${p}`]).status === 0;
const why = (await netnsUnavailable()) || (!has('gtlsclient') || !has('gtlsserver') ? 'needs ngtcp2-client and ngtcp2-server (gtlsclient, gtlsserver; scripts/setup.sh installs them)' : false) || (!has('conntrack') ? 'needs conntrack' : false);

/** The curl-like client's flow-control windows (see above). */
const WINDOWS = ['--max-stream-data-bidi-local=128K', '--max-stream-window=128K', '--max-data=1M', '--max-window=1M'];

interface Attempt {
  ok: boolean;
  code: number | null;
  size: number;
  intact: boolean;
  stallMs: number;
  moved: number;
  moveMs?: number;
  rebinding: boolean;
  atDownMiB: number;
  totalS: number;
}

async function attempt(n: number, dir: string, data: Buffer): Promise<Attempt> {
  const SIZE = data.length;
  const dl = path.join(dir, `dl${n}`);
  mkdirSync(dl);
  const { topo, lan, cell, inet, cfg } = await steerWorld(`udpq${n}${process.pid}`, { rateMbit: 20 });
  const undo: Array<() => unknown> = [() => topo.destroy()];
  try {
    const c = start(cell, ['cell', cfg({ mode: 'active-standby' })]);
    undo.unshift(() => stopChild(c.child));
    await c.line(0);
    const server = inet.spawn('gtlsserver', ['--no-http-dump', '-d', path.join(dir, 'htdocs'), '10.182.9.1', '4433', path.join(dir, 'key.pem'), path.join(dir, 'cert.pem')]);
    let slog = '';
    server.stdout!.on('data', (d: Buffer) => (slog += d.toString()));
    server.stderr!.on('data', (d: Buffer) => (slog += d.toString()));
    undo.unshift(() => server.kill());
    await new Promise((r) => setTimeout(r, 500));
    const client = lan.spawn('gtlsclient', [...WINDOWS, '-q', '--exit-on-all-streams-close', `--download=${dl}`, '--timeout=10s', '10.182.9.1', '4433', 'https://10.182.9.1:4433/blob']);
    undo.unshift(() => client.kill());
    const exited = new Promise<number | null>((r) => client.once('exit', (code) => r(code)));
    const file = path.join(dl, 'blob');
    const sizeNow = (): number => (existsSync(file) ? statSync(file).size : 0);
    const progress: Array<{ at: number; size: number }> = [];
    let done = false;
    void exited.then(() => (done = true));
    const watch = (async () => {
      while (!done) {
        progress.push({ at: mono(), size: sizeNow() });
        await new Promise((r) => setTimeout(r, 10));
      }
      progress.push({ at: mono(), size: sizeNow() });
    })();
    while (!done && sizeNow() < SIZE / 4) await new Promise((r) => setTimeout(r, 10));
    const down = mono();
    const atDown = sizeNow();
    await inet.ip('link', 'set', 'w0', 'down');
    const code = await exited;
    await watch;
    const got = existsSync(file) ? readFileSync(file) : Buffer.alloc(0);
    // the stall: the longest time after the down during which the file did not grow, up to the end
    let stall = 0;
    let from = progress.find((p) => p.at >= down) ?? progress[progress.length - 1]!;
    for (const p of progress) {
      if (p.at < down) continue;
      if (p.size !== from.size || p === progress[progress.length - 1]) {
        stall = Math.max(stall, p.at - from.at);
        from = p;
      }
    }
    const moved = c.lines.find((l) => l.event === 'path-down')?.status as { lastMove?: { flows: number; ms: number } } | undefined;
    const intact = got.length === SIZE && createHash('sha256').update(got).digest('hex') === createHash('sha256').update(data).digest('hex');
    return {
      ok: code === 0 && intact,
      code,
      size: got.length,
      intact,
      stallMs: Math.round(stall),
      moved: moved?.lastMove?.flows ?? 0,
      ...(moved?.lastMove?.ms === undefined ? {} : { moveMs: moved.lastMove.ms }),
      rebinding: /new remote address|path validation|PATH_CHALLENGE|path_challenge/i.test(slog),
      atDownMiB: Math.round((atDown / 1048576) * 10) / 10,
      totalS: Math.round((progress[progress.length - 1]!.at - progress[0]!.at) / 100) / 10,
    };
  } finally {
    for (const u of undo) await u();
  }
}

t.test('QUIC (ngtcp2, curl-like 128 KiB stream window) transfer survives the move of its flow to the other uplink (needs root, ngtcp2)', { skip: why === false ? false : why, timeout: 300_000 }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'udpq-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(path.join(dir, 'htdocs'));
  // 8 MiB over 20 Mbit/s uplinks: seconds, so the move happens in the middle of the transfer
  const data = randomFillSync(Buffer.alloc(8 << 20));
  writeFileSync(path.join(dir, 'htdocs', 'blob'), data);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=quic.test', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
  const runs: Attempt[] = [];
  for (let n = 0; n < 3; n++) {
    const a = await attempt(n, dir, data);
    runs.push(a);
    t.comment(`attempt ${n + 1}: ${a.ok ? 'survived' : 'STALLED'}; ${a.atDownMiB} MiB of 8 when the WLAN died; conntrack entries moved ${a.moved}${a.moveMs === undefined ? '' : ` in ${a.moveMs} ms`}; longest stall after the down ${a.stallMs} ms; server saw the new address: ${a.rebinding}; ${a.size} bytes, exit ${a.code}, ${a.totalS} s`);
    if (a.ok) break;
  }
  const ok = runs.find((a) => a.ok);
  t.ok(runs.every((a) => a.moved >= 1), "each attempt: the QUIC flow's conntrack entry was deleted (moved)");
  t.ok(ok !== undefined, `the transfer survived the move, file intact (sha256), in ${runs.length} attempt(s)`);
  if (ok !== undefined) {
    t.ok(ok.rebinding, 'the server saw the new client address and validated the path (NAT rebinding)');
    t.ok(ok.atDownMiB < 8, 'the move happened in the middle of the transfer');
  }
});

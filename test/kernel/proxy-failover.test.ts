// Proxy selection with two concentrators in their own namespaces (pol<pid>-*; needs root and
// MPTCP; runs in CI as root). The cell prefers c1 (priority), probes both with the RFC 8803 Info
// exchange over MPTCP, and opens a new session every 25 ms. c1 is killed with SIGKILL mid-run:
// new sessions must keep succeeding (on c2), the session that was on c1 must end (reset or DATA_FIN)
// rather than hang, and once c1 is back new sessions return to it.
//
//   cell ──eth1 10.61.1.0/24── c1 ──10.62.1.0/24──┐
//        ──eth2 10.61.2.0/24── c2 ──10.62.2.0/24──┴── srv (echo, 10.63.0.1:8000)
import t from 'tap';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { netnsUnavailable, Topology, type Host } from '../helpers/hosts.js';
import { SLOW_FILE_MS, START_MS, startRole, type Role } from '../helpers/roles.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const reason = await netnsUnavailable();

/** A role of proxy-failover-child.ts (stdin: the cell's `stop`), with its `ready` line. */
function start(h: Host, role: string, args: string[] = []): Role & { ready: Promise<Record<string, unknown>> } {
  const r = startRole(h, path.join(here, 'proxy-failover-child.ts'), role, args, 'pipe');
  return { ...r, ready: r.line('ready') };
}

const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([p, new Promise<T>((_r, rej) => setTimeout(() => rej(new Error(`timed out: ${what}`)), ms).unref())]);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]): number => (xs.length === 0 ? 0 : [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!);

interface Short {
  start: number;
  end: number;
  ok: boolean;
  port: number;
  err?: string;
  via?: string;
}

t.setTimeout(SLOW_FILE_MS); // start-up waits of up to START_MS each (helpers/roles.ts)
t.test('kernel, root, netns: a concentrator dies, new sessions move to the next candidate', { skip: reason, timeout: SLOW_FILE_MS - 60_000 }, async (t) => {
  const topo = new Topology(`pol${process.pid}`);
  t.teardown(() => topo.destroy());
  const cell = await topo.host('cell');
  const c1 = await topo.host('c1');
  const c2 = await topo.host('c2');
  const srv = await topo.host('srv');
  await topo.link(cell, 'eth1', c1, 'eth0', { a: ['10.61.1.1/24'], b: ['10.61.1.2/24'] });
  await topo.link(cell, 'eth2', c2, 'eth0', { a: ['10.61.2.1/24'], b: ['10.61.2.2/24'] });
  await topo.link(c1, 'eth1', srv, 'eth1', { a: ['10.62.1.1/24'], b: ['10.62.1.2/24'] });
  await topo.link(c2, 'eth1', srv, 'eth2', { a: ['10.62.2.1/24'], b: ['10.62.2.2/24'] });
  await srv.ip('addr', 'add', '10.63.0.1/32', 'dev', 'lo');
  await c1.route('10.63.0.1/32', '10.62.1.2');
  await c2.route('10.63.0.1/32', '10.62.2.2');
  await cell.route('10.63.0.0/24', '10.61.1.2'); // the cell never reaches the server itself: only through a concentrator

  const srvR = start(srv, 'srv');
  let c1R = start(c1, 'conc', ['c1']);
  const c2R = start(c2, 'conc', ['c2']);
  for (const r of [srvR, c1R, c2R]) await withTimeout(r.ready, START_MS, 'servers ready');
  const RUN_MS = 120_000; // the cell runs until told to stop
  const cellR = start(cell, 'cell', [String(RUN_MS)]);
  const ready = await withTimeout(cellR.ready, START_MS, 'cell ready (both candidates probed)').catch((e: Error) => {
    throw new Error(`${e.message}: ${JSON.stringify(cellR.lines).slice(0, 2000)} ${cellR.stderr().slice(-2000)}`);
  });
  const runStart = Date.now();
  t.comment(`first probe RTTs (ms): ${JSON.stringify(ready.rtt)}`);

  // Each phase waits for what the assertions below need, not a fixed time (a loaded host runs
  // fewer sessions per second and probes late): the sleeps are only the old phases' minimum lengths.
  const ended = (): Short[] => cellR.lines.filter((l) => l.short !== undefined).map((l) => l.short as Short);
  const healthAt = (name: string, healthy: boolean, from: number) => (l: Record<string, unknown>): boolean => {
    const h = l.health as { name: string; healthy: boolean; at: number } | undefined;
    return h !== undefined && h.name === name && h.healthy === healthy && h.at >= from;
  };
  await sleep(1500);
  await cellR.wait(() => ended().length >= 10, '10 sessions ended before the kill', START_MS);
  const killAt = Date.now();
  c1R.child.kill('SIGKILL');
  await c1R.exited;
  const deadAt = Date.now();
  await sleep(3000);
  await cellR.wait(healthAt('c1', false, killAt), 'c1 marked unhealthy', START_MS).catch(() => undefined); // asserted below
  await cellR.wait(() => ended().filter((s) => s.start >= killAt).length >= 20, '20 sessions ended while c1 was dead', START_MS);
  c1R = start(c1, 'conc', ['c1']);
  await withTimeout(c1R.ready, START_MS, 'c1 back');
  const backAt = Date.now();
  t.teardown(() => {
    for (const r of [srvR, c1R, c2R, cellR]) r.child.kill('SIGKILL');
  });
  // sessions from 1.5 s after c1 was back, and from when the cell saw it healthy again (a loaded
  // host's probe can be later than that), must be on c1: wait for 5 of them to end
  await sleep(1500);
  const up = await cellR.wait(healthAt('c1', true, backAt), 'c1 healthy again', START_MS).catch(() => undefined);
  const afterFrom = Math.max(backAt + 1500, (up?.health as { at: number } | undefined)?.at ?? 0);
  await cellR.wait(() => ended().filter((s) => s.start >= afterFrom).length >= 5, '5 sessions ended after c1 was healthy again', START_MS).catch(() => undefined);
  cellR.child.stdin!.write('stop\n');

  const rep = await withTimeout(cellR.line('shorts'), 60_000, 'cell report');
  const shorts = rep.shorts as Short[];
  const long = rep.long as { start: number; end?: number; err?: string; via?: string; echoed: number };
  // each session's proxy is read when it ends (the child): its port may serve a later session too
  t.comment(`client ports used by more than one session: ${shorts.length - new Set(shorts.map((s) => s.port)).size} of ${shorts.length} sessions`);
  const before = shorts.filter((s) => s.end < killAt);
  const during = shorts.filter((s) => s.start >= killAt && s.start < backAt);
  const after = shorts.filter((s) => s.start >= afterFrom);
  t.ok(before.length >= 10, `sessions before the kill (${before.length})`);
  const off = before.filter((s) => !s.ok || s.via !== 'c1');
  t.same(off.map((s) => `${s.start - killAt} ms ${s.via} ${s.err ?? 'ok'}`), [], `before: every session on c1 (highest priority), bytes intact (c1 health: ${JSON.stringify(cellR.lines.filter((l) => l.health !== undefined && (l.health as { at: number }).at < killAt).map((l) => l.health))})`);
  t.ok(during.length >= 20, `sessions while c1 was dead (${during.length})`);
  const failed = during.filter((s) => !s.ok);
  t.same(failed.map((s) => s.err), [], 'while c1 was dead: no new session failed');
  // from when c1's process was gone (under load the SIGKILL takes a while to land; a session c1 accepted before is fine)
  const onC1 = during.filter((s) => s.start >= deadAt && s.ok && s.via !== 'c2');
  t.same(onC1.map((s) => `${s.start - killAt} ms ${s.via}`), [], 'while c1 was dead: new sessions on c2');
  const firstOk = during.find((s) => s.ok);
  const failoverMs = firstOk === undefined ? Infinity : firstOk.end - killAt;
  // The issue's bounds are the cell's part. What the host adds is measured in this run and added:
  // how long the SIGKILL took to land (seen 741 ms at load 27) and, for a new session, what a
  // session took before the kill (median; seen ~1.5 s there: 'succeeded' is when its echo is back).
  // On a quiet host both are a few ms, so the bounds are the issue's.
  const killMs = deadAt - killAt;
  const sessionMs = median(before.map((s) => s.end - s.start));
  t.ok(failoverMs < 1000 + killMs + sessionMs, `a new session succeeded on the next candidate ${failoverMs} ms after the kill (issue: within 1 s; + ${killMs} ms for the kill to land + ${sessionMs} ms, a session's median before it)`);
  const health = cellR.lines.filter((l) => l.health !== undefined).map((l) => l.health as { name: string; healthy: boolean; at: number });
  const c1Down = health.find((h) => h.name === 'c1' && !h.healthy && h.at >= killAt);
  t.ok(c1Down !== undefined, 'c1 was marked unhealthy');
  const c1Up = health.find((h) => h.name === 'c1' && h.healthy && h.at >= backAt);
  t.ok(c1Up !== undefined, 'c1 was healthy again once it was back');
  t.ok(after.length >= 5 && after.every((s) => s.ok && s.via === 'c1'), `after c1 came back: new sessions on c1 again (${after.length})`);
  t.equal(long.via, 'c1', 'the long session was on c1');
  t.ok(long.end !== undefined && long.end - killAt < 2000 + killMs, `the session on c1 ended ${long.end === undefined ? 'never' : long.end - killAt} ms after the kill (issue: within 2 s; + ${killMs} ms for the kill to land)`);
  // How it ends is the kernel's race, not the cell's: a SIGKILLed concentrator's MPTCP socket sends
  // MP_FASTCLOSE if it held unread bytes and a DATA_FIN if not (mptcp __mptcp_close), and the cell
  // relays what it got; a byte the client sends after that reaches c1's orphan and is reset. Seen
  // both ways in CI (ECONNRESET after 255 ms; a clean close after 44 ms), so only the bound is asserted.
  t.comment(`the session on c1 ended ${long.err === undefined ? 'with a clean close' : `with ${long.err}`}`);
  t.comment(
    `figures: new session ok on c2 after ${failoverMs} ms; c1 marked down after ${c1Down === undefined ? '-' : c1Down.at - killAt} ms; ` +
      `c1 healthy again ${c1Up === undefined ? '-' : c1Up.at - backAt} ms after it was back; in-flight session ended after ${long.end === undefined ? '-' : long.end - killAt} ms (${long.err}); ` +
      `c1 process gone ${deadAt - killAt} ms after SIGKILL; first sessions after the kill (start→end ms, via): ${during.slice(0, 6).map((s) => `${s.start - killAt}→${s.end - killAt} ${s.via}`).join(', ')}; ` +
      `sessions: ${before.length} before, ${during.length} while dead (${failed.length} failed), ${after.length} after; run ${Date.now() - runStart} ms`,
  );
});

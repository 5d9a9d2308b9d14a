// Needs root, network namespaces and nftables (runs in CI as root).
// Liveness renewals over nfnetlink (issue 17): the `alive` element's expiry is refreshed by a
// netlink transaction, no `nft` process is started for renewals, interception state lapses when
// the process stops renewing (SIGSTOP) and comes back after SIGCONT; kernel refusals carry
// DC_NFT_APPLY with the errno and leave the set untouched (all or nothing).
import t from 'tap';
import { Topology, netnsUnavailable, sh } from '../helpers/hosts.js';
import { startRole } from '../helpers/roles.js';

const why = (await netnsUnavailable()) || ((await sh('nft', ['--version'], { allowFail: true })) === '' ? 'nft is not installed' : false);
const CHILD = new URL('./nft-netlink-child.ts', import.meta.url).pathname;

interface Elem { val: number; timeout?: number; expires?: number }

/**
 * The elements of `inet T alive` from `nft list set` (timeouts and expiries in s). The text, not
 * `nft -j`: nft 1.0.6's JSON rounds expiries down to whole seconds, the text has milliseconds.
 */
async function aliveElements(h: { exec: (c: string, a: string[], o?: { allowFail?: boolean }) => Promise<string> }, table: string): Promise<Elem[]> {
  return parseElems(await h.exec('nft', ['list', 'set', 'inet', table, 'alive'], { allowFail: true }));
}

/** "1s234ms", "987ms", "1m", "2h3m4s" → seconds. */
function duration(s: string): number {
  let total = 0;
  for (const m of s.matchAll(/(\d+)(ms|d|h|m|s)/g)) total += Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return total;
}

function parseElems(text: string): Elem[] {
  const body = /elements = \{([^}]*)\}/.exec(text)?.[1] ?? '';
  return body.split(',').map((x) => x.trim()).filter((x) => x !== '').map((x) => {
    const val = Number(/^(\d+)/.exec(x)?.[1]);
    const timeout = /timeout (\S+)/.exec(x)?.[1];
    const expires = /expires (\S+)/.exec(x)?.[1];
    return { val, ...(timeout === undefined ? {} : { timeout: duration(timeout) }), ...(expires === undefined ? {} : { expires: duration(expires) }) };
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

t.test('liveness over nfnetlink in a namespace: expiry refreshed, no nft process, lapses when stopped', { skip: why === false ? false : why, timeout: 180_000 }, async (t) => {
  const topo = new Topology(`nfa${process.pid % 10000}`);
  t.teardown(() => topo.destroy());
  const cell = await topo.host('cell');
  const table = 'nftnlt';
  // livenessMs 3 s (renewed every 1 s): a loaded host (load 20, 2 cores) can hold this process's
  // event loop for over a second, which at 1.5 s (renewals every 500 ms) let the element lapse
  // while the process was running: what the test shows needs a lapse only when it is stopped
  const LIVE_MS = 3000;
  const role = startRole(cell, CHILD, 'intercept', [String(LIVE_MS), table]);
  const started = await role.line('started');
  t.equal(started.startCalls, 1, `start applies the ruleset with one nft program run, the M-servers go over netlink (${JSON.stringify(started.calls)})`);

  // 3 × livenessMs: without renewals the elements would have expired twice over
  const samples: Array<{ at: number; e8000?: Elem }> = [];
  const t0 = Date.now();
  while (Date.now() - t0 < 3 * LIVE_MS) {
    const els = await aliveElements(cell, table);
    const e = els.find((x) => x.val === 8000);
    samples.push({ at: Date.now() - t0, ...(e === undefined ? {} : { e8000: e }) });
    await sleep(150);
  }
  const missing = samples.filter((s) => s.e8000 === undefined);
  t.same(missing, [], `the element is present all along (${samples.length} samples over ${samples.at(-1)?.at} ms)`);
  const late = samples.filter((s) => s.at > LIVE_MS + 500 && s.e8000?.expires !== undefined);
  t.ok(late.length > 0, 'present more than livenessMs after the start: the expiry was moved');
  const exp = samples.map((s) => s.e8000?.expires ?? 0);
  const rises = exp.filter((x, i) => i > 0 && x > exp[i - 1]! + 0.05).length;
  t.ok(rises >= 2, `the expiry went up again and again (${rises} times; ${exp.join(' ')} s)`);
  t.ok(exp.every((x) => x <= LIVE_MS / 1000), 'never beyond livenessMs');

  const tick = await role.next('tick');
  t.equal(tick.via, 'netlink', 'set elements go over nfnetlink');
  t.ok(Number(tick.ok) >= 4, `renewals done (${tick.ok}), none failed (${tick.failed})`);
  t.equal(tick.failed, 0);
  t.equal(tick.programCallsSinceStart, 0, 'no nft program run for any renewal');
  t.equal(tick.childTicksSinceStart, 0, 'no child process ended since the start (cutime + cstime unchanged)');

  // M-servers went in over netlink with their timeout
  const m4 = await cell.exec('nft', ['list', 'set', 'inet', table, 'mservers4']);
  t.match(m4, /192\.0\.2\.9 \. 443 timeout 1m/, 'the IPv4 M-server element');
  const m6 = await cell.exec('nft', ['list', 'set', 'inet', table, 'mservers6']);
  t.match(m6, /2001:db8::9 \. 443 timeout 1m/, 'the IPv6 M-server element');

  // stop the process: no renewals → the elements expire (fail-open)
  process.kill(role.child.pid!, 'SIGSTOP');
  const stoppedAt = Date.now();
  let goneAt: number | undefined;
  // waits on the lapse; the bound (livenessMs plus a loaded host's nft runs) only ends a hang
  while (Date.now() - stoppedAt < LIVE_MS + 20_000) {
    if (!(await aliveElements(cell, table)).some((x) => x.val === 8000)) {
      goneAt = Date.now() - stoppedAt;
      break;
    }
    await sleep(100);
  }
  t.ok(goneAt !== undefined, `the liveness element expired after the SIGSTOP (${goneAt} ms)`);
  process.kill(role.child.pid!, 'SIGCONT');
  const contAt = Date.now();
  let backAt: number | undefined;
  while (Date.now() - contAt < 20_000) {
    if ((await aliveElements(cell, table)).some((x) => x.val === 8000)) {
      backAt = Date.now() - contAt;
      break;
    }
    await sleep(100);
  }
  t.ok(backAt !== undefined, `renewals bring it back after SIGCONT (${backAt} ms)`);
  const after = await role.next('tick');
  t.equal(after.programCallsSinceStart, 0, 'still no nft program run');
  role.child.kill('SIGTERM');
  await role.line('stopped');
  t.equal(await cell.exec('nft', ['list', 'table', 'inet', table], { allowFail: true }), '', 'stop removed the table');
});

t.test('the nfnetlink driver in a namespace: refusals are DC_NFT_APPLY with the errno, all or nothing, and the renewal moves the expiry', { skip: why === false ? false : why, timeout: 60_000 }, async (t) => {
  const topo = new Topology(`nfb${process.pid % 10000}`);
  t.teardown(() => topo.destroy());
  const cell = await topo.host('cell');
  const table = 'nftnlt';
  await cell.exec('bash', ['-c', `printf 'table inet ${table} {\\n set alive { type inet_service; flags timeout; }\\n}\\n' | nft -f -`]);
  const role = startRole(cell, CHILD, 'errors', [table]);
  const r = (await role.line('results')).results as Record<string, unknown>;
  const res = (k: string) => r[k] as { ok: boolean; code?: string; errno?: number; origin?: string; message?: string };
  t.same([res('deleteMissing').ok, res('deleteMissing').code, res('deleteMissing').errno, res('deleteMissing').origin], [false, 'DC_NFT_APPLY', 2, 'kernel'], `a missing element: ENOENT (${res('deleteMissing').message})`);
  t.same([res('atomic').code, res('atomic').errno], ['DC_NFT_APPLY', 2], 'the batch with a refused message is refused');
  t.notMatch(String(r.afterAtomic), /7000/, 'and its other message (add 7000) did not take effect');
  t.same([res('noTable').code, res('noTable').errno], ['DC_NFT_APPLY', 2], 'no such table: ENOENT');
  t.same([res('wrongKeyLength').code, res('wrongKeyLength').errno], ['DC_NFT_APPLY', 22], 'a key of the wrong length: EINVAL');
  const plain = parseElems(String(r.afterPlainReAdd)).find((e) => e.val === 9000);
  const renewed = parseElems(String(r.afterRenewal)).find((e) => e.val === 9000);
  t.ok(renewed?.expires !== undefined && renewed.expires > 8, `the renewal transaction reset the expiry to the full timeout (${renewed?.expires} s of 10; without it ≤ 7 s were left)`);
  t.comment(`a plain re-add of the existing element 3 s later left its expiry at ${plain?.expires} s (kernel ${(await sh('uname', ['-r'])).trim()}): why the renewal deletes and adds`);
  t.same(res('renewExpired'), { ok: true }, 'renewing an element that is not there creates it');
  t.ok(parseElems(String(r.afterRenewExpired)).some((e) => e.val === 9100), 'and it is there');
  t.ok(Number(r.genAfter) > Number(r.genBefore), `each commit bumped the ruleset generation (${r.genBefore} → ${r.genAfter})`);
  t.same(r.stats, { committed: 4, refused: 4, dropped: 0 }, 'the driver counted what it did');
});

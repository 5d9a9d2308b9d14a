// Roles for test/kernel/nft-netlink.test.ts, run inside a namespace (one JSON object per line).
//   intercept <livenessMs> <table>   the Intercept service with the real drivers, every `nft` program
//                                    call counted; prints a tick every 500 ms; SIGTERM stops it
//   errors <table>                   the nfnetlink driver against a table made by the test
import { readFileSync } from 'node:fs';
import { applyRuleset, interceptNft, NfTables, NftElements, renewalOps } from '../../src/drivers/nft/index.js';
import { addSetElems, delSetElems, keyInetService } from '../../src/protocols/netlink/nftables.js';
import { Intercept } from '../../src/services/intercept/index.js';
import { sh } from '../helpers/hosts.js';

const out = (o: Record<string, unknown>): void => void process.stdout.write(JSON.stringify(o) + '\n');

/** utime, stime, cutime, cstime of this process, in clock ticks (proc(5)). */
export function cpuTicks(): { self: number; children: number } {
  const s = readFileSync('/proc/self/stat', 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  // after "pid (comm) ": state is f[0]; utime is field 14 overall → f[11]
  return { self: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) };
}

const [role, a1, a2] = process.argv.slice(2);

if (role === 'intercept') {
  const livenessMs = Number(a1);
  const table = a2 ?? 'nftnlt';
  const program = { calls: [] as string[] };
  const counted = (text: string, check?: boolean, opts?: { quiet?: boolean }): Promise<void> => {
    program.calls.push(text.split('\n')[0]!.slice(0, 60));
    return applyRuleset(text, check, opts);
  };
  const elements = new NftElements({ program: { applyRuleset: counted } });
  const nft = { ...interceptNft(elements), applyRuleset: counted };
  const i = new Intercept({ table, lanInterfaces: ['lan0'], ports: [{ port: 8000, claim: 'mptcp' }, { port: 8002, claim: 'all' }], mark: 0x10, routeTable: 110, mserverTtlS: 60, synRate: 100, synBurst: 200, perSourceMax: 10, livenessMs }, nft);
  await i.start();
  await i.rememberMServer('192.0.2.9', 443, 60);
  await i.rememberMServer('2001:db8::9', 443, 60);
  const startCalls = program.calls.length;
  const t0 = cpuTicks();
  out({ started: true, startCalls, calls: program.calls });
  let n = 0;
  const tick = setInterval(() => {
    const t = cpuTicks();
    out({ tick: ++n, via: elements.via, ok: i.renewals.ok, failed: i.renewals.failed, programCallsSinceStart: program.calls.length - startCalls, childTicksSinceStart: t.children - t0.children });
  }, 500);
  process.on('SIGTERM', () => {
    clearInterval(tick);
    void i.stop().then(() => {
      out({ stopped: true });
      process.exit(0);
    });
  });
} else if (role === 'errors') {
  const table = a1 ?? 'nftnlt';
  const nl = await NfTables.open();
  const res: Record<string, unknown> = {};
  const attempt = async (name: string, f: () => Promise<unknown>): Promise<void> => {
    try {
      await f();
      res[name] = { ok: true };
    } catch (e) {
      const d = e as { code?: string; errno?: number; message: string; detail?: Record<string, unknown> };
      res[name] = { ok: false, code: d.code, errno: d.errno, origin: (e as { origin?: string }).origin, message: d.message };
    }
  };
  const set = (elements: Array<{ key: Buffer; timeoutMs?: number }>) => ({ family: 'inet' as const, table, set: 'alive', elements });
  res.genBefore = await nl.generation();
  await attempt('deleteMissing', () => nl.commit([delSetElems(set([{ key: keyInetService(7777) }]))]));
  // all or nothing: the add of 7000 is undone with the refused delete
  await attempt('atomic', () => nl.commit([addSetElems(set([{ key: keyInetService(7000), timeoutMs: 60_000 }])), delSetElems(set([{ key: keyInetService(7777) }]))]));
  res.afterAtomic = await sh('nft', ['list', 'set', 'inet', table, 'alive']);
  await attempt('noTable', () => nl.commit([addSetElems({ family: 'inet', table: 'nftnl_absent', set: 'alive', elements: [{ key: keyInetService(1), timeoutMs: 1000 }] })]));
  await attempt('wrongKeyLength', () => nl.commit([addSetElems(set([{ key: Buffer.from([1, 2, 3, 4]), timeoutMs: 1000 }]))]));
  // expiry: an element with 10 s, 3 s later: a plain re-add vs the renewal transaction
  await nl.commit([addSetElems(set([{ key: keyInetService(9000), timeoutMs: 10_000 }]))]);
  await new Promise((r) => setTimeout(r, 3000));
  await nl.commit([addSetElems(set([{ key: keyInetService(9000), timeoutMs: 10_000 }]))]);
  res.afterPlainReAdd = await sh('nft', ['list', 'set', 'inet', table, 'alive']);
  await nl.commit(renewalOps('inet', table, 'alive', [9000], 10_000));
  res.afterRenewal = await sh('nft', ['list', 'set', 'inet', table, 'alive']);
  await attempt('renewExpired', () => nl.commit(renewalOps('inet', table, 'alive', [9100], 10_000)));
  res.afterRenewExpired = await sh('nft', ['list', 'set', 'inet', table, 'alive']);
  res.genAfter = await nl.generation();
  res.stats = nl.stats;
  nl.close();
  out({ results: res });
} else {
  process.stderr.write(`unknown role ${role}\n`);
  process.exit(2);
}

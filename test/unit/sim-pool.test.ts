import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadBoard } from '../../src/core/board.js';
import { anycastProfile } from '../../src/wiring/anycast.js';
import { instanceBird, instanceBoard, instanceConf, Pool, routerConf, POOL_ANYCAST } from '../../src/sim/pool.js';
import type { Topology } from '../../src/sim/hosts.js';

/** The simulated anycast pool's configurations (src/sim/pool.ts): what `duocell sim up --concentrators N`, the pool benchmarks and test/kernel/proxy-pool.test.ts run. */
t.test('an instance board is a valid concentrator board with an anycast announcement', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simpool-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'i2.json'), JSON.stringify(instanceBoard(2, dir)));
  const b = loadBoard(path.join(dir, 'i2.json'));
  t.equal(b.preset, 'concentrator');
  t.same(anycastProfile(b), { protocol: 'anycast', birdSocket: path.join(dir, 'i2.ctl'), intervalMs: 500, upstreamCheck: { host: '10.63.0.1', port: 8000, timeoutMs: 500 }, bird: { ...instanceBird(2), neighbors: [{ address: '10.71.2.1', as: 65000, local: '10.71.2.2', name: 'edge' }] } });
  t.match(JSON.stringify(b.explicitSteering), /"address":"10\.71\.2\.2","port":5125/, 'the unique address announced with its port (C flag)');
});

t.test('BIRD configurations: one BGP peer per instance with BFD; the announcement starts disabled', async (t) => {
  const r = routerConf(3);
  t.equal(r.match(/protocol bgp i\d/g)?.length, 3);
  t.match(r, /merge paths on/, 'ECMP routes in the kernel');
  t.match(r, /bfd on/);
  const i = instanceConf(3);
  t.match(i, new RegExp(`protocol static anycast \\{ disabled; ipv4; route ${POOL_ANYCAST.replace(/\./g, '\\.')}/32`), 'duocell enables it');
  t.match(i, /neighbor 10\.71\.3\.1 as 65000/);
});

t.test('a pool size out of range is refused before anything is built', async (t) => {
  const topo = {} as Topology;
  for (const n of [0, 17, 1.5]) await t.rejects(Pool.build(topo, { instances: n, dir: '/nonexistent', bin: '/x' }), { code: 'DC_USAGE' });
});

import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { main } from '../../src/cli/main.js';
import { birdConfig, birdProfile, type BirdProfile } from '../../src/drivers/bird/config.js';
import { instanceBird, instanceBoard, instanceConf, POOL_ANYCAST } from '../../src/sim/pool.js';
import { isDuocellError } from '../../src/core/errors.js';
import { birdMissing } from '../helpers/bird.js';

/**
 * `duocell anycast bird-config`: a concentrator's BIRD 2 configuration from its board profile
 * (drivers/bird/config.ts), the one text the simulated pool and the pool tests run; every
 * configuration here is checked by BIRD itself (`bird -p -c FILE`, as Debian's bird.service
 * does before it starts).
 */

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-bird-conf-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
const noBird = birdMissing();

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { io: { out: (l) => out.push(l), err: (l) => err.push(l) }, env: {} });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** BIRD's own parse of a configuration: '' when it accepts it, else its complaint. */
function birdParse(conf: string, name: string): string {
  const f = path.join(tmp, `${name}.conf`);
  fs.writeFileSync(f, conf);
  try {
    execFileSync('bird', ['-p', '-c', f], { stdio: ['ignore', 'pipe', 'pipe'] });
    return '';
  } catch (e) {
    return String((e as { stderr?: Buffer }).stderr ?? e).trim() || 'failed';
  }
}

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
    return 'ok';
  } catch (e) {
    return isDuocellError(e) ? `${e.code}: ${e.message}` : String(e);
  }
};

t.test('the simulated pool instance: announcement disabled at start, BGP with BFD, only its routes exported', async (t) => {
  const c = instanceConf(2);
  t.match(c, /^router id 10\.71\.2\.2;$/m);
  t.match(c, new RegExp(`^protocol static anycast \\{ disabled; ipv4; route ${POOL_ANYCAST.replace(/\./g, '\\.')}/32 via "lo"; \\}$`, 'm'), 'the anycast route, disabled until duocell enables it');
  t.match(c, /^protocol bfd \{ interface "\*" \{ min rx interval 100 ms; min tx interval 100 ms; multiplier 3; \}; \}$/m, 'BFD 100 ms × 3');
  t.match(c, /^protocol bgp edge \{ local 10\.71\.2\.2 as 65100; neighbor 10\.71\.2\.1 as 65000; bfd on; hold time 3; keepalive time 1; connect retry time 1; ipv4 \{ import none; export where proto = "anycast"; \}; \}$/m);
  t.equal(birdParse(c, 'sim-i2'), '', 'bird -p accepts it', { skip: noBird });
});

t.test('IPv6, two routers, no BFD, defaults: BIRD accepts it', async (t) => {
  const p: BirdProfile = {
    routerId: '192.0.2.5',
    localAs: 4200000001,
    prefixes: ['2001:DB8:80::1/128', '2001:db8:81::/48'],
    neighbors: [{ address: '2001:db8::1', as: 65000 }, { address: '2001:db8::2', as: 65001, name: 'rtr_b', local: '2001:db8::10' }],
    bfd: false,
  };
  const c = birdConfig('pool6', p, 'conc-6');
  t.match(c, /protocol static pool6 \{ disabled; ipv6; route 2001:db8:80::1\/128 via "lo"; route 2001:db8:81::\/48 via "lo"; \}/, 'canonical addresses, one static protocol');
  t.match(c, /protocol bgp edge1 \{ local as 4200000001; neighbor 2001:db8::1 as 65000; hold time 9; keepalive time 3; connect retry time 5; ipv6 \{ import none; export where proto = "pool6"; \}; \}/);
  t.match(c, /protocol bgp rtr_b \{ local 2001:db8::10 as 4200000001;/);
  t.notMatch(c, /bfd/, 'no BFD when switched off');
  t.equal(birdParse(c, 'v6'), '', 'bird -p accepts it', { skip: noBird });
});

t.test('a bad profile is refused with the field named', async (t) => {
  const good = instanceBird(1);
  const cases: Array<[string, unknown, RegExp]> = [
    ['router id IPv6', { ...good, routerId: '2001:db8::1' }, /routerId/],
    ['AS 0', { ...good, localAs: 0 }, /localAs/],
    ['neighbor AS too big', { ...good, neighbors: [{ address: '10.71.1.1', as: 2 ** 32 }] }, /neighbors\[0\]\.as/],
    ['families mixed', { ...good, prefixes: ['10.80.0.1/32', '2001:db8::1/128'] }, /one family/],
    ['neighbor of the other family', { ...good, neighbors: [{ address: '2001:db8::1', as: 65000 }] }, /neighbors\[0\]\.address/],
    ['host bits', { ...good, prefixes: ['10.80.0.1/24'] }, /bits set/],
    ['not a prefix', { ...good, prefixes: ['10.80.0.1'] }, /prefixes\[0\]/],
    ['no neighbor', { ...good, neighbors: [] }, /neighbors/],
    ['keepalive ≥ hold', { ...good, holdTime: 3, keepaliveTime: 3 }, /keepaliveTime/],
    ['unknown field', { ...good, multihop: 2 }, /multihop: unknown field/],
    ['duplicate names', { ...good, neighbors: [{ address: '10.71.1.1', as: 1, name: 'a' }, { address: '10.71.1.3', as: 1, name: 'a' }] }, /duplicate/],
    ['bad bfd', { ...good, bfd: { intervalMs: 1, multiplier: 3 } }, /bfd/],
  ];
  for (const [what, raw, field] of cases) {
    const r = codeOf(() => birdProfile(raw));
    t.match(r, /^DC_CONFIG_INVALID: /, `${what}: DC_CONFIG_INVALID`);
    t.match(r, field, `${what}: names the field (${r})`);
  }
  t.match(codeOf(() => birdConfig('edge', good)), /DC_CONFIG_INVALID: .*announcement's name/, 'a neighbor named like the announcement');
  t.match(codeOf(() => birdConfig('bad name', good)), /DC_CONFIG_INVALID: anycast\.protocol/);
});

t.test('duocell anycast bird-config: from the board, the protocol duocell and ExecStopPost disable', async (t) => {
  const file = path.join(tmp, 'i3.json');
  const board = instanceBoard(3, tmp) as { anycast: Record<string, unknown> };
  board.anycast.protocol = 'pool_anycast';
  fs.writeFileSync(file, JSON.stringify(board));
  const r = await cli('anycast', 'bird-config', '--board', file);
  t.equal(r.code, 0, r.err);
  t.equal(r.out + '\n', birdConfig('pool_anycast', instanceBird(3), 'duocell concentrator pool-i3'), 'the generator, for this board');
  // The announcement is the protocol named by anycast.protocol: duocell writes that name into
  // its runtime file anycast-withdraw, which the unit's ExecStopPost disables.
  t.match(r.out, /^protocol static pool_anycast \{ disabled;/m, 'named after anycast.protocol, disabled until duocell enables it');
  t.match(r.out, /export where proto = "pool_anycast"/, 'BGP exports only the announcement');
  t.match(fs.readFileSync(new URL('../../systemd/duocell.service', import.meta.url), 'utf8'), /ExecStopPost=.*birdc -s "\$\$s" disable "\$\$p"/, 'the unit disables the protocol duocell names');
  t.equal(birdParse(r.out, 'cli-i3'), '', 'bird -p accepts the printed configuration', { skip: noBird });

  // Flags override the profile.
  const o = await cli('anycast', 'bird-config', '--board', file, '--router-id', '192.0.2.7', '--local-as', '64512', '--neighbor', '64500@192.0.2.1,64501@192.0.2.2', '--prefix', '198.51.100.80/32');
  t.equal(o.code, 0, o.err);
  t.match(o.out, /router id 192\.0\.2\.7;/);
  t.match(o.out, /protocol bgp edge1 \{ local as 64512; neighbor 192\.0\.2\.1 as 64500;/, 'the neighbors of the flags replace the profile\'s');
  t.match(o.out, /protocol bgp edge2 \{ local as 64512; neighbor 192\.0\.2\.2 as 64501;/);
  t.match(o.out, /route 198\.51\.100\.80\/32 via "lo";/);
  t.equal(birdParse(o.out, 'cli-flags'), '', 'bird -p accepts it too', { skip: noBird });

  // Refusals: usage, a board that is not a pool member, a profile without the BIRD section.
  t.equal((await cli('anycast', 'bird-config')).code, 2, 'no --board: usage');
  t.equal((await cli('anycast', 'frobnicate')).code, 2, 'unknown sub-command: usage');
  const bare = { ...board, anycast: { protocol: 'anycast' } };
  fs.writeFileSync(path.join(tmp, 'bare.json'), JSON.stringify(bare));
  const b = await cli('anycast', 'bird-config', '--board', path.join(tmp, 'bare.json'));
  t.equal(b.code, 2, 'no anycast.bird and no flags: usage');
  t.match(b.err, /anycast\.bird\.routerId is not set/);
  const bad = await cli('anycast', 'bird-config', '--board', file, '--neighbor', '64500@2001:db8::1');
  t.not(bad.code, 0, 'a neighbor of the wrong family is refused');
  t.match(bad.err, /DC_CONFIG_INVALID/);
  const help = await cli('anycast', '--help');
  t.match(help.out, /usage: duocell anycast bird-config/);
});

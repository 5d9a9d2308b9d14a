// Link profiles and shape validation (src/sim/links.ts); the delay line's own argument checks
// (build/delayline, built by scripts/setup.sh) fuzzed against the TypeScript validator.
import t from 'tap';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import {
  PROFILES,
  delaylineArgs,
  delaylinePath,
  isEmulated,
  parseLinksWorld,
  profileShape,
  validateLinkShape,
  worldProfiles,
  type LinkShape,
} from '../../src/sim/links.js';
import { fuzz } from '../../bench/fuzz/links.js';

t.test('the profile table is the issue\'s', async (t) => {
  t.same(PROFILES.lte, { rateMbit: 20, rttMs: 40, jitterMs: 10, lossPct: 0.1 });
  t.same(PROFILES.wlan, { rateMbit: 30, rttMs: 8, jitterMs: 3, lossPct: 0.5 });
  t.same(PROFILES['5g'], { rateMbit: 100, rttMs: 20, jitterMs: 0, lossPct: 0 });
  t.same(PROFILES.ideal, { rateMbit: 0, rttMs: 0, jitterMs: 0, lossPct: 0 });
  t.ok(Object.isFrozen(PROFILES) && Object.isFrozen(PROFILES.lte), 'frozen');
});

t.test('a profile maps to per-direction settings: RTT/2, jitter/2, loss per direction', async (t) => {
  t.same(profileShape('lte'), { rateMbit: 20, delayMs: 20, jitterMs: 5, lossPct: 0.1 });
  t.same(profileShape('wlan'), { rateMbit: 30, delayMs: 4, jitterMs: 1.5, lossPct: 0.5 });
  t.same(profileShape('5g'), { rateMbit: 100, delayMs: 10, jitterMs: 0, lossPct: 0 });
  t.same(profileShape('ideal'), {}, 'ideal: a plain veth, no rate of its own');
  t.same(profileShape('ideal', 20), { rateMbit: 20 }, 'ideal at the board\'s rate');
  t.same(profileShape('lte', 10), { rateMbit: 10, delayMs: 20, jitterMs: 5, lossPct: 0.1 }, 'the board\'s rate wins');
  t.ok(isEmulated(profileShape('lte')) && isEmulated(profileShape('5g')), 'lte and 5g need the delay line');
  t.notOk(isEmulated(profileShape('ideal', 30)), 'ideal does not');
  t.notOk(isEmulated({ rateMbit: 5 }), 'a rate alone is a tbf on a plain veth');
  t.ok(isEmulated({ bToA: { lossPct: 1 } }), 'one direction\'s loss is enough');
  t.throws(() => profileShape('umts' as never), { code: 'DC_LINK_INVALID' });
});

t.test('worlds: realistic = lte on cellular, wlan on WLAN; ideal = plain', async (t) => {
  t.same(worldProfiles('realistic'), { cellular: 'lte', wlan: 'wlan' });
  t.same(worldProfiles('ideal'), { cellular: 'ideal', wlan: 'ideal' });
  t.equal(parseLinksWorld('ideal'), 'ideal');
  t.throws(() => parseLinksWorld('fast'), { code: 'DC_LINK_INVALID', message: /unknown links world 'fast'/ });
});

t.test('impossible shapes are refused with DC_LINK_INVALID', async (t) => {
  const bad: Array<[LinkShape, RegExp]> = [
    [{ delayMs: -1 }, /delayMs must be >= 0/],
    [{ jitterMs: -0.1 }, /jitterMs must be >= 0/],
    [{ lossPct: 100.5 }, /lossPct must be <= 100/],
    [{ lossPct: -1 }, /lossPct must be >= 0/],
    [{ rateMbit: 0 }, /rateMbit must be > 0/],
    [{ rateAtoB: -3 }, /rateAtoB must be > 0/],
    [{ delayMs: Number.NaN }, /finite number/],
    [{ delayMs: Infinity }, /finite number/],
    [{ delayMs: 60_001 }, /<= 60000/],
    [{ queueMs: 0 }, /queueMs must be > 0/],
    [{ aToB: { delayMs: -5 } }, /aToB.delayMs/],
    [{ bToA: { lossPct: 101 } }, /bToA.lossPct/],
    [{ bToA: { rateMbit: 5 } as never }, /bToA.rateMbit is not a direction setting/],
    [{ rateIn: 'netem' as never }, /rateIn/],
    [{ delayMs: '20' as never }, /finite number/],
  ];
  for (const [shape, msg] of bad) t.throws(() => validateLinkShape(shape), { code: 'DC_LINK_INVALID', message: msg }, JSON.stringify(shape));
  for (const ok of [{}, profileShape('lte'), { delayMs: 0, jitterMs: 0, lossPct: 0 }, { lossPct: 100 }, { rateMbit: 0.5, rateIn: 'delayline' as const }]) {
    t.doesNotThrow(() => validateLinkShape(ok), JSON.stringify(ok));
  }
});

t.test('delay line arguments per direction', async (t) => {
  t.same(delaylineArgs('w0a', 'w0b', { ...profileShape('lte'), bToA: { delayMs: 30 } }), [
    '--a', 'w0a', '--b', 'w0b',
    '--ab', 'delay=20,jitter=5,loss=0.1',
    '--ba', 'delay=30,jitter=5,loss=0.1',
    '--slots', '7000',
    '--realtime',
  ]);
  t.notOk(delaylineArgs('x', 'y', profileShape('wlan')).includes('--slots'), 'short delays: the default 4096 frames');
  t.same(delaylineArgs('x', 'y', { rateMbit: 20, rateBtoA: 5, delayMs: 1, rateIn: 'delayline', queueMs: 30 }).slice(4, 8), [
    '--ab', 'delay=1,jitter=0,loss=0,rate=20,queue=30',
    '--ba', 'delay=1,jitter=0,loss=0,rate=5,queue=30',
  ]);
});

const bin = delaylinePath();
const missing = fs.existsSync(bin) ? false : `${bin} is not built (bash scripts/setup.sh)`;

t.test('the delay line refuses impossible settings with exit code 2 and a clear message', { skip: missing }, async (t) => {
  const run = (...args: string[]): ReturnType<typeof spawnSync> => spawnSync(bin, args, { encoding: 'utf8' });
  for (const [args, msg] of [
    [['--a', 'x', '--b', 'y', '--ab', 'delay=-1'], /delay must be >= 0 ms, got -1/],
    [['--a', 'x', '--b', 'y', '--ba', 'loss=101'], /loss must be within 0..100 percent/],
    [['--a', 'x', '--b', 'y', '--both', 'rate=0'], /rate must be > 0/],
    [['--a', 'x', '--b', 'y', '--ab', 'colour=blue'], /unknown key 'colour'/],
    [['--a', 'x', '--b', 'y', '--ab', 'jitter=1,delay=x'], /not a number for delay/],
    [['--a', 'x', '--ab', 'delay=1'], /--a and --b are required/],
    [['--a', 'x', '--b', 'x'], /must differ/],
    [['--a', 'x', '--b', 'y', '--frobnicate'], /unknown option --frobnicate/],
    [['--a', 'a-very-long-interface-name', '--b', 'y'], /at most 15 characters/],
  ] as const) {
    const r = run(...args);
    t.equal(r.status, 2, args.join(' '));
    t.match(String(r.stderr), msg);
    t.match(String(r.stderr), /usage: delayline/);
  }
  const r = run('--a', 'nosuch0a', '--b', 'nosuch0b', '--ab', 'delay=20,jitter=5,loss=0.1');
  t.equal(r.status, 1, 'good settings, missing interface: a run-time failure, not a usage error');
  t.match(String(r.stderr), /no interface nosuch0a/);
  t.equal(run('--help').status, 0);
});

t.test('fuzz: the delay line and validateLinkShape agree on 600 random specs; the probe codec holds', { skip: missing }, async (t) => {
  const res = fuzz(600, 7, bin);
  t.equal(res.iterations, 600);
  t.ok(res.accepted > 50 && res.refused > 50, `both verdicts are reached (${res.accepted} accepted, ${res.refused} refused)`);
  t.equal(res.probes, 600);
});

// The benchmarks' link worlds (bench/world.ts): `ideal` enforces the rate in the delay line with
// no delay (a tbf at the sender overran its own queue with no RTT, docs/relay.md), `realistic`
// stays the lte / wlan profiles.
import t from 'tap';
import { SIM_RATES } from '../../src/sim/board.js';
import { delaylineArgs, isEmulated, profileShape, validateLinkShape } from '../../src/sim/links.js';
import { linkOptions, rateIn, worldShape } from '../../bench/world.js';

t.test('ideal: the sim rates, in the delay line, no delay, jitter or loss', async (t) => {
  for (const access of ['cellular', 'wlan'] as const) {
    const s = worldShape('ideal', access);
    t.same(s, { rateMbit: SIM_RATES[access], rateIn: 'delayline' }, access);
    t.doesNotThrow(() => validateLinkShape(s));
    t.ok(isEmulated(s), `${access}: the link goes through the delay line`);
    const args = delaylineArgs('w0a', 'w0b', s);
    const spec = `delay=0,jitter=0,loss=0,rate=${SIM_RATES[access]},queue=50`;
    t.same([args[5], args[7]], [spec, spec], `${access}: both directions shaped there and nowhere else`);
  }
  t.equal(rateIn('ideal'), 'delayline');
});

t.test('realistic: the lte / wlan profiles at the sim rates, rate at the sender as before', async (t) => {
  t.same(worldShape('realistic', 'cellular'), profileShape('lte', SIM_RATES.cellular));
  t.same(worldShape('realistic', 'wlan'), profileShape('wlan', SIM_RATES.wlan));
  t.equal(rateIn('realistic'), 'tbf');
});

t.test('linkOptions adds the addresses to the world\'s shape', async (t) => {
  const addrs = { a: ['10.0.0.1/24'], b: ['10.0.0.2/24'] };
  t.same(linkOptions('ideal', 'wlan', addrs), { ...addrs, rateMbit: SIM_RATES.wlan, rateIn: 'delayline' });
});

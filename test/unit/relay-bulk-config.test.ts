// DUOCELL_RELAY_BULK_MIB / DUOCELL_RELAY_BULK_MAX (docs/relay.md "Bulk sessions on blocking
// workers"): the defaults, the accepted spellings, and a coded error for anything else.
import t from 'tap';
import { DEFAULT_RELAY_BULK_MIB, defaultBulkSessions, parseRelayBulk } from '../../src/drivers/sockets/splice.js';

t.test('defaults: 4 MiB, 2..4 sessions', async (t) => {
  const d = parseRelayBulk(undefined, undefined);
  t.equal(d.atBytes, DEFAULT_RELAY_BULK_MIB * 2 ** 20);
  t.equal(d.maxSessions, defaultBulkSessions());
  t.ok(d.maxSessions >= 2 && d.maxSessions <= 4);
  t.same(parseRelayBulk(' ', ''), d, 'blank is unset');
});

t.test('accepted values', async (t) => {
  t.equal(parseRelayBulk('0', undefined).atBytes, 0, '0: at the first byte');
  t.equal(parseRelayBulk('off', undefined).atBytes, -1, 'off: never');
  t.equal(parseRelayBulk('16', undefined).atBytes, 16 * 2 ** 20);
  t.equal(parseRelayBulk('0.5', undefined).atBytes, 2 ** 19);
  t.equal(parseRelayBulk(undefined, '1').maxSessions, 1);
  t.equal(parseRelayBulk(undefined, '4096').maxSessions, 4096);
});

t.test('bad values: DC_CONFIG_INVALID naming the variable', async (t) => {
  for (const v of ['-1', 'four', '1e3', 'OFF ', '4MiB', String(2 ** 21)]) {
    t.throws(() => parseRelayBulk(v, undefined), { code: 'DC_CONFIG_INVALID', message: /DUOCELL_RELAY_BULK_MIB/ }, `MIB '${v}'`);
  }
  for (const v of ['0', '-2', '1.5', '4097', 'lots']) {
    t.throws(() => parseRelayBulk(undefined, v), { code: 'DC_CONFIG_INVALID', message: /DUOCELL_RELAY_BULK_MAX/ }, `MAX '${v}'`);
  }
});

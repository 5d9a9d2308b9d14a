// @ts-check
// The modem (the cellular uplink's radio), refreshed every 5 s.
import { api } from '../lib/api.js';
import { h, kv, refreshEvery, setView } from '../lib/dom.js';
import { dash } from '../lib/format.js';

/** @typedef {import('../types.js').ModemView} ModemView */

export async function modemView() {
  const body = h('div', { id: 'modem-body' });
  const m = setView(h('h1', {}, 'Modem'), body);
  await refreshEvery(m, body, 5000, async () => {
    const m = /** @type {ModemView} */ (await api('GET', '/modem'));
    return h('div', { class: 'card', dataset: { testid: 'modem' } },
      kv([
        ['Present', m.present ? 'yes' : 'no'], ['State', m.state], ['Model', dash(m.model)], ['IMEI', dash(m.imei)], ['SIM', m.sim],
        ['Operator', dash(m.operator)], ['RAT', dash(m.rat)], ['Band', dash(m.band)], ['RSSI', dash(m.rssiDbm, ' dBm')],
        ['RSRP', dash(m.rsrp, ' dBm')], ['RSRQ', dash(m.rsrq, ' dB')], ['SINR', dash(m.sinr, ' dB')], ['APN', dash(m.apn)],
        ['Addresses', (m.addresses ?? []).join(', ') || '—'],
        ...(m.warning ? [/** @type {[string, string]} */ (['Warning', m.warning])] : []),
      ]));
  });
}

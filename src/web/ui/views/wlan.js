// @ts-check
// The WLAN interface (nl80211), refreshed every 5 s.
import { api } from '../lib/api.js';
import { h, kv, refreshEvery, setView } from '../lib/dom.js';
import { dash } from '../lib/format.js';

/** @typedef {import('../types.js').WlanView} WlanView */

export async function wlanView() {
  const body = h('div');
  const m = setView(h('h1', {}, 'WLAN'), body);
  await refreshEvery(m, body, 5000, async () => {
    const w = /** @type {WlanView} */ (await api('GET', '/wlan'));
    return h('div', { class: 'card', dataset: { testid: 'wlan' } },
      kv([
        ['Present', w.present ? 'yes' : 'no'], ['Interface', w.interface], ['Mode', w.mode], ['State', w.state], ['SSID', dash(w.ssid)],
        ['BSSID', dash(w.bssid)], ['Frequency', dash(w.frequencyMhz, ' MHz')], ['Channel', dash(w.channel)], ['Signal', dash(w.signalDbm, ' dBm')],
        ['Bit rate', `↓ ${dash(w.rxBitrateMbps, ' Mbit/s')} · ↑ ${dash(w.txBitrateMbps, ' Mbit/s')}`], ['Stations', dash(w.stations)],
      ]));
  });
}

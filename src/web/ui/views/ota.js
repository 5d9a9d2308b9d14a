// @ts-check
// Policy updates: the OTA state, and a signed bundle uploaded from the browser.
import { api, codeAndMessage } from '../lib/api.js';
import { alertBox, h, kv, setView, showAlert } from '../lib/dom.js';
import { dash } from '../lib/format.js';

/** @typedef {import('../types.js').OtaView} OtaView */

export async function otaView() {
  const status = h('div', { id: 'ota-status' });
  const msg = alertBox();
  const file = h('input', { type: 'file', id: 'bundle-file', accept: '.json,.bundle,application/json,application/octet-stream' });
  const render = async () => {
    const o = /** @type {OtaView} */ (await api('GET', '/ota'));
    status.replaceChildren(kv([
      ['Policy version', dash(o.version)], ['Previous version', dash(o.previousVersion)], ['Applied', o.appliedAt ? new Date(o.appliedAt).toLocaleString() : '—'],
      ['Source', dash(o.source)], ['Last check', o.lastCheck ? new Date(o.lastCheck).toLocaleString() : '—'],
      ['Last error', o.lastError ? `${o.lastError.code}: ${o.lastError.message}` : 'none'],
    ]));
  };
  const form = h('form', { id: 'ota-form' }, h('h2', {}, 'Upload a signed bundle'), msg, h('div', { class: 'row' }, file), h('button', { class: 'primary', type: 'submit' }, 'Upload and apply'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = file.files?.[0];
    if (!f) return showAlert(msg, 'error', 'Choose a bundle file first.');
    // The status is re-read before the alert, so "Applied" is never shown beside the old version.
    /** @type {string | null} */
    let done = null;
    try {
      const o = /** @type {OtaView} */ (await api('POST', '/ota/bundle', await f.arrayBuffer(), true));
      done = `Applied version ${o.version}.`;
    } catch (e) {
      showAlert(msg, 'error', codeAndMessage(e));
    }
    await render().catch(() => {});
    if (done) showAlert(msg, 'ok', done);
  });
  setView(h('h1', {}, 'Policy updates'), h('div', { class: 'grid' }, h('div', { class: 'card' }, h('h2', {}, 'Status'), status), h('div', { class: 'card' }, form)));
  await render();
}

// @ts-check
// The cell default policy (subscribers without a policy of their own follow it).
import { api, fieldsOf } from '../lib/api.js';
import { alertBox, h, messageOf, setView, showAlert } from '../lib/dom.js';
import { clearErrors, policyFieldset, readPolicy, showFieldErrors } from '../lib/policy-form.js';
import { fetchUdp } from '../lib/udp.js';

/** @typedef {import('../types.js').PolicyView} PolicyView */
/** @typedef {import('../types.js').PagePolicy} PagePolicy */

export async function policyView() {
  const [p, udp] = /** @type {[PolicyView & { defaults: PagePolicy }, import('../types.js').UdpView | null]} */ (
    await Promise.all([api('GET', '/policy'), fetchUdp().catch(() => null)])
  );
  const msg = alertBox();
  const form = h('form', { id: 'policy-form', novalidate: true },
    msg,
    h('p', { class: 'muted' }, `Applies to subscribers without a policy of their own. Bundle version ${p.version ?? '—'}, changed ${new Date(p.updatedAt).toLocaleString()}.`),
    policyFieldset('defaults', p.defaults, { udp: udp !== null }),
    h('button', { class: 'primary', type: 'submit', id: 'save-policy' }, 'Save'),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    try {
      await api('PUT', '/policy', { defaults: readPolicy(form, 'defaults') });
      showAlert(msg, 'ok', 'Saved.');
    } catch (e) {
      showAlert(msg, 'error', messageOf(e));
      showFieldErrors(form, fieldsOf(e));
    }
  });
  setView(h('h1', {}, 'Cell default policy'), h('div', { class: 'card' }, form));
}

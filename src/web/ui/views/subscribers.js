// @ts-check
// Subscribers: the list (name, identifiers, policy, steering), and the editor (identifiers,
// enabled, own policy or the cell default, delete with a confirmation).
import { api, fieldsOf } from '../lib/api.js';
import { alertBox, h, messageOf, setView, showAlert } from '../lib/dom.js';
import { clearErrors, field, policyFieldset, readPolicy, showFieldErrors, steeringSummary } from '../lib/policy-form.js';
import { fetchUdp } from '../lib/udp.js';

/** @typedef {import('../types.js').PolicyView} PolicyView */
/** @typedef {import('../types.js').PagePolicy} PagePolicy */
/** @typedef {import('../types.js').SubscriberView} SubscriberView */

/**
 * A subscriber as the page reads it: its policy may carry the UDP fields.
 * @typedef {Omit<SubscriberView, 'policy'> & { policy: PagePolicy | null }} Subscriber
 */

export async function subscribersView() {
  const list = h('tbody', { id: 'subscribers-body' });
  const editor = h('div', { id: 'subscriber-editor' });
  const msg = alertBox();
  setView(
    h('h1', {}, 'Subscribers'),
    msg,
    h('div', { class: 'actions' }, h('button', { class: 'secondary', type: 'button', id: 'new-subscriber', onclick: () => openEditor(null) }, 'New subscriber')),
    h('table', { id: 'subscribers' }, h('thead', {}, h('tr', {}, ['Name', 'Identifiers', 'Policy', 'Steering', ''].map((t) => h('th', {}, t)))), list),
    editor,
  );
  const [policy, udp] = /** @type {[PolicyView & { defaults: PagePolicy }, import('../types.js').UdpView | null]} */ (
    await Promise.all([api('GET', '/policy'), fetchUdp().catch(() => null)])
  );
  const withUdp = udp !== null;

  const load = async () => {
    const subs = /** @type {Subscriber[]} */ (await api('GET', '/subscribers'));
    list.replaceChildren(
      ...subs.map((s) => {
        const p = s.policy ?? policy.defaults;
        return h('tr', { dataset: { id: s.id, name: s.name } },
          h('td', {}, s.name, !s.enabled && h('div', { class: 'sub' }, 'disabled')),
          h('td', {}, [...s.identifiers.addresses, ...s.identifiers.macs].join(', ')),
          h('td', {}, s.policy ? 'own' : 'cell default', h('div', { class: 'sub' }, `${p.limits.maxSessions} sessions, ${p.limits.maxSubflows} subflows`)),
          h('td', { class: 'steering' }, steeringSummary(p), withUdp && p.udpMode !== undefined && h('div', { class: 'sub udp' }, `UDP ${p.udpMode}${p.quic === 'block' ? ' · QUIC blocked' : ''}`)),
          h('td', {}, h('button', { class: 'secondary', type: 'button', dataset: { action: 'edit' }, onclick: () => openEditor(s) }, 'Edit')),
        );
      }),
    );
  };

  // The "done" alert comes after the list shows the change, so what it confirms is on screen.
  /** @param {string} done */
  const reloadThen = async (done) => {
    try {
      await load();
      showAlert(msg, 'ok', done);
    } catch (e) {
      showAlert(msg, 'error', `${done} The list did not reload: ${messageOf(e)}`);
    }
  };

  /** @param {Subscriber | null} s null: a new subscriber */
  const openEditor = (s) => {
    msg.hidden = true;
    const own = s ? s.policy !== null : false;
    const form = h('form', { id: 'subscriber-form', novalidate: true });
    const fmsg = alertBox();
    const ownBox = h('input', { type: 'checkbox', name: 'ownPolicy', id: 'f-ownPolicy', checked: own });
    const pset = policyFieldset('policy', s?.policy ?? policy.defaults, { udp: withUdp });
    pset.hidden = !own;
    ownBox.addEventListener('change', () => (pset.hidden = !ownBox.checked));
    let confirmDelete = false;
    const del = s ? h('button', { class: 'danger', type: 'button', id: 'delete-subscriber' }, 'Delete') : null;
    if (s && del) {
      del.addEventListener('click', async () => {
        if (!confirmDelete) {
          confirmDelete = true;
          del.textContent = 'Really delete?';
          return;
        }
        try {
          await api('DELETE', `/subscribers/${encodeURIComponent(s.id)}`);
          editor.replaceChildren();
          await reloadThen(`Deleted ${s.name}.`);
        } catch (e) {
          showAlert(fmsg, 'error', messageOf(e));
        }
      });
    }
    form.append(
      h('h2', {}, s ? `Edit ${s.name}` : 'New subscriber'),
      fmsg,
      h('div', { class: 'inline' },
        field('name', 'Name', h('input', { id: 'f-name', name: 'name', type: 'text', value: s?.name ?? '' })),
        h('div', { class: 'row' }, h('label', {}, h('input', { type: 'checkbox', name: 'enabled', checked: s ? s.enabled : true }), ' Enabled')),
      ),
      field('identifiers.addresses', 'Addresses or prefixes (one a line)', h('textarea', { id: 'f-identifiers.addresses', name: 'identifiers.addresses', value: (s?.identifiers.addresses ?? []).join('\n') })),
      field('identifiers.macs', 'MAC addresses (one a line)', h('textarea', { id: 'f-identifiers.macs', name: 'identifiers.macs', value: (s?.identifiers.macs ?? []).join('\n') })),
      h('div', { class: 'row' }, h('label', {}, ownBox, ' Own policy (otherwise the cell default applies)')),
      pset,
      h('div', { class: 'actions' }, h('button', { class: 'primary', type: 'submit', id: 'save-subscriber' }, 'Save'), h('button', { class: 'secondary', type: 'button', onclick: () => editor.replaceChildren() }, 'Cancel'), del),
    );
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      fmsg.hidden = true;
      const fd = new FormData(form);
      /** @param {string} k */
      const lines = (k) => String(fd.get(k) ?? '').split(/[\s,]+/).filter(Boolean);
      const body = {
        name: String(fd.get('name') ?? ''),
        enabled: fd.get('enabled') !== null,
        identifiers: { addresses: lines('identifiers.addresses'), macs: lines('identifiers.macs') },
        policy: ownBox.checked ? readPolicy(form, 'policy') : null,
      };
      try {
        const saved = /** @type {Subscriber} */ (s ? await api('PUT', `/subscribers/${encodeURIComponent(s.id)}`, body) : await api('POST', '/subscribers', body));
        editor.replaceChildren();
        await reloadThen(`Saved ${saved.name}.`);
      } catch (e) {
        showAlert(fmsg, 'error', messageOf(e));
        showFieldErrors(form, fieldsOf(e));
      }
    });
    editor.replaceChildren(h('div', { class: 'card' }, form));
    form.querySelector('input')?.focus();
  };

  await load();
}

// @ts-check
// First boot (choose the admin password) and log in.
import { api } from '../lib/api.js';
import { alertBox, h, messageOf, setView, showAlert } from '../lib/dom.js';

/** @typedef {import('../types.js').AuthState} AuthState */
/** @typedef {(s: AuthState) => void} Enter */

/**
 * @param {boolean} needSecret the box wants its set-up secret with the first password
 * @param {Enter} enter called with the new session
 */
export function setupView(needSecret, enter) {
  const msg = alertBox();
  const form = h(
    'form',
    { id: 'setup-form', novalidate: true },
    h('h1', {}, 'Welcome to duocell'),
    h('p', { class: 'muted' }, 'No admin password is set yet. Choose one (at least 8 characters) to protect this page.'),
    msg,
    needSecret && h('div', { class: 'row' }, h('label', { for: 'setup-secret' }, 'Set-up secret (shown on the console banner and the boot partition; duocell first-boot)'), h('input', { id: 'setup-secret', type: 'password', name: 'secret', autocomplete: 'off' })),
    h('div', { class: 'row' }, h('label', { for: 'setup-password' }, 'New admin password'), h('input', { id: 'setup-password', type: 'password', name: 'password', autocomplete: 'new-password' })),
    h('div', { class: 'row' }, h('label', { for: 'setup-confirm' }, 'Repeat it'), h('input', { id: 'setup-confirm', type: 'password', name: 'confirm', autocomplete: 'new-password' })),
    h('button', { class: 'primary', type: 'submit' }, 'Set password'),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    if (fd.get('password') !== fd.get('confirm')) return showAlert(msg, 'error', 'The two passwords differ.');
    try {
      /** @type {{ password: string, secret?: string }} */
      const body = { password: String(fd.get('password')) };
      if (needSecret) body.secret = String(fd.get('secret') ?? '');
      enter(/** @type {AuthState} */ (await api('POST', '/auth/setup', body)));
    } catch (e) {
      showAlert(msg, 'error', messageOf(e));
    }
  });
  setView(h('div', { class: 'card narrow' }, form));
}

/** @param {Enter} enter called with the new session */
export function loginView(enter) {
  const msg = alertBox();
  const form = h(
    'form',
    { id: 'login-form', novalidate: true },
    h('h1', {}, 'Log in'),
    msg,
    h('div', { class: 'row' }, h('label', { for: 'login-password' }, 'Admin password'), h('input', { id: 'login-password', type: 'password', name: 'password', autocomplete: 'current-password' })),
    h('button', { class: 'primary', type: 'submit' }, 'Log in'),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      enter(/** @type {AuthState} */ (await api('POST', '/auth/login', { password: String(new FormData(form).get('password')) })));
    } catch (e) {
      showAlert(msg, 'error', messageOf(e));
    }
  });
  setView(h('div', { class: 'card narrow' }, form));
}

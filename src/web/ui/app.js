// @ts-check
// The duocell page: a small single-page app over /api/v1, in plain ES modules (no build step).
// Hash routes (#/dashboard …), one module per view under views/, live data over server-sent
// events, every mutating call with the session's CSRF token.
//
//   app.js ─► views/*.js ─► lib/policy-form.js, lib/udp.js, chart.js
//          └─► lib/events.js ─► lib/api.js ─► lib/store.js ◄─ lib/dom.js   (lib/format.js: pure)
// A view module imports lib/ only, never another view; app.js alone knows them all.
import { api, setOnAuthLost } from './lib/api.js';
import { byId, h, messageOf, setView } from './lib/dom.js';
import { connectEvents, disconnectEvents } from './lib/events.js';
import { session } from './lib/store.js';
import { loginView, setupView } from './views/auth.js';
import { dashboardView } from './views/dashboard.js';
import { modemView } from './views/modem.js';
import { otaView } from './views/ota.js';
import { policyView } from './views/policy.js';
import { proxiesView } from './views/proxies.js';
import { sessionsView } from './views/sessions.js';
import { subscribersView } from './views/subscribers.js';
import { systemView } from './views/system.js';
import { wlanView } from './views/wlan.js';

/** @typedef {import('./types.js').AuthState} AuthState */

const nav = byId('nav');
const badge = byId('health-badge');

/** @type {Record<string, () => Promise<void>>} */
const ROUTES = {
  dashboard: dashboardView,
  modem: modemView,
  wlan: wlanView,
  sessions: sessionsView,
  proxies: proxiesView,
  subscribers: subscribersView,
  policy: policyView,
  ota: otaView,
  system: systemView,
};

/** @param {AuthState} s a logged-in session */
function enter(s) {
  session.csrf = s.csrf;
  session.loggedIn = true;
  nav.hidden = false;
  connectEvents();
  if (!location.hash || location.hash === '#/') location.hash = '#/dashboard';
  else void route();
}

async function boot() {
  nav.hidden = true;
  badge.hidden = true;
  disconnectEvents();
  const s = /** @type {AuthState} */ (await api('GET', '/auth/state'));
  session.csrf = s.csrf;
  if (!s.setUp) return setupView(s.firstBootSecretRequired, enter);
  if (!s.loggedIn) return loginView(enter);
  enter(s);
}

async function route() {
  if (!session.loggedIn) return;
  const name = location.hash.replace(/^#\//, '') || 'dashboard';
  const fn = ROUTES[name] ?? dashboardView;
  for (const a of nav.querySelectorAll('a')) a.classList.toggle('active', a.getAttribute('href') === `#/${name}`);
  try {
    await fn();
  } catch (e) {
    if (session.loggedIn) setView(h('div', { class: 'alert error' }, messageOf(e)));
  }
}

byId('logout').addEventListener('click', async () => {
  try {
    const s = /** @type {AuthState} */ (await api('POST', '/auth/logout'));
    session.csrf = s.csrf;
  } finally {
    session.loggedIn = false;
    void boot();
  }
});

setOnAuthLost(() => void boot());
window.addEventListener('hashchange', () => void route());
boot().catch((e) => setView(h('div', { class: 'alert error' }, `Cannot reach the box: ${messageOf(e)}`)));

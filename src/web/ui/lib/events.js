// @ts-check
// The event stream (GET /api/v1/events, server-sent events): throughput samples, paths and
// sessions go to the store, which tells the mounted view; the health badge in the header.
import { api, EVENTS_URL } from './api.js';
import { byId } from './dom.js';
import { publish, session } from './store.js';

/** @typedef {import('../types.js').HealthView} HealthView */

/** @type {EventSource | null} */
let events = null;

export function connectEvents() {
  events?.close();
  const es = new EventSource(EVENTS_URL);
  events = es;
  es.addEventListener('throughput', (ev) => publish('throughput', JSON.parse(ev.data)));
  es.addEventListener('paths', (ev) => publish('paths', JSON.parse(ev.data)));
  es.addEventListener('sessions', (ev) => publish('sessions', JSON.parse(ev.data)));
  es.onerror = () => {
    if (!session.loggedIn) es.close();
  };
  void refreshHealth();
}

export function disconnectEvents() {
  events?.close();
  events = null;
}

async function refreshHealth() {
  const badge = byId('health-badge');
  try {
    const hl = /** @type {HealthView} */ (await api('GET', '/health'));
    badge.hidden = false;
    badge.className = `badge ${hl.status === 'ok' ? 'ok' : 'degraded'}`;
    badge.textContent = `${hl.preset} · ${hl.status}`;
  } catch {
    badge.hidden = true;
  }
}

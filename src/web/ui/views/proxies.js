// @ts-check
// Proxies: the candidates (endpoint, priority, health, RTT, sessions, applications, policies),
// refreshed every 2 s, and the list editor (a JSON array, refused whole if any entry is bad).
import { api, codeAndMessage } from '../lib/api.js';
import { alertBox, h, messageOf, setView, showAlert } from '../lib/dom.js';

/** @typedef {import('../types.js').ProxyView} ProxyView */

export async function proxiesView() {
  const body = h('tbody', { id: 'proxies-body' });
  const msg = alertBox();
  const editor = h('textarea', { id: 'proxies-json', rows: 14, spellcheck: false, style: 'width:100%;font-family:monospace' });
  /**
   * A candidate as the editor shows it: only what PUT /proxies takes.
   * @param {ProxyView} p
   */
  const editable = (p) => {
    /** @type {Record<string, unknown>} */
    const o = { name: p.name ?? p.id, address: p.address, port: p.port, protocol: p.protocol, type: p.type, location: p.location, priority: p.priority, weight: p.weight, enabled: p.enabled };
    if (p.socks5) o.socks5 = p.socks5;
    if (p.auth) o.auth = { username: p.auth.username }; // no password: the stored one is kept
    if (p.apps?.length) o.apps = p.apps;
    if (p.policies?.length) o.policies = p.policies;
    return o;
  };
  /** @param {boolean} fillEditor */
  const render = async (fillEditor) => {
    const list = /** @type {ProxyView[]} */ (await api('GET', '/proxies'));
    body.replaceChildren(
      ...list.map((p) =>
        h('tr', { dataset: { id: p.id } },
          h('td', {}, p.name ?? p.id, h('div', { class: 'sub' }, `${p.type ?? 'off-path'} · ${p.location || '—'}`)),
          h('td', {}, `${p.address}:${p.port}`, h('div', { class: 'sub' }, p.protocol + (p.socks5 ? ` · socks5 ${p.socks5}` : ''))),
          h('td', { class: 'num' }, String(p.priority), h('div', { class: 'sub' }, `weight ${p.weight ?? 1}`)),
          h('td', {}, p.enabled === false ? 'disabled' : p.healthy ? 'healthy' : 'DOWN', p.lastError ? h('div', { class: 'sub', title: p.lastError }, p.lastError.slice(0, 60)) : ''),
          h('td', { class: 'num' }, p.rttMs === undefined ? '—' : `${p.rttMs} ms`),
          h('td', { class: 'num' }, String(p.sessions ?? 0)),
          h('td', {}, (p.apps ?? []).map((a) => `${a.name} (${[...(a.ports ?? []), ...(a.prefixes ?? []), ...(a.sni ?? []).map((n) => `sni ${n}`)].join(' ') || 'any'})`).join(', ') || 'all'),
          h('td', {}, (p.policies ?? []).join(', ') || 'all'),
        ),
      ),
    );
    if (fillEditor) editor.value = JSON.stringify(list.map(editable), null, 2);
  };
  const form = h('form', { id: 'proxies-form' }, h('h2', {}, 'Edit the list'), msg,
    h('p', { class: 'muted' }, 'A JSON array of candidates. A list with duplicate names, unknown types or unreachable addresses is refused whole; the list in force stays.'),
    editor, h('button', { class: 'primary', type: 'submit', id: 'save-proxies' }, 'Save'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    /** @type {unknown} */
    let list;
    try {
      list = JSON.parse(editor.value);
    } catch (e) {
      return showAlert(msg, 'error', `Not JSON: ${messageOf(e)}`);
    }
    try {
      await api('PUT', '/proxies', { proxies: list });
      await render(true);
      showAlert(msg, 'ok', 'Saved.');
    } catch (e) {
      showAlert(msg, 'error', codeAndMessage(e));
    }
  });
  const m = setView(
    h('h1', {}, 'Proxies'),
    h('table', { id: 'proxies' },
      h('thead', {}, h('tr', {}, ['Name', 'Endpoint', 'Priority', 'Health', 'RTT', 'Sessions', 'Applications', 'Policies'].map((t) => h('th', {}, t)))),
      body),
    h('div', { class: 'card' }, form),
  );
  await render(true);
  m.every(2000, () => void render(false).catch(() => {}));
}

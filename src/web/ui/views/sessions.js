// @ts-check
// Sessions: the proxy's TCP sessions live from the event stream (client, server, M/N, action,
// subflows with their access, bytes), and each steered UDP flow (5-tuple, uplink, bytes).
import { api, codeAndMessage } from '../lib/api.js';
import { h, setView } from '../lib/dom.js';
import { fmtBytes } from '../lib/format.js';
import { live, sessionCount, sessionList } from '../lib/store.js';
import { endpoint, fetchUdp } from '../lib/udp.js';

/** @typedef {import('../types.js').SessionsPayload} SessionsPayload */
/** @typedef {import('../types.js').UdpView} UdpView */

function renderSessionsTable() {
  const tbody = document.getElementById('sessions-body');
  const count = document.getElementById('sessions-count');
  if (!tbody || !count || !live.sessions) return;
  count.textContent = `${sessionCount(live.sessions)} open`;
  tbody.replaceChildren(
    ...sessionList(live.sessions).map((s) =>
      h('tr', { dataset: { id: s.id } },
        h('td', {}, `${s.client.address}:${s.client.port}`, h('div', { class: 'sub' }, s.client.mptcp ? 'MPTCP' : 'TCP')),
        h('td', {}, `${s.server.address}:${s.server.port}`, h('div', { class: 'sub' }, s.server.mptcp ? 'MPTCP' : 'TCP')),
        h('td', {}, s.combination, h('div', { class: 'sub' }, s.front)),
        h('td', {}, s.action, s.proxy ? h('div', { class: 'sub' }, `via ${s.proxy}${s.sni ? ` (sni ${s.sni})` : ''}`) : ''),
        h('td', {}, s.subflows.map((f) => h('span', { class: `chip ${f.access}`, title: `${f.side} ${f.local.address} → ${f.remote.address}, rtt ${(f.rttUs / 1000).toFixed(1)} ms` }, `${f.side[0]}:${f.access} ${fmtBytes(f.bytesSent + f.bytesReceived)}`))),
        h('td', { class: 'num' }, `↓ ${fmtBytes(s.bytes.down)}`, h('div', { class: 'sub' }, `↑ ${fmtBytes(s.bytes.up)}`)),
      ),
    ),
  );
}

/**
 * The UDP section: each flow on its uplink, or why there are none.
 * @param {HTMLElement} box
 * @param {UdpView | null} u null: the box has no UDP steering API
 */
function renderUdp(box, u) {
  if (u === null || !u.enabled) {
    box.dataset.state = u === null ? 'absent' : 'off';
    box.replaceChildren(h('h2', {}, 'UDP flows'), h('p', { class: 'muted', id: 'udp-off' }, 'UDP steering off'));
    return;
  }
  box.dataset.state = 'on';
  const rows = u.flows.map((f) =>
    h('tr', { dataset: { flow: `${endpoint(f.src, f.sport)}>${endpoint(f.dst, f.dport)}`, uplink: f.uplink } },
      h('td', {}, endpoint(f.src, f.sport)),
      h('td', {}, endpoint(f.dst, f.dport), h('div', { class: 'sub' }, f.dport === 443 ? 'UDP (QUIC?)' : 'UDP')),
      h('td', {}, h('span', { class: `chip ${f.uplink}` }, f.uplink)),
      h('td', { class: 'num' }, fmtBytes(f.bytes)),
      h('td', { class: 'num' }, String(f.packets)),
    ),
  );
  box.replaceChildren(
    h('h2', {}, 'UDP flows ', h('span', { id: 'udp-count', class: 'muted' }, `${u.flows.length} steered${u.mode ? ` · default mode ${u.mode}` : ''}`)),
    h('table', { id: 'udp-flows' },
      h('thead', {}, h('tr', {}, ['Source', 'Destination', 'Path', 'Bytes', 'Packets'].map((t) => h('th', {}, t)))),
      h('tbody', { id: 'udp-flows-body' }, rows.length > 0 ? rows : h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'no UDP flows'))),
    ),
  );
}

export async function sessionsView() {
  const udp = h('section', { id: 'udp', class: 'card' });
  const m = setView(
    h('h1', {}, 'Sessions ', h('span', { id: 'sessions-count', class: 'muted' })),
    h('table', { id: 'sessions' },
      h('thead', {}, h('tr', {}, ['Client', 'Server', 'M/N', 'Action', 'Subflows', 'Bytes'].map((t) => h('th', {}, t)))),
      h('tbody', { id: 'sessions-body' })),
    udp,
  );
  m.onTopic('sessions', () => renderSessionsTable());
  live.sessions = /** @type {SessionsPayload} */ (await api('GET', '/sessions'));
  renderSessionsTable();
  const refreshUdp = async () => {
    try {
      renderUdp(udp, await fetchUdp());
    } catch (e) {
      udp.replaceChildren(h('h2', {}, 'UDP flows'), h('div', { class: 'alert error' }, codeAndMessage(e)));
    }
  };
  await refreshUdp();
  m.every(2000, refreshUdp);
}

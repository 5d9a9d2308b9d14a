// @ts-check
// The dashboard: both paths (state, signal, addresses, rates, measured RTT with its chart), the
// throughput chart fed by the event stream, health, sessions by M/N combination, the modem and
// the path manager's pooling.
import { ThroughputChart } from '../chart.js';
import { api } from '../lib/api.js';
import { bars, h, kv, setView } from '../lib/dom.js';
import { dash, fmtBps, fmtBytes, fmtDur } from '../lib/format.js';
import { live, recordRtt, sessionCount, sessionList } from '../lib/store.js';

/** @typedef {import('../types.js').PathWithRate} PathWithRate */
/** @typedef {import('../types.js').PathView} PathView */
/** @typedef {import('../types.js').ThroughputSample} ThroughputSample */
/** @typedef {import('../types.js').PathManagerView} PathManagerView */
/** @typedef {import('../types.js').HealthView} HealthView */
/** @typedef {import('../types.js').ModemView} ModemView */
/** @typedef {NonNullable<PathView['signal']>} SignalView */

/** @param {PathWithRate} p */
function pathCard(p) {
  const tp = p.throughput ?? latestRate(p.name);
  return h(
    'div',
    { class: `card access-${p.access}`, dataset: { testid: `path-${p.name}`, state: p.state } },
    h('h2', {}, `${p.access === 'cellular' ? 'Cellular' : 'WLAN'} · ${p.interface} `, h('span', { class: `badge state-${p.state}` }, p.state)),
    kv([
      ['Access', p.access],
      ['Signal', p.signal ? h('span', {}, bars(p.signal.bars), ' ', signalText(p.access, p.signal)) : '—'],
      ['Addresses', p.addresses.length ? p.addresses.join(', ') : '—'],
      ['Throughput', tp ? `↓ ${fmtBps(tp.rxBps)} · ↑ ${fmtBps(tp.txBps)}` : '—'],
      ['RTT', rttText(p)],
      ['Jitter · loss', p.measure && p.measure.samples > 0 ? `${dash(p.measure.jitterMs, ' ms')} · ${dash(p.measure.lossPct, ' %')} (${p.measure.samples} probes)` : '—'],
      ['Carried', `↓ ${fmtBytes(p.bytesRx)} · ↑ ${fmtBytes(p.bytesTx)}`],
    ]),
    rttSpark(p.name),
  );
}

/**
 * The probes' median and p95 over the window; the passive (subflow) RTT when no probe answered.
 * @param {PathView} p
 */
function rttText(p) {
  const m = p.measure;
  if (m?.rttMedianMs !== undefined) return `${m.rttMedianMs.toFixed(1)} ms (p95 ${(m.rttP95Ms ?? m.rttMedianMs).toFixed(1)} ms)`;
  if (m?.passiveRttMs !== undefined) return `${m.passiveRttMs.toFixed(1)} ms (subflows)`;
  return dash(p.rttMs, ' ms');
}

/**
 * A small chart of a path's median RTT over time (SVG polyline; the scale is printed beside it).
 * @param {string} name
 */
function rttSpark(name) {
  const hist = live.rttHistory[name] ?? [];
  if (hist.length < 2) return h('div', { class: 'muted rtt-spark', dataset: { testid: `rtt-chart-${name}` } }, 'RTT chart: waiting for probes');
  const ns = 'http://www.w3.org/2000/svg';
  const W = 240;
  const H = 40;
  const max = Math.max(...hist) * 1.1 || 1;
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('width', String(W));
  svg.setAttribute('height', String(H));
  const line = document.createElementNS(ns, 'polyline');
  line.setAttribute('fill', 'none');
  line.setAttribute('stroke', 'currentColor');
  line.setAttribute('points', hist.map((v, i) => `${((i / (hist.length - 1)) * W).toFixed(1)},${(H - (v / max) * H).toFixed(1)}`).join(' '));
  svg.append(line);
  return h('div', { class: 'rtt-spark', dataset: { testid: `rtt-chart-${name}` } }, svg, h('span', { class: 'muted' }, ` RTT median, 0–${max.toFixed(0)} ms`));
}

/**
 * @param {PathView['access']} access
 * @param {SignalView} s
 */
function signalText(access, s) {
  if (access === 'cellular') return [s.rsrpDbm !== undefined && `RSRP ${s.rsrpDbm} dBm`, s.sinr !== undefined && `SINR ${s.sinr} dB`].filter(Boolean).join(', ');
  return wlanSignalText(s);
}

/**
 * The WLAN uplink's signal as nl80211 reports it: dBm, the network and the transmit bit rate.
 * @param {SignalView} s
 */
function wlanSignalText(s) {
  return [s.rssiDbm !== undefined && `${s.rssiDbm} dBm`, s.ssid !== undefined && `“${s.ssid}”`, s.txBitrateMbps !== undefined && `${s.txBitrateMbps} Mbit/s`].filter(Boolean).join(' · ');
}

/** @param {string} name */
function latestRate(name) {
  const last = live.history[live.history.length - 1];
  return last?.paths?.[name];
}

function renderPathCards() {
  const box = document.getElementById('path-cards');
  if (!box) return;
  box.replaceChildren(...live.paths.map(pathCard));
}

/** @param {ThroughputSample} s */
function updateTotals(s) {
  const el = document.getElementById('total-rate');
  if (el) el.textContent = `↓ ${fmtBps(s.total.rxBps)} · ↑ ${fmtBps(s.total.txBps)}`;
}

/** The dashboard's session summary: count and M/N combinations (live from the event stream). */
function renderDashSessions() {
  const card = document.getElementById('dash-sessions');
  if (!card || !live.sessions) return;
  /** @type {Record<string, number>} */
  const combos = {};
  for (const s of sessionList(live.sessions)) combos[s.combination] = (combos[s.combination] ?? 0) + 1;
  card.replaceChildren(
    h('h2', {}, 'Sessions'),
    h('div', { class: 'big', id: 'dash-session-count' }, String(sessionCount(live.sessions))),
    kv(Object.entries(combos).sort().map(([k, v]) => [k, String(v)])),
  );
}

/**
 * The path manager on the dashboard: its mode, each steered subscriber's target and measured
 * cellular share, and what the resource policy refused.
 * @param {PathManagerView} pm
 */
function steeringCard(pm) {
  const refusedSubflows = Object.values(pm.stats?.subflowsRefused ?? {}).reduce((a, b) => a + b, 0);
  const refusedSessions = (pm.limits?.refused?.perUe ?? 0) + (pm.limits?.refused?.perNServer ?? 0);
  const groups = pm.steering?.groups ?? [];
  /** @type {Array<[string, string]>} */
  const rows = [
    ['Path manager', pm.mode === 'userspace' ? 'duocell (userspace)' : 'kernel (steering off)'],
    ['MPTCP connections', String((pm.connections ?? []).length)],
    ['Refused', `${refusedSessions} sessions · ${refusedSubflows} subflows`],
    ...groups.map((g) => /** @type {[string, string]} */ ([
      g.group,
      g.mode === 'ratio' ? `ratio ${g.target} % cellular, measured ${g.share === undefined ? '—' : `${Math.round(g.share)} %`}` : g.mode,
    ])),
  ];
  return h('div', { class: 'card', id: 'dash-steering' }, h('h2', {}, 'Pooling'), kv(rows));
}

/** Sessions changed: refresh the pooling card (at most every 2 s) if the dashboard shows it. */
let steeringFetched = 0;
async function refreshDashSteering() {
  const card = document.getElementById('dash-steering');
  if (!card || Date.now() - steeringFetched < 2000) return;
  steeringFetched = Date.now();
  const pm = /** @type {PathManagerView | null} */ (await api('GET', '/pm').catch(() => null));
  if (pm) document.getElementById('dash-steering')?.replaceWith(steeringCard(pm));
}

export async function dashboardView() {
  const canvas = h('canvas', { id: 'chart', dataset: { samples: '0' } });
  const m = setView(
    h('h1', {}, 'Dashboard'),
    h('div', { id: 'path-cards', class: 'grid' }),
    h(
      'div',
      { class: 'card' },
      h('h2', {}, 'Throughput (up to the last 5 minutes) ', h('span', { id: 'total-rate', class: 'muted' })),
      h('div', { class: 'chart-wrap' }, canvas),
      h('div', { class: 'legend' }, h('span', { class: 'l-total' }, 'total'), h('span', { class: 'l-cellular' }, 'cellular'), h('span', { class: 'l-wlan' }, 'WLAN')),
    ),
    h('div', { id: 'dash-extra', class: 'grid' }),
  );
  const chart = new ThroughputChart(canvas);
  m.onTopic('throughput', (s) => {
    chart.push(s);
    updateTotals(s);
  });
  m.onTopic('paths', () => renderPathCards());
  m.onTopic('sessions', () => {
    renderDashSessions();
    void refreshDashSteering();
  });
  m.listen(window, 'resize', () => chart.draw());
  const [paths, history] = /** @type {[PathWithRate[], ThroughputSample[]]} */ (await Promise.all([api('GET', '/paths'), api('GET', '/throughput')]));
  live.paths = paths;
  recordRtt(paths);
  renderPathCards();
  for (const s of history) chart.push(s);
  const last = history[history.length - 1];
  if (last) updateTotals(last);
  const extra = document.getElementById('dash-extra');
  const [hl, sessions, modem, pm] = /** @type {[HealthView, import('../types.js').SessionsPayload, ModemView | null, PathManagerView | null]} */ (
    await Promise.all([api('GET', '/health'), api('GET', '/sessions'), api('GET', '/modem').catch(() => null), api('GET', '/pm').catch(() => null)])
  );
  live.sessions = sessions;
  extra?.replaceChildren(
    h('div', { class: 'card' }, h('h2', {}, 'Health'), kv([['Status', hl.status], ['Preset', hl.preset], ['Version', hl.version], ['Up', fmtDur(hl.uptimeS)], ...Object.entries(hl.checks).map(([k, v]) => /** @type {[string, string]} */ ([k, v ? 'ok' : 'failing']))])),
    hl.anycast ? anycastCard(hl.anycast) : '',
    h('div', { class: 'card', id: 'dash-sessions' }),
    modem ? h('div', { class: 'card' }, h('h2', {}, 'Modem'), kv([['State', modem.state], ['Operator', dash(modem.operator)], ['RAT / band', `${dash(modem.rat)} / ${dash(modem.band)}`], ['SIM', modem.sim]])) : '',
    pm ? steeringCard(pm) : '',
  );
  renderDashSessions();
}

/**
 * A pool member's anycast announcement: state, BGP and BFD sessions, and what is wrong in words
 * (a BGP or BFD misconfiguration is shown, never hidden).
 * @param {NonNullable<HealthView['anycast']>} a
 */
function anycastCard(a) {
  return h(
    'div',
    { class: 'card', id: 'dash-anycast' },
    h('h2', {}, 'Anycast pool'),
    kv([
      ['Announcement', `${a.state} (${a.protocol})`],
      ['Healthy', a.healthy ? 'yes' : 'NO'],
      ...a.bgp.map((b) => /** @type {[string, string]} */ ([`BGP ${b.name}`, `${b.state}${b.info ? ` · ${b.info}` : ''}`])),
      ...a.bfd.map((b) => /** @type {[string, string]} */ ([`BFD ${b.peer}`, `${b.state}${b.interface ? ` · ${b.interface}` : ''}`])),
    ]),
    a.problems.length === 0 ? '' : h('ul', { class: 'warn' }, ...a.problems.map((p) => h('li', {}, p))),
  );
}

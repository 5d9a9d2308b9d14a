// The duocell page: a small single-page app over /api/v1. Hash routes (#/dashboard …), live
// data over server-sent events, every mutating call with the session's CSRF token.
import { ThroughputChart } from './chart.js';

const API = '/api/v1';
const view = document.getElementById('view');
const nav = document.getElementById('nav');
const badge = document.getElementById('health-badge');

const state = {
  csrf: '',
  loggedIn: false,
  /** @type {EventSource|null} */
  events: null,
  chart: /** @type {ThroughputChart|null} */ (null),
  history: [],
  paths: [],
  /** Median RTT per path, as the paths arrived (the RTT charts on the path cards). */
  rttHistory: {},
  sessions: null,
  timers: [],
};

// ---- helpers ----------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code ?? 'DC_HTTP';
    this.fields = body?.error?.fields ?? [];
  }
}

async function api(method, path, body, raw = false) {
  const headers = {};
  if (method !== 'GET') headers['x-csrf-token'] = state.csrf;
  let payload;
  if (body !== undefined) {
    if (raw) {
      headers['content-type'] = 'application/octet-stream';
      payload = body;
    } else {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
  }
  const r = await fetch(API + path, { method, headers, body: payload, credentials: 'same-origin' });
  if (r.status === 204) return null;
  const data = await r.json().catch(() => null);
  if (!r.ok) {
    const e = new ApiError(r.status, data);
    if (r.status === 401 && e.code === 'DC_WEB_AUTH_REQUIRED' && state.loggedIn) {
      state.loggedIn = false;
      void boot();
    }
    throw e;
  }
  return data;
}

/** Build an element: h('div', {class: 'x', dataset: {a: 1}}, child, 'text'). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k in el && k !== 'list' && k !== 'form') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

function setView(...nodes) {
  for (const t of state.timers) clearInterval(t);
  state.timers = [];
  state.chart = null;
  view.replaceChildren(...nodes);
}

function every(ms, fn) {
  state.timers.push(setInterval(fn, ms));
}

const fmtBps = (b) => (b >= 1e9 ? `${(b / 1e9).toFixed(2)} Gbit/s` : b >= 1e6 ? `${(b / 1e6).toFixed(1)} Mbit/s` : `${(b / 1e3).toFixed(0)} kbit/s`);
const fmtBytes = (b) => {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (b >= 1024 && i < u.length - 1) {
    b /= 1024;
    i++;
  }
  return `${b.toFixed(i === 0 ? 0 : 1)} ${u[i]}`;
};
const fmtDur = (s) => {
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const mm = Math.floor((s % 3600) / 60);
  return d > 0 ? `${d} d ${hh} h` : hh > 0 ? `${hh} h ${mm} min` : `${mm} min ${Math.floor(s % 60)} s`;
};
const dash = (v, unit = '') => (v === undefined || v === null ? '—' : `${v}${unit}`);

function bars(n) {
  return h('span', { class: 'bars', title: `${n} of 4`, dataset: { bars: String(n) } }, [1, 2, 3, 4].map((i) => h('i', { class: i <= n ? 'on' : '' })));
}

function kv(pairs) {
  return h('dl', { class: 'kv' }, pairs.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function alertBox() {
  return h('div', { class: 'alert', role: 'alert', hidden: true });
}

function showAlert(box, kind, text) {
  box.className = `alert ${kind}`;
  box.textContent = text;
  box.hidden = false;
}

// ---- first boot and login -----------------------------------------------------------

function setupView(needSecret) {
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
      const body = { password: String(fd.get('password')) };
      if (needSecret) body.secret = String(fd.get('secret') ?? '');
      const s = await api('POST', '/auth/setup', body);
      enter(s);
    } catch (e) {
      showAlert(msg, 'error', e.message);
    }
  });
  setView(h('div', { class: 'card narrow' }, form));
}

function loginView() {
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
      const s = await api('POST', '/auth/login', { password: String(new FormData(form).get('password')) });
      enter(s);
    } catch (e) {
      showAlert(msg, 'error', e.message);
    }
  });
  setView(h('div', { class: 'card narrow' }, form));
}

function enter(s) {
  state.csrf = s.csrf;
  state.loggedIn = true;
  nav.hidden = false;
  connectEvents();
  if (!location.hash || location.hash === '#/') location.hash = '#/dashboard';
  else route();
}

async function boot() {
  nav.hidden = true;
  badge.hidden = true;
  state.events?.close();
  state.events = null;
  const s = await api('GET', '/auth/state');
  state.csrf = s.csrf;
  if (!s.setUp) return setupView(s.firstBootSecretRequired);
  if (!s.loggedIn) return loginView();
  enter(s);
}

document.getElementById('logout').addEventListener('click', async () => {
  try {
    const s = await api('POST', '/auth/logout');
    state.csrf = s.csrf;
  } finally {
    state.loggedIn = false;
    void boot();
  }
});

// ---- live events ----------------------------------------------------------------------

function connectEvents() {
  state.events?.close();
  const es = new EventSource(`${API}/events`);
  state.events = es;
  es.addEventListener('throughput', (ev) => {
    const s = JSON.parse(ev.data);
    state.history.push(s);
    if (state.history.length > 400) state.history.shift();
    state.chart?.push(s);
    updateTotals(s);
  });
  es.addEventListener('paths', (ev) => {
    state.paths = JSON.parse(ev.data);
    recordRtt(state.paths);
    renderPathCards();
  });
  es.addEventListener('sessions', (ev) => {
    state.sessions = JSON.parse(ev.data);
    renderSessionsTable();
    renderDashSessions();
    void refreshDashSteering();
  });
  es.onerror = () => {
    if (!state.loggedIn) es.close();
  };
  void refreshHealth();
}

async function refreshHealth() {
  try {
    const hl = await api('GET', '/health');
    badge.hidden = false;
    badge.className = `badge ${hl.status === 'ok' ? 'ok' : 'degraded'}`;
    badge.textContent = `${hl.preset} · ${hl.status}`;
  } catch {
    badge.hidden = true;
  }
}

// ---- dashboard --------------------------------------------------------------------------

function pathCard(p) {
  const tp = p.throughput ?? latestRate(p.name);
  return h(
    'div',
    { class: `card access-${p.access}`, dataset: { testid: `path-${p.name}`, state: p.state } },
    h('h2', {}, `${p.access === 'cellular' ? 'Cellular' : 'WLAN'} · ${p.interface} `, h('span', { class: `badge state-${p.state}` }, p.state)),
    kv([
      ['Access', p.access],
      ['Signal', p.signal ? h('span', {}, bars(p.signal.bars), ' ', signalText(p)) : '—'],
      ['Addresses', p.addresses.length ? p.addresses.join(', ') : '—'],
      ['Throughput', tp ? `↓ ${fmtBps(tp.rxBps)} · ↑ ${fmtBps(tp.txBps)}` : '—'],
      ['RTT', rttText(p)],
      ['Jitter · loss', p.measure && p.measure.samples > 0 ? `${dash(p.measure.jitterMs, ' ms')} · ${dash(p.measure.lossPct, ' %')} (${p.measure.samples} probes)` : '—'],
      ['Carried', `↓ ${fmtBytes(p.bytesRx)} · ↑ ${fmtBytes(p.bytesTx)}`],
    ]),
    rttSpark(p.name),
  );
}

/** The probes' median and p95 over the window; the passive (subflow) RTT when no probe answered. */
function rttText(p) {
  const m = p.measure;
  if (m?.rttMedianMs !== undefined) return `${m.rttMedianMs.toFixed(1)} ms (p95 ${m.rttP95Ms.toFixed(1)} ms)`;
  if (m?.passiveRttMs !== undefined) return `${m.passiveRttMs.toFixed(1)} ms (subflows)`;
  return dash(p.rttMs, ' ms');
}

/** Remember each path's median RTT as the paths arrive (for the RTT chart on its card). */
function recordRtt(paths) {
  for (const p of paths) {
    const v = p.measure?.rttMedianMs;
    if (v === undefined) continue;
    const hist = (state.rttHistory[p.name] ??= []);
    hist.push(v);
    if (hist.length > 120) hist.shift();
  }
}

/** A small chart of a path's median RTT over time (SVG polyline; the scale is printed beside it). */
function rttSpark(name) {
  const hist = state.rttHistory[name] ?? [];
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

function signalText(p) {
  const s = p.signal;
  if (p.access === 'cellular') return [s.rsrpDbm !== undefined && `RSRP ${s.rsrpDbm} dBm`, s.sinr !== undefined && `SINR ${s.sinr} dB`].filter(Boolean).join(', ');
  return wlanSignalText(s);
}

/** The WLAN uplink's signal as nl80211 reports it: dBm, the network and the transmit bit rate. */
function wlanSignalText(s) {
  return [s.rssiDbm !== undefined && `${s.rssiDbm} dBm`, s.ssid !== undefined && `“${s.ssid}”`, s.txBitrateMbps !== undefined && `${s.txBitrateMbps} Mbit/s`].filter(Boolean).join(' · ');
}

function latestRate(name) {
  const last = state.history[state.history.length - 1];
  return last?.paths?.[name];
}

function renderPathCards() {
  const box = document.getElementById('path-cards');
  if (!box) return;
  box.replaceChildren(...state.paths.map(pathCard));
}

function updateTotals(s) {
  const el = document.getElementById('total-rate');
  if (el) el.textContent = `↓ ${fmtBps(s.total.rxBps)} · ↑ ${fmtBps(s.total.txBps)}`;
}

/** The dashboard's session summary: count and M/N combinations (live from the event stream). */
function renderDashSessions() {
  const card = document.getElementById('dash-sessions');
  if (!card || !state.sessions) return;
  const list = Array.isArray(state.sessions) ? state.sessions : state.sessions.sessions;
  const count = Array.isArray(state.sessions) ? list.length : state.sessions.count;
  const combos = {};
  for (const s of list) combos[s.combination] = (combos[s.combination] ?? 0) + 1;
  card.replaceChildren(h('h2', {}, 'Sessions'), h('div', { class: 'big', id: 'dash-session-count' }, String(count)), kv(Object.entries(combos).sort().map(([k, v]) => [k, String(v)])));
}

/**
 * The path manager on the dashboard: its mode, each steered subscriber's target and measured
 * cellular share, and what the resource policy refused.
 */
function steeringCard(pm) {
  const refusedSubflows = Object.values(pm.stats?.subflowsRefused ?? {}).reduce((a, b) => a + b, 0);
  const refusedSessions = (pm.limits?.refused?.perUe ?? 0) + (pm.limits?.refused?.perNServer ?? 0);
  const groups = pm.steering?.groups ?? [];
  const rows = [
    ['Path manager', pm.mode === 'userspace' ? 'duocell (userspace)' : 'kernel (steering off)'],
    ['MPTCP connections', String((pm.connections ?? []).length)],
    ['Refused', `${refusedSessions} sessions · ${refusedSubflows} subflows`],
    ...groups.map((g) => [
      g.group,
      g.mode === 'ratio' ? `ratio ${g.target} % cellular, measured ${g.share === undefined ? '—' : `${Math.round(g.share)} %`}` : g.mode,
    ]),
  ];
  return h('div', { class: 'card', id: 'dash-steering' }, h('h2', {}, 'Pooling'), kv(rows));
}

/** Sessions changed: refresh the pooling card (at most every 2 s) if the dashboard shows it. */
let steeringFetched = 0;
async function refreshDashSteering() {
  const card = document.getElementById('dash-steering');
  if (!card || Date.now() - steeringFetched < 2000) return;
  steeringFetched = Date.now();
  const pm = await api('GET', '/pm').catch(() => null);
  if (pm) document.getElementById('dash-steering')?.replaceWith(steeringCard(pm));
}

async function dashboardView() {
  const canvas = h('canvas', { id: 'chart', dataset: { samples: '0' } });
  setView(
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
  state.chart = chart;
  const [paths, history] = await Promise.all([api('GET', '/paths'), api('GET', '/throughput')]);
  state.paths = paths;
  recordRtt(paths);
  renderPathCards();
  for (const s of history) chart.push(s);
  if (history.length) updateTotals(history[history.length - 1]);
  const extra = document.getElementById('dash-extra');
  const [hl, sessions, modem, pm] = await Promise.all([
    api('GET', '/health'),
    api('GET', '/sessions'),
    api('GET', '/modem').catch(() => null),
    api('GET', '/pm').catch(() => null),
  ]);
  state.sessions = sessions;
  extra?.replaceChildren(
    h('div', { class: 'card' }, h('h2', {}, 'Health'), kv([['Status', hl.status], ['Preset', hl.preset], ['Version', hl.version], ['Up', fmtDur(hl.uptimeS)], ...Object.entries(hl.checks).map(([k, v]) => [k, v ? 'ok' : 'failing'])])),
    h('div', { class: 'card', id: 'dash-sessions' }),
    modem && h('div', { class: 'card' }, h('h2', {}, 'Modem'), kv([['State', modem.state], ['Operator', dash(modem.operator)], ['RAT / band', `${dash(modem.rat)} / ${dash(modem.band)}`], ['SIM', modem.sim]])),
    pm && steeringCard(pm),
  );
  renderDashSessions();
}

// ---- modem, WLAN ------------------------------------------------------------------------

async function modemView() {
  const render = async () => {
    try {
      const m = await api('GET', '/modem');
      setBody(
        h('div', { class: 'card', dataset: { testid: 'modem' } },
          kv([
            ['Present', m.present ? 'yes' : 'no'], ['State', m.state], ['Model', dash(m.model)], ['IMEI', dash(m.imei)], ['SIM', m.sim],
            ['Operator', dash(m.operator)], ['RAT', dash(m.rat)], ['Band', dash(m.band)], ['RSSI', dash(m.rssiDbm, ' dBm')],
            ['RSRP', dash(m.rsrp, ' dBm')], ['RSRQ', dash(m.rsrq, ' dB')], ['SINR', dash(m.sinr, ' dB')], ['APN', dash(m.apn)],
            ['Addresses', (m.addresses ?? []).join(', ') || '—'],
            ...(m.warning ? [['Warning', m.warning]] : []),
          ])),
      );
    } catch (e) {
      setBody(h('div', { class: 'alert error' }, e.message));
    }
  };
  const body = h('div', { id: 'modem-body' });
  const setBody = (n) => body.replaceChildren(n);
  setView(h('h1', {}, 'Modem'), body);
  await render();
  every(5000, render);
}

async function wlanView() {
  const body = h('div');
  setView(h('h1', {}, 'WLAN'), body);
  const render = async () => {
    try {
      const w = await api('GET', '/wlan');
      body.replaceChildren(
        h('div', { class: 'card', dataset: { testid: 'wlan' } },
          kv([
            ['Present', w.present ? 'yes' : 'no'], ['Interface', w.interface], ['Mode', w.mode], ['State', w.state], ['SSID', dash(w.ssid)],
            ['BSSID', dash(w.bssid)], ['Frequency', dash(w.frequencyMhz, ' MHz')], ['Channel', dash(w.channel)], ['Signal', dash(w.signalDbm, ' dBm')],
            ['Bit rate', `↓ ${dash(w.rxBitrateMbps, ' Mbit/s')} · ↑ ${dash(w.txBitrateMbps, ' Mbit/s')}`], ['Stations', dash(w.stations)],
          ])),
      );
    } catch (e) {
      body.replaceChildren(h('div', { class: 'alert error' }, e.message));
    }
  };
  await render();
  every(5000, render);
}

// ---- sessions ---------------------------------------------------------------------------

function renderSessionsTable() {
  const tbody = document.getElementById('sessions-body');
  if (!tbody || !state.sessions) return;
  const list = Array.isArray(state.sessions) ? state.sessions : state.sessions.sessions;
  document.getElementById('sessions-count').textContent = `${Array.isArray(state.sessions) ? list.length : state.sessions.count} open`;
  tbody.replaceChildren(
    ...list.map((s) =>
      h('tr', { dataset: { id: s.id } },
        h('td', {}, `${s.client.address}:${s.client.port}`, h('div', { class: 'sub' }, s.client.mptcp ? 'MPTCP' : 'TCP')),
        h('td', {}, `${s.server.address}:${s.server.port}`, h('div', { class: 'sub' }, s.server.mptcp ? 'MPTCP' : 'TCP')),
        h('td', {}, s.combination, h('div', { class: 'sub' }, s.front)),
        h('td', {}, s.action, s.proxy ? h('div', { class: 'sub' }, `via ${s.proxy}`) : ''),
        h('td', {}, s.subflows.map((f) => h('span', { class: `chip ${f.access}`, title: `${f.side} ${f.local.address} → ${f.remote.address}, rtt ${(f.rttUs / 1000).toFixed(1)} ms` }, `${f.side[0]}:${f.access} ${fmtBytes(f.bytesSent + f.bytesReceived)}`))),
        h('td', { class: 'num' }, `↓ ${fmtBytes(s.bytes.down)}`, h('div', { class: 'sub' }, `↑ ${fmtBytes(s.bytes.up)}`)),
      ),
    ),
  );
}

async function sessionsView() {
  setView(
    h('h1', {}, 'Sessions ', h('span', { id: 'sessions-count', class: 'muted' })),
    h('table', { id: 'sessions' },
      h('thead', {}, h('tr', {}, ['Client', 'Server', 'M/N', 'Action', 'Subflows', 'Bytes'].map((t) => h('th', {}, t)))),
      h('tbody', { id: 'sessions-body' })),
  );
  state.sessions = await api('GET', '/sessions');
  renderSessionsTable();
}

// ---- policy form (shared by the cell default and a subscriber's own policy) --------------

function field(path, label, input, hint) {
  return h('div', { class: 'row', dataset: { field: path } }, h('label', { for: `f-${path}` }, label), input, hint && h('span', { class: 'sub' }, hint), h('p', { class: 'field-error', dataset: { errorFor: path }, hidden: true }));
}

function num(path, value, min, max) {
  return h('input', { id: `f-${path}`, name: path, type: 'number', value: String(value), min: String(min), max: String(max), step: '1' });
}

function policyFieldset(prefix, p) {
  const id = (s) => `${prefix}.${s}`;
  const accessBox = (a) => h('label', {}, h('input', { type: 'checkbox', name: id('allowedAccess'), value: a, checked: p.allowedAccess.includes(a) }), ` ${a}`);
  return h('fieldset', { dataset: { policy: prefix } },
    h('legend', {}, 'Policy'),
    h('div', { class: 'inline' },
      field(id('limits.maxSessions'), 'Max sessions per device', num(id('limits.maxSessions'), p.limits.maxSessions, 1, 10000)),
      field(id('limits.maxSubflows'), 'Max subflows per session', num(id('limits.maxSubflows'), p.limits.maxSubflows, 1, 8)),
      field(id('limits.maxSessionsPerServer'), 'Max sessions per server', num(id('limits.maxSessionsPerServer'), p.limits.maxSessionsPerServer, 1, 100000)),
    ),
    h('div', { class: 'row', dataset: { field: id('allowedAccess') } }, h('label', {}, 'Allowed access'), h('div', { class: 'inline' }, accessBox('cellular'), accessBox('wlan')), h('p', { class: 'field-error', dataset: { errorFor: id('allowedAccess') }, hidden: true })),
    field(id('allowedNetworks'), 'Allowed networks for subflows (one prefix a line; empty: any)', h('textarea', { id: `f-${id('allowedNetworks')}`, name: id('allowedNetworks'), value: p.allowedNetworks.join('\n') })),
    h('div', { class: 'inline' },
      field(id('steering.mode'), 'Steering mode', h('select', { id: `f-${id('steering.mode')}`, name: id('steering.mode') }, ['ratio', 'active-standby', 'priority'].map((m) => h('option', { value: m, selected: p.steering.mode === m }, m)))),
      field(id('steering.primary'), 'Primary path', h('select', { id: `f-${id('steering.primary')}`, name: id('steering.primary') }, ['wlan', 'cellular'].map((m) => h('option', { value: m, selected: p.steering.primary === m }, m)))),
      field(id('steering.ratio.cellular'), 'Cellular share %', num(id('steering.ratio.cellular'), p.steering.ratio.cellular, 0, 100)),
      field(id('steering.ratio.wlan'), 'WLAN share %', num(id('steering.ratio.wlan'), p.steering.ratio.wlan, 0, 100)),
    ),
    h('p', { class: 'field-error', dataset: { errorFor: id('steering.ratio') }, hidden: true }),
  );
}

/** Read a policy back from the form; numbers that do not parse are sent as they are typed. */
function readPolicy(form, prefix) {
  const fd = new FormData(form);
  const v = (k) => fd.get(`${prefix}.${k}`);
  const n = (k) => {
    const s = String(v(k) ?? '').trim();
    return /^-?\d+$/.test(s) ? Number(s) : s;
  };
  return {
    limits: { maxSessions: n('limits.maxSessions'), maxSubflows: n('limits.maxSubflows'), maxSessionsPerServer: n('limits.maxSessionsPerServer') },
    allowedAccess: fd.getAll(`${prefix}.allowedAccess`).map(String),
    allowedNetworks: String(v('allowedNetworks') ?? '').split(/[\s,]+/).filter(Boolean),
    steering: { mode: String(v('steering.mode')), primary: String(v('steering.primary')), ratio: { cellular: n('steering.ratio.cellular'), wlan: n('steering.ratio.wlan') } },
  };
}

function clearErrors(form) {
  for (const el of form.querySelectorAll('.field-error')) {
    el.hidden = true;
    el.textContent = '';
  }
  for (const el of form.querySelectorAll('.invalid')) el.classList.remove('invalid');
}

/** Put each server validation message beside its input (or the nearest enclosing field). */
function showFieldErrors(form, fields) {
  for (const f of fields) {
    let path = f.path;
    let slot = null;
    while (path && !(slot = form.querySelector(`[data-error-for="${CSS.escape(path)}"]`))) path = path.includes('.') ? path.slice(0, path.lastIndexOf('.')) : '';
    if (!slot) continue;
    slot.hidden = false;
    slot.textContent = slot.textContent ? `${slot.textContent}; ${f.message}` : f.message;
    const input = form.querySelector(`[name="${CSS.escape(path)}"]`);
    input?.classList.add('invalid');
  }
}

// ---- subscribers ------------------------------------------------------------------------

async function subscribersView() {
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
  const policy = await api('GET', '/policy');

  const load = async () => {
    const subs = await api('GET', '/subscribers');
    list.replaceChildren(
      ...subs.map((s) => {
        const p = s.policy ?? policy.defaults;
        return h('tr', { dataset: { id: s.id, name: s.name } },
          h('td', {}, s.name, !s.enabled && h('div', { class: 'sub' }, 'disabled')),
          h('td', {}, [...s.identifiers.addresses, ...s.identifiers.macs].join(', ')),
          h('td', {}, s.policy ? 'own' : 'cell default', h('div', { class: 'sub' }, `${p.limits.maxSessions} sessions, ${p.limits.maxSubflows} subflows`)),
          h('td', { class: 'steering' }, p.steering.mode === 'ratio' ? `ratio ${p.steering.ratio.cellular}:${p.steering.ratio.wlan}` : `${p.steering.mode} (${p.steering.primary})`),
          h('td', {}, h('button', { class: 'secondary', type: 'button', dataset: { action: 'edit' }, onclick: () => openEditor(s) }, 'Edit')),
        );
      }),
    );
  };

  const openEditor = (s) => {
    msg.hidden = true;
    const own = s ? s.policy !== null : false;
    const form = h('form', { id: 'subscriber-form', novalidate: true });
    const fmsg = alertBox();
    const ownBox = h('input', { type: 'checkbox', name: 'ownPolicy', id: 'f-ownPolicy', checked: own });
    const pset = policyFieldset('policy', s?.policy ?? policy.defaults);
    pset.hidden = !own;
    ownBox.addEventListener('change', () => (pset.hidden = !ownBox.checked));
    let confirmDelete = false;
    const del = s && h('button', { class: 'danger', type: 'button', id: 'delete-subscriber' }, 'Delete');
    del?.addEventListener('click', async () => {
      if (!confirmDelete) {
        confirmDelete = true;
        del.textContent = 'Really delete?';
        return;
      }
      try {
        await api('DELETE', `/subscribers/${encodeURIComponent(s.id)}`);
        editor.replaceChildren();
        showAlert(msg, 'ok', `Deleted ${s.name}.`);
        await load();
      } catch (e) {
        showAlert(fmsg, 'error', e.message);
      }
    });
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
      const lines = (k) => String(fd.get(k) ?? '').split(/[\s,]+/).filter(Boolean);
      const body = {
        name: String(fd.get('name') ?? ''),
        enabled: fd.get('enabled') !== null,
        identifiers: { addresses: lines('identifiers.addresses'), macs: lines('identifiers.macs') },
        policy: ownBox.checked ? readPolicy(form, 'policy') : null,
      };
      try {
        const saved = s ? await api('PUT', `/subscribers/${encodeURIComponent(s.id)}`, body) : await api('POST', '/subscribers', body);
        editor.replaceChildren();
        showAlert(msg, 'ok', `Saved ${saved.name}.`);
        await load();
      } catch (e) {
        showAlert(fmsg, 'error', e.message);
        showFieldErrors(form, e.fields ?? []);
      }
    });
    editor.replaceChildren(h('div', { class: 'card' }, form));
    form.querySelector('input')?.focus();
  };

  await load();
}

// ---- cell default policy ----------------------------------------------------------------

async function policyView() {
  const p = await api('GET', '/policy');
  const msg = alertBox();
  const form = h('form', { id: 'policy-form', novalidate: true },
    msg,
    h('p', { class: 'muted' }, `Applies to subscribers without a policy of their own. Bundle version ${p.version ?? '—'}, changed ${new Date(p.updatedAt).toLocaleString()}.`),
    policyFieldset('defaults', p.defaults),
    h('button', { class: 'primary', type: 'submit', id: 'save-policy' }, 'Save'),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    try {
      await api('PUT', '/policy', { defaults: readPolicy(form, 'defaults') });
      showAlert(msg, 'ok', 'Saved.');
    } catch (e) {
      showAlert(msg, 'error', e.message);
      showFieldErrors(form, e.fields ?? []);
    }
  });
  setView(h('h1', {}, 'Cell default policy'), h('div', { class: 'card' }, form));
}

// ---- OTA ----------------------------------------------------------------------------

async function otaView() {
  const status = h('div', { id: 'ota-status' });
  const msg = alertBox();
  const file = h('input', { type: 'file', id: 'bundle-file', accept: '.json,.bundle,application/json,application/octet-stream' });
  const render = async () => {
    const o = await api('GET', '/ota');
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
    try {
      const o = await api('POST', '/ota/bundle', await f.arrayBuffer(), true);
      showAlert(msg, 'ok', `Applied version ${o.version}.`);
    } catch (e) {
      showAlert(msg, 'error', `${e.code}: ${e.message}`);
    }
    await render();
  });
  setView(h('h1', {}, 'Policy updates'), h('div', { class: 'grid' }, h('div', { class: 'card' }, h('h2', {}, 'Status'), status), h('div', { class: 'card' }, form)));
  await render();
}

// ---- system ---------------------------------------------------------------------------

async function systemView() {
  const body = h('div', { class: 'grid' });
  setView(h('h1', {}, 'System'), body);
  const render = async () => {
    const [s, lvl, proxies] = await Promise.all([api('GET', '/system'), api('GET', '/log-level'), api('GET', '/proxies')]);
    const memPct = s.memory.totalBytes ? Math.round((s.memory.usedBytes / s.memory.totalBytes) * 100) : 0;
    const meter = (pct) => h('div', { class: 'meter' }, Object.assign(h('div'), { style: `width:${Math.min(100, pct)}%` }));
    const levelSel = h('select', { id: 'log-level' }, ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => h('option', { value: l, selected: l === lvl.level }, l)));
    levelSel.addEventListener('change', async () => void (await api('PUT', '/log-level', { level: levelSel.value })));
    body.replaceChildren(
      h('div', { class: 'card', dataset: { testid: 'system' } }, h('h2', {}, 'Box'), kv([
        ['CPU temperature', s.cpuTempC === null ? '—' : `${s.cpuTempC.toFixed(1)} °C`],
        ['Load (1/5/15 min)', s.load.join(' / ')],
        ['CPU', s.cpuPercent === null ? '—' : `${s.cpuPercent}% of ${s.cores} cores`],
        ['Memory', h('div', {}, `${fmtBytes(s.memory.usedBytes)} of ${fmtBytes(s.memory.totalBytes)}`, meter(memPct))],
        ...s.disks.map((d) => [`Disk ${d.mount}`, h('div', {}, `${fmtBytes(d.usedBytes)} of ${fmtBytes(d.sizeBytes)}`, meter(d.usePercent))]),
        ['Uptime', fmtDur(s.uptimeS)],
        ['duocell up', fmtDur(s.processUptimeS)],
        ['duocell memory', fmtBytes(s.rssBytes)],
      ])),
      h('div', { class: 'card' }, h('h2', {}, 'Concentrators'), proxies.length === 0 ? h('p', { class: 'muted' }, 'none') : kv(proxies.map((p) => [`${p.id} (${p.protocol})`, `${p.address}:${p.port} · ${p.healthy ? 'healthy' : 'unreachable'}${p.rttMs !== undefined ? ` · ${p.rttMs} ms` : ''}`]))),
      h('div', { class: 'card' }, h('h2', {}, 'Logging'), h('div', { class: 'row' }, h('label', { for: 'log-level' }, 'Log level'), levelSel)),
    );
  };
  await render();
  every(5000, () => void render().catch(() => {}));
}

// ---- proxies (candidates, health, the list editor) ------------------------------------

async function proxiesView() {
  const body = h('tbody', { id: 'proxies-body' });
  const msg = alertBox();
  const editor = h('textarea', { id: 'proxies-json', rows: 14, spellcheck: false, style: 'width:100%;font-family:monospace' });
  const editable = (p) => {
    const o = { name: p.name ?? p.id, address: p.address, port: p.port, protocol: p.protocol, type: p.type, location: p.location, priority: p.priority, weight: p.weight, enabled: p.enabled };
    if (p.socks5) o.socks5 = p.socks5;
    if (p.apps?.length) o.apps = p.apps;
    if (p.policies?.length) o.policies = p.policies;
    return o;
  };
  const render = async (fillEditor) => {
    const list = await api('GET', '/proxies');
    body.replaceChildren(
      ...list.map((p) =>
        h('tr', { dataset: { id: p.id } },
          h('td', {}, p.name ?? p.id, h('div', { class: 'sub' }, `${p.type ?? 'off-path'} · ${p.location || '—'}`)),
          h('td', {}, `${p.address}:${p.port}`, h('div', { class: 'sub' }, p.protocol + (p.socks5 ? ` · socks5 ${p.socks5}` : ''))),
          h('td', { class: 'num' }, String(p.priority), h('div', { class: 'sub' }, `weight ${p.weight ?? 1}`)),
          h('td', {}, p.enabled === false ? 'disabled' : p.healthy ? 'healthy' : 'DOWN', p.lastError ? h('div', { class: 'sub', title: p.lastError }, p.lastError.slice(0, 60)) : ''),
          h('td', { class: 'num' }, p.rttMs === undefined ? '—' : `${p.rttMs} ms`),
          h('td', { class: 'num' }, String(p.sessions ?? 0)),
          h('td', {}, (p.apps ?? []).map((a) => `${a.name} (${[...(a.ports ?? []), ...(a.prefixes ?? [])].join(' ') || 'any'})`).join(', ') || 'all'),
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
    let list;
    try {
      list = JSON.parse(editor.value);
    } catch (e) {
      return showAlert(msg, 'error', `Not JSON: ${e.message}`);
    }
    try {
      await api('PUT', '/proxies', { proxies: list });
      showAlert(msg, 'ok', 'Saved.');
      await render(true);
    } catch (e) {
      showAlert(msg, 'error', `${e.code}: ${e.message}`);
    }
  });
  setView(
    h('h1', {}, 'Proxies'),
    h('table', { id: 'proxies' },
      h('thead', {}, h('tr', {}, ['Name', 'Endpoint', 'Priority', 'Health', 'RTT', 'Sessions', 'Applications', 'Policies'].map((t) => h('th', {}, t)))),
      body),
    h('div', { class: 'card' }, form),
  );
  await render(true);
  every(2000, () => void render(false).catch(() => {}));
}

// ---- router -------------------------------------------------------------------------------

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

async function route() {
  if (!state.loggedIn) return;
  const name = location.hash.replace(/^#\//, '') || 'dashboard';
  const fn = ROUTES[name] ?? dashboardView;
  for (const a of nav.querySelectorAll('a')) a.classList.toggle('active', a.getAttribute('href') === `#/${name}`);
  try {
    await fn();
  } catch (e) {
    if (state.loggedIn) setView(h('div', { class: 'alert error' }, e.message));
  }
}

window.addEventListener('hashchange', () => void route());
window.addEventListener('resize', () => state.chart?.draw());
boot().catch((e) => setView(h('div', { class: 'alert error' }, `Cannot reach the box: ${e.message}`)));

// @ts-check
// The box: temperature, load, memory, disks, uptimes; the concentrators; the log level.
import { api } from '../lib/api.js';
import { h, kv, setView } from '../lib/dom.js';
import { fmtBytes, fmtDur } from '../lib/format.js';

/** @typedef {import('../types.js').SystemView} SystemView */
/** @typedef {import('../types.js').ProxyView} ProxyView */

export async function systemView() {
  const body = h('div', { class: 'grid' });
  const m = setView(h('h1', {}, 'System'), body);
  const render = async () => {
    const [s, lvl, proxies] = /** @type {[SystemView, { level: string }, ProxyView[]]} */ (await Promise.all([api('GET', '/system'), api('GET', '/log-level'), api('GET', '/proxies')]));
    const memPct = s.memory.totalBytes ? Math.round((s.memory.usedBytes / s.memory.totalBytes) * 100) : 0;
    /** @param {number} pct */
    const meter = (pct) => h('div', { class: 'meter' }, Object.assign(h('div'), { style: `width:${Math.min(100, pct)}%` }));
    const levelSel = h('select', { id: 'log-level' }, ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => h('option', { value: l, selected: l === lvl.level }, l)));
    levelSel.addEventListener('change', async () => void (await api('PUT', '/log-level', { level: levelSel.value })));
    body.replaceChildren(
      h('div', { class: 'card', dataset: { testid: 'system' } }, h('h2', {}, 'Box'), kv([
        ['CPU temperature', s.cpuTempC === null ? '—' : `${s.cpuTempC.toFixed(1)} °C`],
        ['Load (1/5/15 min)', s.load.join(' / ')],
        ['CPU', s.cpuPercent === null ? '—' : `${s.cpuPercent}% of ${s.cores} cores`],
        ['Memory', h('div', {}, `${fmtBytes(s.memory.usedBytes)} of ${fmtBytes(s.memory.totalBytes)}`, meter(memPct))],
        ...s.disks.map((d) => /** @type {[string, HTMLElement]} */ ([`Disk ${d.mount}`, h('div', {}, `${fmtBytes(d.usedBytes)} of ${fmtBytes(d.sizeBytes)}`, meter(d.usePercent))])),
        ['Uptime', fmtDur(s.uptimeS)],
        ['duocell up', fmtDur(s.processUptimeS)],
        ['duocell memory', fmtBytes(s.rssBytes)],
      ])),
      h('div', { class: 'card' }, h('h2', {}, 'Concentrators'), proxies.length === 0 ? h('p', { class: 'muted' }, 'none') : kv(proxies.map((p) => [`${p.id} (${p.protocol})`, `${p.address}:${p.port} · ${p.healthy ? 'healthy' : 'unreachable'}${p.rttMs !== undefined ? ` · ${p.rttMs} ms` : ''}`]))),
      h('div', { class: 'card' }, h('h2', {}, 'Logging'), h('div', { class: 'row' }, h('label', { for: 'log-level' }, 'Log level'), levelSel)),
    );
  };
  await render();
  m.every(5000, () => void render().catch(() => {}));
}

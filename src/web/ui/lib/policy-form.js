// @ts-check
// The policy form, shared by the cell default (Policy) and a subscriber's own policy
// (Subscribers): limits, allowed access and networks, MPTCP steering, and — when the box steers
// UDP — the UDP steering mode and the QUIC option. Server validation messages go beside their
// inputs (by the JSON path the API names).
import { h } from './dom.js';
import { impliedUdpMode, QUIC_OPTIONS, UDP_MODES } from './udp.js';

/** The MPTCP steering modes the form offers (the API's enum; checked by a unit test). */
export const STEERING_MODES = ['ratio', 'active-standby', 'priority', 'smallest-delay'];

/** @typedef {import('../types.js').PagePolicy} PagePolicy */
/** @typedef {import('../types.js').AccessType} AccessType */
/** @typedef {import('../types.js').UdpMode} UdpMode */
/** @typedef {import('../types.js').QuicOption} QuicOption */
/** @typedef {import('./api.js').FieldError} FieldError */

/**
 * @param {string} path the field's JSON path (also its input's name)
 * @param {string} label
 * @param {HTMLElement} input
 * @param {string} [hint]
 */
export function field(path, label, input, hint) {
  return h('div', { class: 'row', dataset: { field: path } }, h('label', { for: `f-${path}` }, label), input, hint && h('span', { class: 'sub' }, hint), h('p', { class: 'field-error', dataset: { errorFor: path }, hidden: true }));
}

/**
 * @param {string} path
 * @param {number} value
 * @param {number} min
 * @param {number} max
 */
function num(path, value, min, max) {
  return h('input', { id: `f-${path}`, name: path, type: 'number', value: String(value), min: String(min), max: String(max), step: '1' });
}

/**
 * @param {string} path
 * @param {readonly string[]} options
 * @param {string} selected
 */
function select(path, options, selected) {
  return h('select', { id: `f-${path}`, name: path }, options.map((m) => h('option', { value: m, selected: selected === m }, m)));
}

/**
 * The policy's fields, named `${prefix}.limits.maxSessions` and so on.
 * @param {string} prefix
 * @param {PagePolicy} p
 * @param {{ udp?: boolean }} [opts] udp: the box has UDP steering (show its mode and the QUIC option)
 */
export function policyFieldset(prefix, p, opts = {}) {
  /** @param {string} s */
  const id = (s) => `${prefix}.${s}`;
  /** @param {AccessType} a */
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
      field(id('steering.mode'), 'Steering mode', select(id('steering.mode'), STEERING_MODES, p.steering.mode)),
      field(id('steering.primary'), 'Primary path', select(id('steering.primary'), ['wlan', 'cellular'], p.steering.primary)),
      field(id('steering.ratio.cellular'), 'Cellular share %', num(id('steering.ratio.cellular'), p.steering.ratio.cellular, 0, 100)),
      field(id('steering.ratio.wlan'), 'WLAN share %', num(id('steering.ratio.wlan'), p.steering.ratio.wlan, 0, 100)),
    ),
    h('p', { class: 'field-error', dataset: { errorFor: id('steering.ratio') }, hidden: true }),
    opts.udp === true &&
      h('div', { class: 'inline', dataset: { udp: prefix } },
        field(id('udpMode'), 'UDP steering mode', select(id('udpMode'), UDP_MODES, p.udpMode ?? impliedUdpMode(p.steering.mode)), 'each UDP flow on one uplink; primary and shares as above'),
        field(id('quic'), 'QUIC (UDP/443)', select(id('quic'), QUIC_OPTIONS, p.quic ?? 'allow'), 'block: browsers fall back to TCP at once, pooled by MPTCP'),
      ),
  );
}

/**
 * Read a policy back from the form; numbers that do not parse are sent as they are typed (the
 * server names the field). The UDP fields are sent only when the form shows them.
 * @param {HTMLFormElement} form
 * @param {string} prefix
 * @returns {PagePolicy}
 */
export function readPolicy(form, prefix) {
  const fd = new FormData(form);
  /** @param {string} k */
  const v = (k) => fd.get(`${prefix}.${k}`);
  /** @param {string} k @returns {number} */
  const n = (k) => {
    const s = String(v(k) ?? '').trim();
    // Not a number: sent as typed, so the server's message names the field.
    return /** @type {number} */ (/** @type {unknown} */ (/^-?\d+$/.test(s) ? Number(s) : s));
  };
  /** @type {PagePolicy} */
  const out = {
    limits: { maxSessions: n('limits.maxSessions'), maxSubflows: n('limits.maxSubflows'), maxSessionsPerServer: n('limits.maxSessionsPerServer') },
    allowedAccess: /** @type {AccessType[]} */ (fd.getAll(`${prefix}.allowedAccess`).map(String)),
    allowedNetworks: String(v('allowedNetworks') ?? '').split(/[\s,]+/).filter(Boolean),
    steering: {
      mode: /** @type {PagePolicy['steering']['mode']} */ (String(v('steering.mode'))),
      primary: /** @type {AccessType} */ (String(v('steering.primary'))),
      ratio: { cellular: n('steering.ratio.cellular'), wlan: n('steering.ratio.wlan') },
    },
  };
  const udpMode = v('udpMode');
  const quic = v('quic');
  if (udpMode !== null) out.udpMode = /** @type {UdpMode} */ (String(udpMode));
  if (quic !== null) out.quic = /** @type {QuicOption} */ (String(quic));
  return out;
}

/** @param {HTMLFormElement} form */
export function clearErrors(form) {
  for (const el of form.querySelectorAll('.field-error')) {
    if (!(el instanceof HTMLElement)) continue;
    el.hidden = true;
    el.textContent = '';
  }
  for (const el of form.querySelectorAll('.invalid')) el.classList.remove('invalid');
}

/**
 * Put each server validation message beside its input (or the nearest enclosing field).
 * @param {HTMLFormElement} form
 * @param {FieldError[]} fields
 */
export function showFieldErrors(form, fields) {
  for (const f of fields) {
    let path = f.path;
    /** @type {HTMLElement | null} */
    let slot = null;
    while (path && !(slot = form.querySelector(`[data-error-for="${CSS.escape(path)}"]`))) path = path.includes('.') ? path.slice(0, path.lastIndexOf('.')) : '';
    if (!slot) continue;
    slot.hidden = false;
    slot.textContent = slot.textContent ? `${slot.textContent}; ${f.message}` : f.message;
    const input = form.querySelector(`[name="${CSS.escape(path)}"]`);
    input?.classList.add('invalid');
  }
}

/**
 * A policy's steering in one line (the subscribers table).
 * @param {PagePolicy} p
 */
export function steeringSummary(p) {
  return p.steering.mode === 'ratio' ? `ratio ${p.steering.ratio.cellular}:${p.steering.ratio.wlan}` : `${p.steering.mode} (${p.steering.primary})`;
}

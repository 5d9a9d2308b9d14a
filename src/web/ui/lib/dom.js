// @ts-check
// DOM helpers: building elements, key/value lists, alerts, and mounting a view into <main>.
import { remount } from './store.js';

/** @typedef {import('./store.js').Mount} Mount */

/**
 * Attributes of h(): `class`, `dataset`, `on…` listeners, DOM properties (value, checked, …)
 * or plain attributes. undefined, null and false leave the attribute out.
 * @typedef {Record<string, unknown>} Attrs
 */

/** @typedef {Node | string | number | false | null | undefined} Leaf */
/** @typedef {Leaf | Leaf[]} Child */

/**
 * Build an element: h('div', {class: 'x', dataset: {a: '1'}}, child, 'text').
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attrs} [attrs]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = String(v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), /** @type {EventListener} */ (v));
    else if (k in el && k !== 'list' && k !== 'form') /** @type {Record<string, unknown>} */ (/** @type {unknown} */ (el))[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/**
 * An element the page's HTML must have.
 * @param {string} id
 * @returns {HTMLElement}
 */
export function byId(id) {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`the page has no #${id}`);
  return el;
}

/**
 * Replace what <main> shows; the previous view's timers and listeners end first.
 * @param {...Node} nodes
 * @returns {Mount} where the new view registers its timers and listeners
 */
export function setView(...nodes) {
  const m = remount();
  byId('view').replaceChildren(...nodes);
  return m;
}

/** @param {number} n signal bars, 0 … 4 */
export function bars(n) {
  return h('span', { class: 'bars', title: `${n} of 4`, dataset: { bars: String(n) } }, [1, 2, 3, 4].map((i) => h('i', { class: i <= n ? 'on' : '' })));
}

/** @param {Array<[string, Child]>} pairs */
export function kv(pairs) {
  return h('dl', { class: 'kv' }, pairs.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

export function alertBox() {
  return h('div', { class: 'alert', role: 'alert', hidden: true });
}

/**
 * @param {HTMLElement} box
 * @param {'ok' | 'error'} kind
 * @param {string} text
 */
export function showAlert(box, kind, text) {
  box.className = `alert ${kind}`;
  box.textContent = text;
  box.hidden = false;
}

/**
 * The message of anything thrown.
 * @param {unknown} e
 */
export function messageOf(e) {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Fill box with draw()'s node now and every ms milliseconds while the view is mounted; a failure
 * shows its message in the box instead.
 * @param {Mount} mount
 * @param {HTMLElement} box
 * @param {number} ms
 * @param {() => Promise<Node>} draw
 */
export async function refreshEvery(mount, box, ms, draw) {
  const render = async () => {
    try {
      box.replaceChildren(await draw());
    } catch (e) {
      box.replaceChildren(h('div', { class: 'alert error' }, messageOf(e)));
    }
  };
  await render();
  mount.every(ms, render);
}

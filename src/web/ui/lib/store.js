// @ts-check
// The page's state, in three parts:
//   session: who is logged in (the CSRF token the API wants on every mutating call)
//   live:    what the event stream delivered last (paths, sessions, throughput history)
//   mounted: what the view on screen holds (timers, listeners), ended when another view mounts
// Views never call each other: they subscribe to live topics while mounted.

/** @typedef {import('../types.js').ThroughputSample} ThroughputSample */
/** @typedef {import('../types.js').PathWithRate} PathWithRate */
/** @typedef {import('../types.js').SessionsPayload} SessionsPayload */

export const session = {
  csrf: '',
  loggedIn: false,
};

export const live = {
  /** @type {ThroughputSample[]} */
  history: [],
  /** @type {PathWithRate[]} */
  paths: [],
  /** Median RTT per path, as the paths arrived (the RTT charts on the path cards). @type {Record<string, number[]>} */
  rttHistory: {},
  /** @type {SessionsPayload | null} */
  sessions: null,
};

/**
 * @typedef {{ throughput: ThroughputSample, paths: PathWithRate[], sessions: SessionsPayload }} Topics
 */

/** @type {{ [K in keyof Topics]: Set<(v: Topics[K]) => void> }} */
const listeners = { throughput: new Set(), paths: new Set(), sessions: new Set() };

/**
 * Store what arrived on a topic and tell the mounted view.
 * @template {keyof Topics} K
 * @param {K} topic
 * @param {Topics[K]} value
 */
export function publish(topic, value) {
  if (topic === 'throughput') {
    live.history.push(/** @type {ThroughputSample} */ (value));
    if (live.history.length > 400) live.history.shift();
  } else if (topic === 'paths') {
    live.paths = /** @type {PathWithRate[]} */ (value);
    recordRtt(live.paths);
  } else {
    live.sessions = /** @type {SessionsPayload} */ (value);
  }
  for (const fn of listeners[topic]) fn(value);
}

/**
 * Remember each path's median RTT as the paths arrive (for the RTT chart on its card).
 * @param {PathWithRate[]} paths
 */
export function recordRtt(paths) {
  for (const p of paths) {
    const v = p.measure?.rttMedianMs;
    if (v === undefined) continue;
    const hist = (live.rttHistory[p.name] ??= []);
    hist.push(v);
    if (hist.length > 120) hist.shift();
  }
}

/** The sessions as a list, whichever shape the server sent. @param {SessionsPayload} s */
export function sessionList(s) {
  return Array.isArray(s) ? s : s.sessions;
}

/** @param {SessionsPayload} s */
export function sessionCount(s) {
  return Array.isArray(s) ? s.length : s.count;
}

/** @type {Array<() => void>} */
let disposers = [];

/**
 * While the current view is mounted, call fn with each value on a topic.
 * @template {keyof Topics} K
 * @param {K} topic
 * @param {(v: Topics[K]) => void} fn
 */
export function onTopic(topic, fn) {
  const set = /** @type {Set<(v: Topics[K]) => void>} */ (listeners[topic]);
  set.add(fn);
  disposers.push(() => set.delete(fn));
}

/**
 * While the current view is mounted, call fn every ms milliseconds.
 * @param {number} ms
 * @param {() => unknown} fn
 */
export function every(ms, fn) {
  const t = setInterval(fn, ms);
  disposers.push(() => clearInterval(t));
}

/**
 * While the current view is mounted, listen to a DOM event outside it (e.g. window resize).
 * @param {EventTarget} target
 * @param {string} type
 * @param {EventListener} fn
 */
export function listen(target, type, fn) {
  target.addEventListener(type, fn);
  disposers.push(() => target.removeEventListener(type, fn));
}

/** End the mounted view's timers and listeners (dom.js setView does, before the next view). */
export function unmount() {
  const d = disposers;
  disposers = [];
  for (const fn of d) fn();
}

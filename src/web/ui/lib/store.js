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
/** Counts mounts: a view that finishes loading after another view mounted registers nothing. */
let generation = 0;

/**
 * What the view on screen holds while it is mounted. A view gets one from setView() (dom.js);
 * once another view mounts, its timers and listeners end, and any it registers later (an old
 * view still awaiting the API) end at once.
 */
export class Mount {
  /** @param {number} g */
  constructor(g) {
    this.g = g;
  }

  /** Still the view on screen. */
  get current() {
    return this.g === generation;
  }

  /** @param {() => void} dispose */
  own(dispose) {
    if (this.current) disposers.push(dispose);
    else dispose();
  }

  /**
   * Call fn with each value on a topic.
   * @template {keyof Topics} K
   * @param {K} topic
   * @param {(v: Topics[K]) => void} fn
   */
  onTopic(topic, fn) {
    const set = /** @type {Set<(v: Topics[K]) => void>} */ (listeners[topic]);
    set.add(fn);
    this.own(() => set.delete(fn));
  }

  /**
   * Call fn every ms milliseconds.
   * @param {number} ms
   * @param {() => unknown} fn
   */
  every(ms, fn) {
    const t = setInterval(fn, ms);
    this.own(() => clearInterval(t));
  }

  /**
   * Listen to a DOM event outside the view (e.g. window resize).
   * @param {EventTarget} target
   * @param {string} type
   * @param {EventListener} fn
   */
  listen(target, type, fn) {
    target.addEventListener(type, fn);
    this.own(() => target.removeEventListener(type, fn));
  }
}

/** End the mounted view's timers and listeners, and start a new mount (dom.js setView). */
export function remount() {
  const d = disposers;
  disposers = [];
  generation++;
  for (const fn of d) fn();
  return new Mount(generation);
}

// @ts-check
// A hand-drawn throughput chart on a <canvas>: per-path and total bit rate (down + up) over
// the last `windowS` seconds. No library: the page is served from the box, without a CDN.

/** @type {Record<string, string>} */
const COLORS = { total: '#1d2733', cellular: '#e8772e', wlan: '#2f7dd1' };

/** @typedef {import('./types.js').ThroughputSample} ThroughputSample */
/** @typedef {{ t: number, total: number, paths: Record<string, number> }} Point */

export class ThroughputChart {
  /** @param {HTMLCanvasElement} canvas */
  constructor(canvas, windowS = 300) {
    this.canvas = canvas;
    this.windowS = windowS;
    /** @type {Point[]} */
    this.samples = [];
    this.raf = 0;
    /** path name → access type, for the line colour. @type {Record<string, string>} */
    this.access = {};
  }

  /**
   * Add one sample as sent by the server ({t, total:{txBps,rxBps}, paths:{name:{txBps,rxBps}}}).
   * @param {ThroughputSample} s
   */
  push(s) {
    /** @type {Record<string, number>} */
    const paths = {};
    for (const [name, r] of Object.entries(s.paths ?? {})) {
      paths[name] = (r.txBps ?? 0) + (r.rxBps ?? 0);
      if (r.access) this.access[name] = r.access;
    }
    this.samples.push({ t: s.t, total: (s.total?.txBps ?? 0) + (s.total?.rxBps ?? 0), paths });
    const cut = s.t - this.windowS * 1000;
    while (this.samples.length > 0 && this.samples[0].t < cut) this.samples.shift();
    this.canvas.dataset.samples = String(this.samples.length);
    this.canvas.dataset.lastT = String(s.t);
    this.schedule();
  }

  schedule() {
    if (this.raf !== 0) return;
    this.raf = requestAnimationFrame(() => {
      this.raf = 0;
      this.draw();
    });
  }

  draw() {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth;
    const h = c.clientHeight;
    if (w === 0 || h === 0) return;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    const g = c.getContext('2d');
    if (g === null) return;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const left = 56;
    const right = 10;
    const top = 10;
    const bottom = 24;
    const pw = w - left - right;
    const ph = h - top - bottom;
    const now = this.samples.length > 0 ? this.samples[this.samples.length - 1].t : Date.now();
    // The window grows with the data (from 10 s) up to windowS, so a fresh page shows a line, not a dot.
    const span = this.samples.length > 1 ? (now - this.samples[0].t) / 1000 : 0;
    const win = Math.min(this.windowS, Math.max(10, Math.ceil(span / 10) * 10));
    const t0 = now - win * 1000;
    let max = 1e6;
    for (const s of this.samples) max = Math.max(max, s.total);
    const scale = niceMax(max);
    // Grid and labels.
    g.font = '11px system-ui, sans-serif';
    g.fillStyle = '#6b7785';
    g.strokeStyle = '#e6ebf0';
    g.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const y = top + ph - (ph * i) / 4;
      g.beginPath();
      g.moveTo(left, y);
      g.lineTo(left + pw, y);
      g.stroke();
      g.textAlign = 'right';
      g.textBaseline = 'middle';
      g.fillText(`${fmtMbps((scale * i) / 4)}`, left - 6, y);
    }
    g.textAlign = 'center';
    g.textBaseline = 'top';
    const step = [5, 10, 15, 30, 60, 120].find((st) => win / st <= 6) ?? 60;
    for (let m = 0; m <= win; m += step) {
      const x = left + pw - (pw * m) / win;
      g.fillText(m === 0 ? 'now' : m % 60 === 0 ? `-${m / 60} min` : `-${m} s`, x, top + ph + 6);
    }
    g.save();
    g.translate(12, top + ph / 2);
    g.rotate(-Math.PI / 2);
    g.textAlign = 'center';
    g.fillText('Mbit/s', 0, 0);
    g.restore();
    // Lines: each path, then the total on top.
    /** @type {Set<string>} */
    const names = new Set();
    for (const s of this.samples) for (const k of Object.keys(s.paths)) names.add(k);
    /**
     * @param {(s: Point) => number | undefined} pick
     * @param {string} color
     * @param {number} width
     */
    const line = (pick, color, width) => {
      g.strokeStyle = color;
      g.lineWidth = width;
      g.beginPath();
      let first = true;
      for (const s of this.samples) {
        const v = pick(s);
        if (v === undefined) continue;
        if (s.t < t0) continue;
        const x = left + ((s.t - t0) / (win * 1000)) * pw;
        const y = top + ph - (Math.min(v, scale) / scale) * ph;
        if (first) g.moveTo(x, y);
        else g.lineTo(x, y);
        first = false;
      }
      g.stroke();
    };
    for (const n of names) line((s) => s.paths[n], COLORS[this.access[n] ?? n] ?? '#888', 1.6);
    line((s) => s.total, COLORS.total, 2.2);
  }
}

/** @param {number} v */
function niceMax(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/** @param {number} bps */
function fmtMbps(bps) {
  const m = bps / 1e6;
  return m >= 10 ? m.toFixed(0) : m.toFixed(1);
}

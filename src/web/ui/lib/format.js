// @ts-check
// Numbers as the page prints them.

/** @param {number} b bits per second */
export const fmtBps = (b) => (b >= 1e9 ? `${(b / 1e9).toFixed(2)} Gbit/s` : b >= 1e6 ? `${(b / 1e6).toFixed(1)} Mbit/s` : `${(b / 1e3).toFixed(0)} kbit/s`);

/** @param {number} b bytes */
export const fmtBytes = (b) => {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (b >= 1024 && i < u.length - 1) {
    b /= 1024;
    i++;
  }
  return `${b.toFixed(i === 0 ? 0 : 1)} ${u[i]}`;
};

/** @param {number} s seconds */
export const fmtDur = (s) => {
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const mm = Math.floor((s % 3600) / 60);
  return d > 0 ? `${d} d ${hh} h` : hh > 0 ? `${hh} h ${mm} min` : `${mm} min ${Math.floor(s % 60)} s`;
};

/**
 * A value with its unit, or a dash when there is none.
 * @param {string | number | null | undefined} v
 * @param {string} [unit]
 */
export const dash = (v, unit = '') => (v === undefined || v === null ? '—' : `${v}${unit}`);

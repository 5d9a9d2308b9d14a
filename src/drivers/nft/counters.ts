/**
 * The counters of one nft table from `nft -j list table FAMILY NAME`: each named counter's
 * packets, and each set whose elements carry a counter (`update @set { key counter }`) as
 * element → packets. Pure: no I/O. Anything that is not nft's JSON shape is left out.
 *
 *   {"nftables": [ {"counter": {"name": "capped", "packets": 3, …}},
 *                  {"set": {"name": "capdrops4", "elem": [{"elem": {"val": "192.0.2.9", "counter": {"packets": 3, …}}}]}} ]}
 */
export interface TableCounters {
  counters: Record<string, number>;
  sets: Record<string, Record<string, number>>;
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const count = (x: unknown): number | undefined => {
  const n = isObj(x) ? x.packets : undefined;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
};

export function parseTableCounters(text: string): TableCounters {
  const out: TableCounters = { counters: Object.create(null) as Record<string, number>, sets: Object.create(null) as Record<string, Record<string, number>> };
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return out;
  }
  const items = isObj(doc) && Array.isArray(doc.nftables) ? (doc.nftables as unknown[]) : [];
  for (const it of items) {
    if (!isObj(it)) continue;
    if (isObj(it.counter) && typeof it.counter.name === 'string') {
      const n = count(it.counter);
      if (n !== undefined) out.counters[it.counter.name] = n;
    }
    if (isObj(it.set) && typeof it.set.name === 'string' && Array.isArray(it.set.elem)) {
      const per: Record<string, number> = Object.create(null) as Record<string, number>;
      for (const e of it.set.elem as unknown[]) {
        const el = isObj(e) && isObj(e.elem) ? e.elem : undefined;
        const n = count(el?.counter);
        if (el !== undefined && (typeof el.val === 'string' || typeof el.val === 'number') && n !== undefined) per[String(el.val)] = n;
      }
      out.sets[it.set.name] = per;
    }
  }
  return out;
}

import t from 'tap';
import { fuzz } from '../../bench/fuzz/nft-counters.js';
import { parseTableCounters } from '../../src/drivers/nft/counters.js';

t.test('nft table counters: named counters and per-element set counters (nft 1.0.6 JSON)', async (t) => {
  // as `nft -j list table inet duocell_udp` printed it in a namespace (trimmed: chains and rules left out)
  const text = '{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "inet", "name": "t", "handle": 1}}, {"counter": {"family": "inet", "name": "capped", "table": "t", "handle": 2, "packets": 3, "bytes": 93}}, {"set": {"family": "inet", "name": "flows4", "table": "t", "type": "ipv4_addr", "handle": 3, "size": 65535, "elem": [{"elem": {"val": "127.0.0.1", "ct count": {"val": 0, "inv": true}}}]}}, {"set": {"family": "inet", "name": "capdrops4", "table": "t", "type": "ipv4_addr", "handle": 4, "size": 65536, "elem": [{"elem": {"val": "127.0.0.1", "counter": {"packets": 3, "bytes": 93}}}]}}]}';
  const c = parseTableCounters(text);
  t.same({ ...c.counters }, { capped: 3 });
  t.same({ ...c.sets.capdrops4 }, { '127.0.0.1': 3 });
  t.same({ ...c.sets.flows4 }, {}, 'a set without counters: no counts');
  t.same(parseTableCounters(''), { counters: {}, sets: {} }, 'no table: nothing');
  t.same({ ...parseTableCounters('{"nftables":[{"counter":{"name":"x","packets":-1}},{"counter":{"name":"y","packets":"7"}}]}').counters }, {}, 'a negative or non-numeric count is left out');
  t.equal(parseTableCounters('{"nftables":[{"counter":{"name":"__proto__","packets":1}}]}').counters.__proto__, 1, 'names are plain keys');
});

t.test('nft table counters survive 20k real-shaped, mutated, mistyped, truncated and noisy documents', async (t) => {
  const r = fuzz(20_000, 7);
  t.ok(r.exact > 2000, `untouched documents read exactly (${r.exact})`);
  t.ok(r.partial > 10_000, `broken ones never throw (${r.partial})`);
});

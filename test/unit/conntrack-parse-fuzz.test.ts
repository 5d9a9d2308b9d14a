import t from 'tap';
import { fuzz } from '../../bench/fuzz/conntrack.js';
import { parseConntrackLine } from '../../src/drivers/conntrack/parse.js';

t.test('conntrack line: the original direction, both directions counted, the mark', async (t) => {
  const l = 'udp      17 29 src=192.168.77.2 dst=10.182.9.1 sport=40000 dport=7100 packets=5 bytes=460 [UNREPLIED] src=10.182.9.1 dst=10.182.2.2 sport=7100 dport=40000 packets=2 bytes=100 mark=512 use=1';
  t.same(parseConntrackLine(l), { proto: 'udp', src: '192.168.77.2', dst: '10.182.9.1', sport: 40000, dport: 7100, packets: 7, bytes: 560, mark: 512 });
  t.same(parseConntrackLine('udp 17 29 src=fd00::2 dst=fd01::1 sport=1 dport=443 src=fd01::1 dst=fd02::2 sport=443 dport=1 mark=256 use=1'), { proto: 'udp', src: 'fd00::2', dst: 'fd01::1', sport: 1, dport: 443, packets: 0, bytes: 0, mark: 256 }, 'without accounting: 0 counters');
  t.equal(parseConntrackLine('conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.'), undefined, 'the summary line');
  t.equal(parseConntrackLine(''), undefined);
  t.equal(parseConntrackLine('udp 17 29 src=1.2.3.4 dst=5.6.7.8 sport=70000 dport=1'), undefined, 'port out of range');
  t.equal(parseConntrackLine('udp 17 29 src=1.2.3.4 dst=5.6.7.8 sport=1 dport=1 packets=-1'), undefined, 'negative counter');
});

t.test('conntrack parser survives 50k real-shaped, mutated, truncated and noisy lines', async (t) => {
  const res = fuzz(50_000, 3);
  t.ok(res.parsed > 10_000, `real-shaped lines parse (${res.parsed})`);
  t.ok(res.refused > 10_000, `broken ones are refused (${res.refused})`);
});

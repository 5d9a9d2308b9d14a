// The join DNAT (services/intercept/join.ts, wiring/pm.ts joinDnatFor): which MP_JOIN SYNs the
// cell rewrites to the radio's address, and where it does not apply at all.
import t from 'tap';
import { buildJoinDnat } from '../../src/services/intercept/join.js';
import { joinDnatFor } from '../../src/wiring/pm.js';
import type { BoardProfile } from '../../src/core/board.js';

const ifs = {
  ran0: [{ address: '10.71.1.1', family: 'IPv4', cidr: '10.71.1.1/24' }, { address: 'fe80::1', family: 'IPv6', cidr: 'fe80::1/64' }],
  wap0: [{ address: '10.71.2.1', family: 'IPv4', cidr: '10.71.2.1/24' }, { address: 'fd00:2::1', family: 'IPv6', cidr: 'fd00:2::1/64' }],
} as unknown as ReturnType<Parameters<typeof joinDnatFor>[2]>;
const cell = (extra: Partial<BoardProfile> = {}): BoardProfile => ({
  name: 'c', preset: 'cell', uplinks: [], lan: { interfaces: ['ran0', 'wap0'] }, web: { listen: [] }, accessNetworks: [],
  listeners: [
    { kind: 'explicit', host: '10.71.0.1', port: 9000, mptcp: true, target: '10.71.3.2:8000' },
    { kind: 'explicit', host: '::', port: 9001, mptcp: true, target: '10.71.3.2:8000' },
    { kind: 'explicit', host: '10.71.0.1', port: 9002, mptcp: false, target: '10.71.3.2:8000' },
    { kind: 'transparent', host: '::', port: 8443, mptcp: true },
  ],
  joinDnat: true,
  ...extra,
});

t.test('on a cell with the userspace PM: explicit MPTCP listeners, per radio and family; only MP_JOIN SYNs', async (t) => {
  const c = joinDnatFor(cell(), 'userspace', () => ifs);
  t.ok(c !== undefined);
  t.same(c!.radios, [{ name: 'ran0', families: [4] }, { name: 'wap0', families: [4, 6] }], 'a link-local address is no address to redirect to');
  t.same(c!.listeners, [{ host: '10.71.0.1', port: 9000 }, { host: '::', port: 9001 }], 'not the plain-TCP one, not the transparent one');
  const text = buildJoinDnat(c!)!;
  t.match(text, /type nat hook prerouting priority dstnat/);
  t.match(text, /iifname \{ "ran0", "wap0" \} meta nfproto ipv4 ip daddr 10\.71\.0\.1 tcp dport 9000 tcp flags & \(syn \| ack\) == syn tcp option mptcp subtype 1 redirect/);
  t.match(text, /iifname \{ "ran0", "wap0" \} meta nfproto ipv4 fib daddr type local tcp dport 9001 .*subtype 1 redirect/, 'a wildcard listener: any local address, IPv4');
  t.match(text, /iifname \{ "wap0" \} meta nfproto ipv6 fib daddr type local tcp dport 9001 .*subtype 1 redirect/, 'and IPv6 only where the radio has an address');
  t.notMatch(text, /8443|9002/, 'never the transparent or the plain listener\'s port');
  for (const l of text.split('\n').filter((x) => x.includes('redirect'))) t.match(l, /tcp flags & \(syn \| ack\) == syn tcp option mptcp subtype 1 redirect$/, 'every rule needs a SYN with MP_JOIN');
});

t.test('where it does not apply', async (t) => {
  t.equal(joinDnatFor(cell(), 'kernel', () => ifs), undefined, 'the in-kernel PM');
  t.equal(joinDnatFor(cell({ joinDnat: false }), 'userspace', () => ifs), undefined, 'turned off');
  t.equal(joinDnatFor({ ...cell(), joinDnat: undefined }, 'userspace', () => ifs), undefined, 'off unless turned on (opt-in)');
  t.equal(joinDnatFor(cell({ mueRadioAddresses: true, joinDnat: true }), 'userspace', () => ifs), undefined, 'with mueRadioAddresses');
  t.equal(joinDnatFor(cell({ preset: 'concentrator' }), 'userspace', () => ifs), undefined, 'not a cell');
  t.equal(joinDnatFor(cell({ listeners: [{ kind: 'transparent', host: '::', port: 8443, mptcp: true }] }), 'userspace', () => ifs), undefined, 'transparent listeners only');
  t.equal(joinDnatFor(cell(), 'userspace', () => ({})), undefined, 'radios without addresses');
  t.throws(() => buildJoinDnat({ table: 'Bad-name', radios: [], listeners: [] }), { code: 'DC_CONFIG_INVALID' });
  t.throws(() => buildJoinDnat({ table: 't', radios: [{ name: 'ran0"; drop', families: [4] }], listeners: [] }), { code: 'DC_CONFIG_INVALID' });
});

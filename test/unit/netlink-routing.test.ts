import t from 'tap';
import { desiredRouting } from '../../src/drivers/netlink/uplink-routing.js';

t.test('desired routing of an uplink: table routes per family, one source rule per address', async (t) => {
  const d = desiredRouting({ name: 'wifi', ifindex: 4, table: 202, addresses: ['10.0.2.15', '2001:db8:1::15'], prefixes: ['10.0.2.15/24', '2001:db8:1::15/64', '192.168.9.9/24'], gateway4: '10.0.2.1' });
  t.same(d.routes, [
    { dst: '10.0.2.0/24', table: 202, oif: 4 },
    { dst: '2001:db8:1::/64', table: 202, oif: 4 },
    { dst: '192.168.9.0/24', table: 202, oif: 4 },
    { dst: '0.0.0.0/0', table: 202, oif: 4, gateway: '10.0.2.1' },
    { dst: '::/0', table: 202, oif: 4 },
  ]);
  t.same(d.rules, [
    { src: '10.0.2.15/32', table: 202, priority: 1202 },
    { src: '2001:db8:1::15/128', table: 202, priority: 1202 },
  ]);
  const v4only = desiredRouting({ name: 'cell', ifindex: 5, table: 201, rulePriority: 900, addresses: ['10.64.0.7'], prefixes: ['fd00::7/64'] });
  t.same(v4only.routes, [{ dst: '0.0.0.0/0', table: 201, oif: 5 }], 'no IPv6 routes without an IPv6 address');
  t.same(v4only.rules, [{ src: '10.64.0.7/32', table: 201, priority: 900 }]);
  t.same(desiredRouting({ name: 'x', ifindex: 1, table: 1, addresses: [] }), { routes: [], rules: [] });
});

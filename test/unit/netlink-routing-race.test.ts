import t from 'tap';
import { EventEmitter } from 'node:events';
import { RoutingKeeper } from '../../src/drivers/netlink/uplink-routing.js';
import type { Rtnl } from '../../src/drivers/netlink/rtnetlink.js';
import { DuocellError } from '../../src/core/errors.js';

/**
 * Regression (issue 14, seen when the modem's link went down while the keeper was installing the
 * uplink table): a reconcile whose addRoute fails (ENETDOWN) must reject to its caller only,
 * never leave an unhandled rejection behind (which ends the process).
 */
t.test('a failing reconcile leaves no unhandled rejection', async (t) => {
  const unhandled: unknown[] = [];
  const on = (e: unknown): void => void unhandled.push(e);
  process.on('unhandledRejection', on);
  t.teardown(() => process.off('unhandledRejection', on));
  const fake = Object.assign(new EventEmitter(), {
    link: async () => ({ index: 3, name: 'wwan0', up: true }),
    rules: async () => [],
    routes: async () => [],
    addRule: async () => undefined,
    deleteRule: async () => undefined,
    addRoute: async () => {
      throw new DuocellError('DC_NETLINK_ERRNO', 'RTM_NEWROUTE 10.21.0.0/24 table 21: kernel said errno 100', { origin: 'kernel', errno: 100 });
    },
    deleteRoute: async () => undefined,
  });
  const keeper = new RoutingKeeper(fake as unknown as Rtnl);
  await t.rejects(keeper.set({ name: 'cellular', ifindex: 3, table: 21, addresses: ['10.21.0.2'], prefixes: ['10.21.0.2/24'] }), { code: 'DC_NETLINK_ERRNO' });
  await new Promise((r) => setTimeout(r, 50));
  t.same(unhandled, [], 'no unhandled rejection');
  keeper.close();
});

import t from 'tap';
import { EventEmitter } from 'node:events';
import { RoutingKeeper } from '../../src/drivers/netlink/uplink-routing.js';
import type { Rtnl } from '../../src/drivers/netlink/rtnetlink.js';
import { DuocellError } from '../../src/core/errors.js';

/**
 * Regression (issue 14, seen when the modem's link went down while the keeper was installing the
 * uplink table): a reconcile whose addRoute fails must reject to its caller only, never leave an
 * unhandled rejection or an unhandled 'error' event behind (either ends the process); ENETDOWN
 * (the link went down meanwhile) is not a failure at all.
 */
t.test('a failing reconcile leaves no unhandled rejection', async (t) => {
  const unhandled: unknown[] = [];
  const on = (e: unknown): void => void unhandled.push(e);
  process.on('unhandledRejection', on);
  t.teardown(() => process.off('unhandledRejection', on));
  let errno = 1;
  const fake = Object.assign(new EventEmitter(), {
    link: async () => ({ index: 3, name: 'wwan0', up: true }),
    rules: async () => [],
    routes: async () => [],
    addRule: async () => undefined,
    deleteRule: async () => undefined,
    addRoute: async () => {
      throw new DuocellError('DC_NETLINK_ERRNO', `RTM_NEWROUTE 10.21.0.0/24 table 21: kernel said errno ${errno}`, { origin: 'kernel', errno });
    },
    deleteRoute: async () => undefined,
  });
  const keeper = new RoutingKeeper(fake as unknown as Rtnl);
  await t.rejects(keeper.set({ name: 'cellular', ifindex: 3, table: 21, addresses: ['10.21.0.2'], prefixes: ['10.21.0.2/24'] }), { code: 'DC_NETLINK_ERRNO' });
  // a scheduled reconcile (link came up) that fails: logged, no 'error' listener needed
  fake.emit('link', { op: 'new', link: { index: 3, name: 'wwan0', up: true } });
  await new Promise((r) => setTimeout(r, 80));
  t.same(unhandled, [], 'no unhandled rejection, no unhandled error event');
  // ENETDOWN: the link went down meanwhile; not an error, the next link-up installs the routes
  errno = 100;
  const c = await keeper.set({ name: 'cellular', ifindex: 3, table: 21, addresses: ['10.21.0.2'], prefixes: ['10.21.0.2/24'] });
  t.same(c.added.routes, [], 'nothing added, no failure');
  keeper.close();
});

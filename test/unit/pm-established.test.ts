// The path manager's lookup of one established subflow by its two ends (PmService.established),
// which the handover's MP_PRIO step uses. The kernel reports a subflow accepted on a dual-stack
// listener ('::') from an IPv4 peer IPv4-mapped; the netlink codec writes those addresses in hex
// (`::ffff:a47:1`) while the proxy names the same flow `10.71.0.1`. Before the lookup compared by
// value, every MP_PRIO of an M-UE's subflow missed ("no tracked MPTCP subflow", issue 17).
import t from 'tap';
import { PmService, type PathsLike } from '../../src/services/pm/index.js';
import { FakePm, pmEvent } from '../helpers/pm-fakes.js';


const paths: PathsLike = { list: () => [], byAddress: () => undefined, on: () => undefined, off: () => undefined };


t.test('a dual-stack listener\'s subflow is found by its IPv4 ends, and only while established', async (t) => {
  const pm = new FakePm();
  const svc = new PmService({ pm, paths, manageEndpoints: false });
  await svc.start();
  const ends = { token: 7, saddr: '::ffff:10.71.0.1', daddr: '::ffff:10.71.1.2', sport: 9000, dport: 41000, serverSide: true };
  pm.emit('event', pmEvent(2, ends)); // established
  pm.emit('event', pmEvent(10, { ...ends, daddr: '::ffff:10.71.2.2', dport: 42000 })); // sub_established (the join)
  const initial = svc.established({ address: '10.71.0.1', port: 9000 }, { address: '10.71.1.2', port: 41000 });
  t.ok(initial !== undefined, 'the initial subflow, asked for as the proxy names it');
  t.equal(initial?.token, 7);
  t.equal(initial?.saddr, '::ffff:a47:1', 'the kernel\'s own spelling is kept (the set-flags command is sent with it)');
  t.equal(svc.established({ address: '::ffff:10.71.0.1', port: 9000 }, { address: '::ffff:a47:202', port: 42000 })?.dport, 42000, 'the join, in any spelling');
  t.equal(svc.established({ address: '10.71.0.1', port: 9000 }, { address: '10.71.1.2', port: 41001 }), undefined, 'another port: not it');
  t.equal(svc.established({ address: '10.71.0.2', port: 9000 }, { address: '10.71.1.2', port: 41000 }), undefined, 'another address: not it');
  pm.emit('event', pmEvent(11, { ...ends, daddr: '::ffff:10.71.2.2', dport: 42000 })); // sub_closed
  t.equal(svc.established({ address: '10.71.0.1', port: 9000 }, { address: '10.71.2.2', port: 42000 }), undefined, 'a closed subflow is not established');
  t.equal(svc.size, 1);
  svc.stop();
});

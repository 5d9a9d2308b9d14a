import t from 'tap';
import { wrapLibError } from '../../src/drivers/netlink/transport.js';
import { NetlinkChannel } from '../../src/drivers/netlink/channel.js';
import { FakeKernel } from './netlink-fake.js';
import { DuocellError } from '../../src/core/errors.js';
import { encodeMessage, NLMSG_DONE, NLM_F_MULTI } from '../../src/protocols/netlink/index.js';

t.test('library errors become DuocellErrors carrying the errno', async (t) => {
  const e = wrapLibError('netlink send', Object.assign(new Error('send failed'), { errno: -105, code: 'ENOBUFS', syscall: 'sendmsg' }));
  t.match(e, { code: 'DC_NETLINK_SOCKET', errno: 105, origin: 'kernel', message: 'netlink send: send failed' });
  t.equal(e.detail.syscall, 'sendmsg');
  t.match(wrapLibError('bind', "Couldn't find a free address"), { code: 'DC_NETLINK_SOCKET', origin: 'local', errno: undefined });
  const d = new DuocellError('DC_NETLINK_CLOSED');
  t.equal(wrapLibError('x', d), d, 'a DuocellError passes through');
});

t.test('channel: a dump ending in NLMSG_DONE with an error rejects with the errno; late replies are ignored', async (t) => {
  const k = new FakeKernel();
  const ch = new NetlinkChannel(k, { timeoutMs: 200 });
  k.handler = () => ({ silent: true });
  const p = ch.dump(0x20, Buffer.alloc(4));
  await new Promise((r) => setImmediate(r));
  const seq = k.sent.at(-1)!.seq;
  const err = Buffer.alloc(4);
  err.writeInt32LE(-16);
  k.push(encodeMessage({ type: NLMSG_DONE, flags: NLM_F_MULTI, seq, payload: err }));
  await t.rejects(p, { code: 'DC_NETLINK_ERRNO', errno: 16, origin: 'kernel' });
  k.push(encodeMessage({ type: NLMSG_DONE, flags: NLM_F_MULTI, seq, payload: Buffer.alloc(4) }));
  t.pass('a late DONE for a settled request is dropped');
  // two dumps at once are queued (the kernel would say EBUSY)
  k.handler = () => ({ replies: [[0x20, Buffer.from([1, 2, 3, 4])]] });
  const [a, b] = await Promise.all([ch.dump(0x20, Buffer.alloc(4)), ch.dump(0x20, Buffer.alloc(4))]);
  t.equal(a.length, 1);
  t.equal(b.length, 1);
  ch.close();
  await t.rejects(ch.request(1, Buffer.alloc(0)), { code: 'DC_NETLINK_CLOSED' });
});

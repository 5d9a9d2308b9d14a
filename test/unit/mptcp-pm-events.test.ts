import { readFileSync } from 'node:fs';
import t from 'tap';
import { EVENTS } from '../fixtures/mptcp-pm/events.js';
import { EVENT_NAMES, parseEvent, type MptcpEvent } from '../../src/protocols/mptcp-pm/index.js';
import { DuocellError } from '../../src/core/errors.js';

const bytes = (hex: string): Buffer => Buffer.from(hex.replace(/\s+/g, ''), 'hex');

t.test('every captured event (real bytes from Linux 6.18) parses to its expected decode', async (t) => {
  for (const e of EVENTS) t.same(parseEvent(bytes(e.hex)), e.expect, e.name);
});

t.test('the captures cover every mptcp_pm event type', async (t) => {
  const seen = new Set(EVENTS.map((e) => (e.expect as { type: string }).type));
  for (const n of EVENT_NAMES) t.ok(seen.has(n), `captured: ${n}`);
  t.equal(EVENT_NAMES.length, 10);
});

t.test('client events agree with iproute2 (`ip mptcp monitor`) on the same bytes', async (t) => {
  const mon = readFileSync(new URL('../fixtures/mptcp-pm/mon-client.txt', import.meta.url), 'utf8').split('\n').filter(Boolean);
  const client = EVENTS.filter((e) => e.side === 'client').map((e) => parseEvent(bytes(e.hex)));
  t.equal(client.length, mon.length, 'same number of events');
  const kind: Record<string, MptcpEvent['type']> = {
    CREATED: 'created', ESTABLISHED: 'established', CLOSED: 'closed', ANNOUNCED: 'announced', REMOVED: 'removed',
    SF_ESTABLISHED: 'sub_established', SF_CLOSED: 'sub_closed',
  };
  mon.forEach((line, i) => {
    const m = /^\[\s*(\w+)\]\s*(.*)$/.exec(line)!;
    const f = Object.fromEntries(m[2]!.split(/\s+/).map((kv) => kv.split('=') as [string, string]));
    const ev = client[i]! as Record<string, unknown>;
    t.equal(ev.type, kind[m[1]!], `${i}: type`);
    t.equal((ev.token as number).toString(16).padStart(8, '0'), f.token, `${i}: token`);
    if (f.saddr4 ?? f.saddr6) t.equal(ev.saddr, f.saddr4 ?? f.saddr6, `${i}: saddr`);
    if (f.daddr4 ?? f.daddr6) t.equal(ev.daddr, f.daddr4 ?? f.daddr6, `${i}: daddr`);
    if (f.sport) t.equal(ev.sport, Number(f.sport), `${i}: sport`);
    if (f.dport) t.equal(ev.dport, Number(f.dport), `${i}: dport`);
    if (f.remid && ev.type !== 'created' && ev.type !== 'established') t.equal(ev.remId, Number(f.remid), `${i}: remid`);
    if (f.backup) t.equal(ev.backup, f.backup === '1', `${i}: backup`);
    if (f.ifindex) t.equal(ev.ifIndex, Number(f.ifindex), `${i}: ifindex`);
  });
});

t.test('every truncation of every event is either parsed or rejected with a code', async (t) => {
  let rejected = 0;
  for (const e of EVENTS) {
    const b = bytes(e.hex);
    for (let n = 0; n < b.length; n++) {
      try {
        parseEvent(b.subarray(0, n));
      } catch (x) {
        if (!(x instanceof DuocellError)) throw x;
        t.ok(x.code === 'DC_MPTCP_PM_EVENT_INVALID' || x.code === 'DC_NETLINK_MALFORMED', `${e.name} cut at ${n}: ${x.code}`);
        rejected++;
      }
    }
  }
  t.ok(rejected > 100);
});

t.test('missing required attributes and unknown types are DC_MPTCP_PM_EVENT_INVALID', async (t) => {
  const created = EVENTS.find((e) => e.name.startsWith('created (client, IPv4)'))!;
  const b = bytes(created.hex);
  t.throws(() => parseEvent(Buffer.concat([Buffer.from([99, 1, 0, 0]), b.subarray(4)])), { code: 'DC_MPTCP_PM_EVENT_INVALID' });
  // drop the token attribute (the first one after the genl header, 8 bytes)
  t.throws(() => parseEvent(Buffer.concat([b.subarray(0, 4), b.subarray(12)])), { code: 'DC_MPTCP_PM_EVENT_INVALID', message: /TOKEN/ });
  // family says AF_INET6 but only IPv4 addresses are present
  const wrongFam = Buffer.from(b);
  wrongFam.writeUInt16LE(10, 4 + 8 + 4);
  t.throws(() => parseEvent(wrongFam), { code: 'DC_MPTCP_PM_EVENT_INVALID', message: /SADDR6/ });
  // an unknown family number
  wrongFam.writeUInt16LE(7, 4 + 8 + 4);
  t.throws(() => parseEvent(wrongFam), { code: 'DC_MPTCP_PM_EVENT_INVALID' });
});

t.test('event flags: bit 0 the peer denies joins to its initial address (C flag), bit 1 server side', async (t) => {
  const server = EVENTS.find((e) => e.name === 'created (server, IPv4)')!;
  // without the deprecated MPTCP_ATTR_SERVER_SIDE the flags alone tell the side
  const noAttr = server.hex.replace('05 00 12 00 01 00 00 00', '');
  t.match(parseEvent(bytes(noAttr)), { type: 'created', serverSide: true, flags: 2 }, 'flags 0x2: server side');
  // a client whose server set the C flag (seen here from a duocell concentrator: `flags=1`)
  const client = EVENTS.find((e) => e.name === 'created (client, IPv4)')!;
  const denied = client.hex.replace('01 01 00 00', '01 01 00 00 06 00 0d 00 01 00 00 00');
  t.match(parseEvent(bytes(denied)), { type: 'created', serverSide: false, flags: 1 }, 'flags 0x1: client side, joins to the initial address denied');
});

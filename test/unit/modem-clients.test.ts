import t from 'tap';
import { EventEmitter } from 'node:events';
import { AtClient } from '../../src/drivers/modem/at.js';
import { QmiClient } from '../../src/drivers/modem/qmi.js';
import type { ModemTransport } from '../../src/drivers/modem/transport.js';
import { DuocellError, isDuocellError } from '../../src/core/errors.js';
import { decodeBytes, encodeIndication, encodeResponse } from '../../src/protocols/qmi/index.js';

/** An in-memory port: what the host writes goes to `reply`, which may answer with bytes. */
class ReplayPort extends EventEmitter implements ModemTransport {
  readonly path = 'replay';
  isOpen = true;
  written: Buffer[] = [];
  constructor(readonly reply: (b: Buffer, port: ReplayPort) => void) {
    super();
  }
  async write(d: Uint8Array | string): Promise<void> {
    if (!this.isOpen) throw new DuocellError('DC_MODEM_PORT', 'closed');
    const b = typeof d === 'string' ? Buffer.from(d, 'latin1') : Buffer.from(d);
    this.written.push(b);
    setImmediate(() => this.reply(b, this));
  }
  send(b: Buffer | string): void {
    this.emit('data', typeof b === 'string' ? Buffer.from(b, 'latin1') : b);
  }
  vanish(): void {
    this.isOpen = false;
    this.emit('close', new DuocellError('DC_MODEM_PORT', 'replay: vanished'));
  }
  async close(): Promise<void> {
    this.isOpen = false;
    this.emit('close');
  }
}

async function rejection(p: Promise<unknown>): Promise<DuocellError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof DuocellError) return e;
    throw e;
  }
  throw new Error('did not reject');
}

t.test('AT client: queue, finals, URCs, timeouts, port loss', async (t) => {
  let silent = false;
  const port = new ReplayPort((b, p) => {
    const cmd = b.toString('latin1').trim();
    if (silent) return;
    if (cmd === 'AT+CSQ') p.send(`${cmd}\r\r\n+CEREG: 1\r\n+CSQ: 17,99\r\n\r\nOK\r\n`);
    else if (cmd === 'AT+CPIN=0000') p.send('\r\n+CME ERROR: 16\r\n');
    else if (cmd === 'ATD*99#') p.send('\r\nNO CARRIER\r\n');
    else if (cmd === 'AT+BOGUS') p.send('\r\nERROR\r\n');
    else p.send('\r\nOK\r\n');
  });
  const at = new AtClient(port);
  const urcs: string[] = [];
  at.on('urc', (u: { line: string }) => urcs.push(u.line));
  // three commands queued at once complete in order, one in flight at a time
  const [a, b, c] = await Promise.all([at.command('AT'), at.command('AT+CSQ'), at.command('ATE0')]);
  t.equal(a.final, 'OK');
  t.same(b.lines, ['+CSQ: 17,99']);
  t.equal(c.final, 'OK');
  t.same(urcs, ['+CEREG: 1'], 'URC inside a reply is emitted, not returned');
  t.same(
    port.written.map((x) => x.toString()),
    ['AT\r', 'AT+CSQ\r', 'ATE0\r'],
  );
  const cme = await rejection(at.command('AT+CPIN=0000'));
  t.equal(cme.code, 'DC_AT_CME_ERROR');
  t.equal(cme.origin, 'device');
  t.equal(cme.detail.cme, 16);
  t.match(cme.message, /incorrect password/);
  t.equal((await rejection(at.command('ATD*99#'))).code, 'DC_AT_NO_CARRIER');
  t.equal((await rejection(at.command('AT+BOGUS'))).code, 'DC_AT_ERROR');
  // timeout, then a late OK must not complete the next command
  silent = true;
  const to = await rejection(at.command('AT+SLOW', { timeoutMs: 50 }));
  t.equal(to.code, 'DC_AT_TIMEOUT');
  t.equal(to.origin, 'local');
  t.match(to.message, /AT\+SLOW/);
  port.send('\r\nOK\r\n'); // the late final of AT+SLOW
  silent = false;
  t.same((await at.command('AT+CSQ')).lines, ['+CSQ: 17,99'], 'next command gets its own reply');
  // port vanishes: the in-flight and the queued command fail with the port error
  silent = true;
  const p1 = rejection(at.command('AT'));
  const p2 = rejection(at.command('AT'));
  setTimeout(() => port.vanish(), 20);
  t.equal((await p1).code, 'DC_MODEM_PORT');
  t.equal((await p2).code, 'DC_MODEM_PORT');
  t.ok(at.closed);
});

t.test('QMI client: CIDs, transaction matching, indications, device errors, timeouts', async (t) => {
  let mode: 'normal' | 'silent' | 'garbage' | 'bad-tlv' = 'normal';
  const port = new ReplayPort((b, p) => {
    const m = decodeBytes(b);
    const a = { client: m.frame.client, tid: m.frame.tid };
    if (mode === 'silent') return;
    if (mode === 'garbage') p.send(Buffer.from('ff00017e01', 'hex'));
    if (mode === 'bad-tlv') {
      // a Get Serving System response whose Detailed Service Status is too short
      p.send(Buffer.from(`011a0080030102${a.tid.toString(16).padStart(2, '0')}0024000e000204000000000021040002030000`, 'hex'));
      return;
    }
    switch (m.key) {
      case 'ctl.allocateCid':
        p.send(encodeResponse('ctl.allocateCid', a, { allocation_info: { service: m.values.service, cid: 7 } }));
        break;
      case 'dms.getModel':
        // answer after an indication and after garbage, split in two chunks
        p.send(encodeIndication('wds.packetServiceStatusIndication', 9, { connection_status: { status: 1, reconfiguration_required: 0 } }));
        {
          const r = encodeResponse('dms.getModel', a, { model: 'EC25' });
          p.send(r.subarray(0, 5));
          p.send(r.subarray(5));
        }
        break;
      case 'dms.uimVerifyPin':
        p.send(encodeResponse('dms.uimVerifyPin', a, { pin_retries_status: { verify_retries_left: 2, unblock_retries_left: 10 } }, 12));
        break;
      default:
        p.send(encodeResponse(m.key!, a, {}));
    }
  });
  const q = new QmiClient(port);
  const inds: string[] = [];
  q.on('indication', (m: { key?: string }) => inds.push(m.key ?? '?'));
  mode = 'garbage';
  t.same(await q.call('dms.getModel'), { model: 'EC25' }, 'client allocated on first use, response found after garbage');
  mode = 'normal';
  t.equal(q.clientId(2), 7);
  t.same(inds, ['wds.packetServiceStatusIndication']);
  const e = await rejection(q.call('dms.uimVerifyPin', { info: { pin_id: 'pin', pin: '0000' } }));
  t.equal(e.code, 'DC_QMI_RESULT');
  t.equal(e.origin, 'device');
  t.equal(e.detail.qmiErrorName, 'IncorrectPin');
  t.same((e.detail.values as Record<string, unknown>).pin_retries_status, { verify_retries_left: 2, unblock_retries_left: 10 });
  const soft = await q.request('dms.uimVerifyPin', { info: { pin_id: 'pin', pin: '0000' } }, { allowFailure: true });
  t.equal(soft.result?.ok, false);
  mode = 'bad-tlv';
  const bad = await rejection(q.call('nas.getServingSystem', {}, { client: 1, timeoutMs: 2000 }));
  t.equal(bad.code, 'DC_QMI_TLV_OVERFLOW', 'a malformed response fails with its decode error, not a timeout');
  mode = 'silent';
  const to = await rejection(q.call('dms.getRevision', {}, { timeoutMs: 50 }));
  t.equal(to.code, 'DC_QMI_TIMEOUT');
  t.match(to.message, /dms\.getRevision/);
  const pending = rejection(q.call('dms.getRevision', {}, { timeoutMs: 5000 }));
  setTimeout(() => port.vanish(), 20);
  t.equal((await pending).code, 'DC_MODEM_PORT');
  t.ok(isDuocellError(await rejection(q.call('dms.getModel')), 'DC_MODEM_PORT'), 'closed client refuses new requests');
});

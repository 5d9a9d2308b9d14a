import t from 'tap';
import { EventEmitter } from 'node:events';
import { AtControl } from '../../src/drivers/modem/at-control.js';
import { RadioState } from '../../src/drivers/modem/radio-state.js';
import type { ModemTransport } from '../../src/drivers/modem/transport.js';
import type { RegistrationInfo } from '../../src/drivers/modem/types.js';

/**
 * An AT-only modem's registration poll against a registration URC that arrives during it. The
 * poll asks AT+CEREG? (registered) and then AT+COPS? for the operator; when the network is lost
 * between the two, the modem sends "+CEREG: 0" before the AT+COPS? reply. The URC is the newer
 * word: the poll must not publish its older "registered" over it (seen under load in
 * modem-at.test.ts: the manager then retried the data session against "+CME ERROR: 30" for good,
 * never searching again). The "modem" is an in-memory port answering each written command.
 */
class ScriptPort extends EventEmitter implements ModemTransport {
  readonly path = 'script';
  isOpen = true;
  constructor(readonly answer: (cmd: string, port: ScriptPort) => void) {
    super();
  }
  async write(d: Uint8Array | string): Promise<void> {
    const cmd = (typeof d === 'string' ? d : Buffer.from(d).toString('latin1')).trim();
    setImmediate(() => this.answer(cmd, this));
  }
  send(s: string): void {
    this.emit('data', Buffer.from(s, 'latin1'));
  }
  async close(): Promise<void> {
    this.isOpen = false;
    this.emit('close');
  }
}

const REG = '\r\n+CEREG: 2,1,"1A2B","01A2B3C",7\r\n\r\nOK\r\n';
const COPS = '\r\n+COPS: 0,0,"Telekom.de",7\r\n\r\nOK\r\n';

async function rig(lostDuringCops: boolean): Promise<{ control: AtControl; radio: RadioState; published: RegistrationInfo[] }> {
  const published: RegistrationInfo[] = [];
  const radio = new RadioState({ registration: (i) => published.push(i), signal: () => undefined, info: () => undefined, poke: () => undefined });
  let lost = false;
  const port = new ScriptPort((cmd, p) => {
    if (cmd === 'AT+CEREG?') return p.send(lost ? '\r\n+CEREG: 2,0\r\n\r\nOK\r\n' : REG);
    if (cmd === 'AT+COPS?') {
      if (lostDuringCops && !lost) {
        lost = true;
        p.send('\r\n+CEREG: 0\r\n'); // the URC, then the reply the modem had already made up
      }
      return p.send(COPS);
    }
    if (cmd === 'AT+CGMI') return p.send('\r\nQuectel\r\n\r\nOK\r\n');
    p.send('\r\nOK\r\n');
  });
  const control = new AtControl(
    { ports: ['script'], open: async () => port, probeTimeoutMs: 1000, requestTimeoutMs: 2000, minPinRetries: 3 },
    { radio, running: () => true, portLostPending: () => false, portLost: () => undefined, dataIndication: () => undefined, dataUrc: () => undefined },
  );
  await control.probe();
  return { control, radio, published };
}

t.test('a registration URC during the poll wins over the poll\'s older answer', async (t) => {
  const { control, radio } = await rig(true);
  radio.setRegistration({ registered: true, state: 'home', accessTech: 'lte', source: 'at' }, 'earlier poll');
  await control.pollRegistration();
  t.equal(radio.registered, false, 'not registered: the URC said so after the poll\'s AT+CEREG? reply');
  t.match(radio.regLostWhy ?? '', /URC/, 'the loss is the URC\'s');
  await control.pollRegistration();
  t.equal(radio.registered, false, 'the next poll agrees');
  await control.closePorts();
});

t.test('without a URC the poll publishes registration and operator', async (t) => {
  const { control, radio, published } = await rig(false);
  await control.pollRegistration();
  t.equal(radio.registered, true);
  t.equal(published.at(-1)?.operator, 'Telekom.de');
  await control.closePorts();
});

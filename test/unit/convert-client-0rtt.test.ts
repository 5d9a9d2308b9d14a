// The Convert client's 0-RTT data path (RFC 8803): the client's bytes go to the converter right
// behind the Convert message, before its reply; the reply is stripped from the downstream and
// whatever the converter sent with it reaches the client untouched. Loopback only, no root: the
// converters are stubs that speak the wire format from the codec.
import t, { type Test } from 'tap';
import net from 'node:net';
import { socketIo } from '../../src/drivers/sockets/io.js';
import { ProxyEngine } from '../../src/services/proxy/engine.js';
import { explicitFront } from '../../src/services/proxy/fronts/basic.js';
import { convertConnector } from '../../src/services/proxy/convert-client.js';
import { selectingConnector } from '../../src/services/proxy/select-connector.js';
import { ProxySelector } from '../../src/services/proxy/selection.js';
import { normalizeProxies } from '../../src/store/validate.js';
import { ConvertErrorCode, encodeConvertError, encodeConvertMessage, parseConvertMessage } from '../../src/protocols/convert/index.js';
import type { Connector } from '../../src/services/proxy/types.js';

const OK_REPLY = encodeConvertMessage([{ type: 'extended-tcp-header', tcpOptions: Buffer.alloc(0) }]);
const TARGET = { host: '198.18.0.7', port: 80 };

interface Stub {
  port: number;
  /** Per connection: the bytes that followed the Convert message, as received. */
  ahead: Buffer[];
  connections: number;
}

/**
 * A converter that answers only once it holds `want` bytes behind the Convert message (the old
 * client, which waited for the reply before sending them, deadlocks here until its reply timer).
 * `answer(ahead)` is written in one write(); `end`: then a FIN; else it echoes what follows.
 */
async function stub(t: Test, want: number, answer: (ahead: Buffer) => Buffer, end = false): Promise<Stub> {
  const st: Stub = { port: 0, ahead: [], connections: 0 };
  const srv = net.createServer({ allowHalfOpen: true, noDelay: true }, (c) => {
    st.connections++;
    c.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    let answered = false;
    const slot = st.ahead.length;
    st.ahead.push(Buffer.alloc(0));
    c.on('data', (d: Buffer) => {
      if (answered) {
        if (!end) c.write(d);
        return;
      }
      buf = Buffer.concat([buf, d]);
      const r = parseConvertMessage(buf);
      if ('need' in r) return;
      const rest = buf.subarray(r.consumed);
      st.ahead[slot] = rest;
      if (rest.length < want) return;
      answered = true;
      c.write(answer(rest));
      if (end) c.end();
    });
    c.on('end', () => c.end());
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => srv.close());
  st.port = (srv.address() as net.AddressInfo).port;
  return st;
}

/** An engine with an explicit listener toward TARGET through `connector`; resolves its port. */
async function engineWith(t: Test, connector: Connector): Promise<number> {
  const engine = new ProxyEngine({ io: socketIo });
  t.teardown(() => engine.close(100));
  const a = await engine.listen({ name: 'cell', host: '127.0.0.1', port: 0, mptcp: false, front: explicitFront(TARGET), connector, upstream: { mptcp: false } });
  return a.port;
}

/** An N-UE: connects, writes `send`, collects everything until the close; `more` after the first bytes back. */
function nue(port: number, send: string, more?: string): Promise<{ got: string; error?: string }> {
  return new Promise((resolve) => {
    const c = net.connect({ host: '127.0.0.1', port, noDelay: true, allowHalfOpen: true }, () => c.write(send));
    let got = '';
    let error: string | undefined;
    let sentMore = false;
    c.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (more !== undefined && !sentMore) {
        sentMore = true;
        c.end(more);
      } else if (more === undefined) c.end();
    });
    c.on('end', () => c.end());
    c.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    c.on('close', () => resolve({ got, ...(error === undefined ? {} : { error }) }));
    setTimeout(() => c.destroy(), 15_000).unref();
  });
}

const converter = (port: number, extra = {}): Connector => convertConnector({ concentrator: { address: '127.0.0.1', port }, mptcp: false, replyTimeoutMs: 4000, ...extra });

t.test('the first data reach the converter before its reply (a stub that waits for them completes)', async (t) => {
  const s = await stub(t, 6, (ahead) => Buffer.concat([OK_REPLY, Buffer.from('SERVER:'), ahead]));
  const port = await engineWith(t, converter(s.port));
  const r = await nue(port, 'GET /x', '|more');
  t.equal(r.error, undefined, 'no reset');
  t.equal(r.got, 'SERVER:GET /x|more', 'the reply stripped; the bytes sent with it, then the echo, in order');
  t.equal(s.ahead[0]?.toString(), 'GET /x', 'the converter held the first data before it answered');
});

t.test('reply + server bytes + FIN in one segment reach the client intact', async (t) => {
  const body = Buffer.alloc(3000, 0x61);
  const s = await stub(t, 1, () => Buffer.concat([OK_REPLY, body]), true);
  const port = await engineWith(t, converter(s.port));
  const r = await nue(port, 'Q');
  t.equal(r.error, undefined, 'a clean close, no reset');
  t.equal(r.got.length, body.length, 'every byte behind the reply');
  t.ok(Buffer.from(r.got, 'latin1').equals(body), 'untouched');
});

t.test('a server that speaks first: nothing sent ahead, the reply still stripped', async (t) => {
  const s = await stub(t, 0, () => Buffer.concat([OK_REPLY, Buffer.from('220 ready\r\n')]));
  const port = await engineWith(t, converter(s.port));
  const got = await new Promise<string>((resolve, reject) => {
    const c = net.connect({ host: '127.0.0.1', port }, () => undefined);
    c.once('data', (d: Buffer) => {
      resolve(d.toString());
      c.destroy();
    });
    c.on('error', reject);
  });
  t.equal(got, '220 ready\r\n');
});

t.test('an Error TLV after early data fails the session with its code; the bytes go back to the client stream', async (t) => {
  const s = await stub(t, 5, () => encodeConvertError(ConvertErrorCode.CONNECTION_RESET));
  // The connector alone: a paused accepted socket as the engine hands it.
  const srv = net.createServer({ pauseOnConnect: true, allowHalfOpen: true });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => srv.close());
  const accepted = new Promise<net.Socket>((r) => srv.once('connection', r));
  const ue = net.connect((srv.address() as net.AddressInfo).port, '127.0.0.1', () => ue.write('hello'));
  ue.on('error', () => undefined);
  t.teardown(() => ue.destroy());
  const client = await accepted;
  client.on('error', () => undefined);
  const ac = new AbortController();
  await t.rejects(
    converter(s.port).connect({ target: TARGET, options: { mptcp: false }, signal: ac.signal, io: socketIo, clientSocket: client }),
    { code: 'DC_CONVERT_PEER_ERROR', origin: 'peer', detail: { convertError: ConvertErrorCode.CONNECTION_RESET } },
  );
  t.equal(s.ahead[0]?.toString(), 'hello', 'the converter had the early data when it refused');
  t.equal((client.read() as Buffer | null)?.toString(), 'hello', 'the bytes sent ahead are back in front of the client stream');

  // Through the engine: the N-UE is reset, as before.
  const port = await engineWith(t, converter(s.port));
  const r = await nue(port, 'hello');
  t.equal(r.got, '', 'nothing reached the client');
  t.equal(r.error, 'ECONNRESET', 'the N-UE sees a reset');
});

t.test('selection: a candidate that refuses with Resource Exceeded after early data, the next gets the same bytes once', async (t) => {
  const busy = await stub(t, 5, () => encodeConvertError(ConvertErrorCode.RESOURCE_EXCEEDED, { delaySeconds: 1 }));
  const good = await stub(t, 5, (ahead) => Buffer.concat([OK_REPLY, Buffer.from('via-b:'), ahead]));
  const selector = new ProxySelector({
    candidates: () =>
      normalizeProxies([
        { name: 'a', address: '127.0.0.1', port: busy.port, protocol: 'convert', priority: 10 },
        { name: 'b', address: '127.0.0.1', port: good.port, protocol: 'convert', priority: 1 },
      ]),
    probe: async () => 1,
  });
  const fallback: Connector = { name: 'none', connect: () => Promise.reject(new Error('no fallback expected')) };
  const port = await engineWith(t, selectingConnector({ selector, fallback, convert: { mptcp: false, replyTimeoutMs: 4000 } }));
  const r = await nue(port, 'hello', '|x');
  t.equal(r.error, undefined);
  t.equal(r.got, 'via-b:hello|x', 'the session went on through b with every byte once, in order');
  t.equal(busy.ahead[0]?.toString(), 'hello', 'a had been sent the early data (it refused: no server saw them)');
  t.equal(good.ahead[0]?.toString(), 'hello', 'b got the same bytes behind its Convert message');
  t.equal(good.connections, 1);
  t.equal(selector.health('a')?.sessionFailures, 1, 'the refusal counted against a');
});

t.test('a converter that never answers: the reply timer still ends the session', async (t) => {
  const s = await stub(t, 1000, () => OK_REPLY);
  const port = await engineWith(t, converter(s.port, { replyTimeoutMs: 500 }));
  const r = await nue(port, 'short');
  t.equal(r.got, '', 'no bytes came back');
  t.equal(r.error, 'ECONNRESET', 'the N-UE sees a reset');
  t.equal(s.ahead[0]?.toString(), 'short', 'the converter had the bytes');
});

t.test('bytes the client sent before the connector ran go out in one write with the Convert message (in the SYN with TFO)', async (t) => {
  const s = await stub(t, 5, (ahead) => Buffer.concat([OK_REPLY, ahead]));
  const srv = net.createServer({ pauseOnConnect: true, allowHalfOpen: true });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => srv.close());
  const accepted = new Promise<net.Socket>((r) => srv.once('connection', r));
  const written = new Promise<void>((r) => {
    const ue = net.connect((srv.address() as net.AddressInfo).port, '127.0.0.1', () => ue.write('hello', () => r()));
    ue.on('error', () => undefined);
    t.teardown(() => ue.destroy());
  });
  const client = await accepted;
  client.on('error', () => undefined);
  await written;
  await new Promise((r) => setTimeout(r, 50)); // the bytes are in the accepted socket's receive queue
  t.equal(client.readableLength, 0, 'nothing read into Node yet: the bytes wait in the kernel, as a transparent N-UE session has them');
  // Every write the upstream socket hands its handle, in order (Node's _writeGeneric: net.Socket's
  // connect() puts its own write() back, so a spy has to sit below it).
  const writes: Buffer[] = [];
  const io = {
    ...socketIo,
    socketOn: (fd: number): net.Socket => {
      const sock = socketIo.socketOn(fd) as net.Socket & { _writeGeneric(writev: boolean, data: unknown, ...rest: unknown[]): unknown };
      const generic = sock._writeGeneric.bind(sock);
      sock._writeGeneric = (writev: boolean, data: unknown, ...rest: unknown[]) => {
        // (while connecting, Node defers the write and calls this again once connected)
        if (!sock.connecting) writes.push(writev ? Buffer.concat((data as Array<{ chunk: Buffer }>).map((c) => c.chunk)) : Buffer.from(data as Buffer));
        return generic(writev, data, ...rest);
      };
      return sock;
    },
  };
  const r = await converter(s.port).connect({ target: TARGET, options: { mptcp: false }, signal: new AbortController().signal, io, clientSocket: client });
  t.teardown(() => r.socket.destroy());
  t.equal(writes.length, 1, 'one write: the Convert message and the client bytes together');
  const first = writes[0] ?? Buffer.alloc(0);
  const parsed = parseConvertMessage(first);
  t.notOk('need' in parsed, 'the write starts with a whole Convert message');
  if (!('need' in parsed)) t.equal(first.subarray(parsed.consumed).toString(), 'hello', 'the client bytes right behind it');
  t.equal(s.ahead[0]?.toString(), 'hello', 'the converter got them once');
  t.equal(client.readableLength, 0, 'nothing left over for the relay to send again');
});

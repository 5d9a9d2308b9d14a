// Convert (RFC 8803) and SOCKS5 fronts against the real kernel, in a network namespace
// (needs root, ip netns, MPTCP, TCP Fast Open; runs in CI as root). Every error path is asserted
// on the exact bytes the client receives.
import t from 'tap';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Topology, netnsUnavailable, type Host } from '../helpers/hosts.js';
import { ConvertErrorCode, encodeConvertError } from '../../src/protocols/convert/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const reason = await netnsUnavailable();

/** The TypeScript loader tap runs us with, so the child runs the same sources. */
const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript') || a.startsWith('--import=') && a.includes('tsx'));

async function nstat(h: Host, ...names: string[]): Promise<Record<string, number>> {
  const outp = await h.exec('nstat', ['-az', ...names], { allowFail: true });
  const r: Record<string, number> = {};
  for (const line of outp.split('\n')) {
    const m = /^(\S+)\s+(\d+)/.exec(line);
    if (m !== null) r[m[1]!] = Number(m[2]);
  }
  return r;
}

t.test('Convert and SOCKS5 on the wire (namespace, kernel MPTCP + TFO)', { skip: reason }, async (t) => {
  // The pid keeps two runs of this file (two engineers, CI) from sharing namespaces.
  const topo = new Topology(`tconv${process.pid}`);
  t.teardown(() => topo.destroy());
  const h = await topo.host('ns');
  for (const a of ['10.77.9.1/32', '10.77.9.2/32', '10.77.9.3/32']) await h.ip('addr', 'add', a, 'dev', 'lo');
  await h.ip('-6', 'addr', 'add', 'fd77::1/128', 'dev', 'lo');
  // EHOSTUNREACH for 198.51.100.0/24; no default route: ENETUNREACH for everything else;
  // 192.0.2.0/24 goes to a host that does not forward: SYNs vanish (connect timeout).
  await h.ip('route', 'add', 'unreachable', '198.51.100.0/24');
  const sink = await topo.host('sink');
  await topo.link(h, 'sink0', sink, 'eth0', { a: ['10.77.8.1/24'], b: ['10.77.8.2/24'] });
  await h.ip('route', 'add', '192.0.2.0/24', 'via', '10.77.8.2', 'dev', 'sink0');
  // TFO: client+server, data in the SYN without a cookie both ways.
  await h.sysctl('net.ipv4.tcp_fastopen', '0x207');
  await h.exec('nstat', ['-n'], { allowFail: true });

  const lines: Array<Record<string, unknown>> = [];
  let stderr = '';
  const code = await new Promise<number | null>((resolve) => {
    const child = h.spawn(process.execPath, [...loader, path.join(here, 'convert-ns-child.ts')], {
      env: { ...process.env, DUOCELL_LOG_LEVEL: 'silent' },
    });
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const l = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          lines.push(JSON.parse(l) as Record<string, unknown>);
        } catch {
          stderr += `[stdout] ${l}\n`;
        }
      }
    });
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const kill = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('exit', (c) => {
      clearTimeout(kill);
      resolve(c);
    });
  });
  const fatal = lines.find((l) => l.fatal !== undefined);
  t.equal(code, 0, `child exited cleanly${fatal === undefined ? '' : `: ${String(fatal.fatal)}`}${stderr === '' ? '' : `\n${stderr.slice(0, 2000)}`}`);
  const S = new Map(lines.filter((l) => typeof l.scenario === 'string').map((l) => [l.scenario as string, l]));
  const got = (name: string): { bytes: string; end: string; sent: string } => {
    const r = S.get(name) as { bytes?: string; end?: string; sent?: string } | undefined;
    return { bytes: r?.bytes ?? '<missing>', end: r?.end ?? '<missing>', sent: r?.sent ?? '' };
  };
  const err = (c: number, o: Parameters<typeof encodeConvertError>[1] = {}): string => encodeConvertError(c, o).toString('hex');
  const echoErr = (name: string, c: number, cut?: number): string => {
    const sent = Buffer.from(got(name).sent, 'hex');
    return err(c, { received: cut === undefined ? sent : sent.subarray(0, cut) });
  };

  t.test('Convert replies, byte for byte', async (t) => {
    // success: header + empty Extended TCP Header, then the server's echo of our SYN data
    t.same(got('ok'), { ...got('ok'), bytes: '0102226314010000' + Buffer.from('hello').toString('hex'), end: 'fin' });
    t.equal(got('ok-plain-tcp').bytes, '0102226314010000' + Buffer.from('tcp!').toString('hex'), 'plain TCP client (MPTCP fallback)');
    t.equal(got('ok-ipv6-target').bytes, '0102226314010000' + Buffer.from('six').toString('hex'), 'IPv6 target');
    const cases: Array<[string, string]> = [
      ['net-unreachable', err(ConvertErrorCode.DESTINATION_UNREACHABLE, { icmpCode: 0 })],
      ['host-unreachable', err(ConvertErrorCode.DESTINATION_UNREACHABLE, { icmpCode: 1 })],
      ['refused-port', err(ConvertErrorCode.CONNECTION_RESET)],
      // one silent server: Network Failure asking for a 1 s pause (0 would mean ≥ 30 s for every connection)
      ['timeout-target', err(ConvertErrorCode.NETWORK_FAILURE, { delaySeconds: 1 })],
      ['missing-cookie', err(ConvertErrorCode.MISSING_COOKIE)],
      ['wrong-cookie', err(ConvertErrorCode.NOT_AUTHORIZED)],
      ['unsupported-version', err(ConvertErrorCode.UNSUPPORTED_VERSION)],
      ['malformed-option-length', echoErr('malformed-option-length', ConvertErrorCode.MALFORMED_MESSAGE)],
      ['loopback-target', echoErr('loopback-target', ConvertErrorCode.MALFORMED_MESSAGE)],
      ['unknown-tlv', echoErr('unknown-tlv', ConvertErrorCode.UNSUPPORTED_MESSAGE)],
      ['truncated-header', echoErr('truncated-header', ConvertErrorCode.MALFORMED_MESSAGE)],
      ['length-lies-long', echoErr('length-lies-long', ConvertErrorCode.MALFORMED_MESSAGE)],
      ['length-lies-long-silent', echoErr('length-lies-long-silent', ConvertErrorCode.MALFORMED_MESSAGE)],
      ['length-lies-short', echoErr('length-lies-short', ConvertErrorCode.MALFORMED_MESSAGE, 12)],
      ['unsupported-tcp-option', err(ConvertErrorCode.UNSUPPORTED_TCP_OPTION, { kinds: [29] })],
      ['info', '01032263' + '15020000' + '1e040822'],
    ];
    for (const [name, want] of cases) {
      const g = got(name);
      t.equal(g.bytes, want, `${name}: bytes`);
      t.equal(g.end, 'fin', `${name}: then the converter closes`);
    }
    // spot-check one expectation by hand against RFC 8803 values
    t.equal(err(ConvertErrorCode.DESTINATION_UNREACHABLE, { icmpCode: 1 }), '010222631e016101');
  });

  t.test('never an open proxy: refused requests reached no server', async (t) => {
    t.equal((S.get('guarded-servers') as { echoAccepted?: number } | undefined)?.echoAccepted, 2, 'only the two authorised requests connected');
  });

  t.test('SOCKS5 replies', async (t) => {
    const s = (n: string): string => got(n).bytes;
    t.equal(s('socks-no-auth-offered'), '05ff', 'no acceptable method');
    t.equal(s('socks-wrong-password'), '05020101', 'wrong password refused');
    t.equal(s('socks-unknown-user'), '05020101', 'unknown user refused');
    t.match(s('socks-auth-ok'), /^0502010005000001[0-9a-f]{12}70696e67$/, 'auth ok, CONNECT IPv4, data echoed');
    t.match(s('socks-ipv6'), /^0502010005000004[0-9a-f]{36}7636$/, 'CONNECT IPv6');
    t.match(s('socks-anon-domain'), /^050005000001[0-9a-f]{12}646e$/, 'CONNECT domain, no auth');
    t.equal(s('socks-anon-loopback-domain'), '05000502000100000000' + '0000', 'loopback target not allowed');
    t.equal(s('socks-anon-nxdomain'), '05000504000100000000' + '0000', 'unresolvable: host unreachable');
    t.equal(s('socks-bind'), '05000507000100000000' + '0000', 'BIND: command not supported');
    t.equal(s('socks-refused'), '05000505000100000000' + '0000', 'refused port');
    t.equal(s('socks-net-unreachable'), '05000503000100000000' + '0000', 'network unreachable');
  });

  t.test('cell → Convert client (MPTCP, TFO) → concentrator → server: bytes intact both ways', async (t) => {
    const c = S.get('chain') as
      | { received?: number; rxHash?: string; txHash?: string; size?: number; error?: string; server?: { rx: string; tx: string; received: number } | null; concCombos?: Record<string, number> }
      | undefined;
    t.ok(c, 'chain ran');
    t.equal(c?.error, undefined, 'no client error');
    t.equal(c?.received, c?.size, 'all bytes came back');
    t.equal(c?.server?.received, c?.size, 'server got all bytes');
    t.equal(c?.server?.rx, c?.txHash, 'upstream hash');
    t.equal(c?.rxHash, c?.server?.tx, 'downstream hash');
    t.ok((c?.concCombos?.['M-N'] ?? 0) >= 1, 'cell → concentrator leg was MPTCP');
    const b = S.get('chain-bad-cookie') as { result?: string } | undefined;
    t.equal(b?.result, 'ECONNRESET', 'a Convert refusal reaches the N-UE as a reset');
  });

  const tfo = await nstat(h, 'TcpExtTCPFastOpenPassive', 'TcpExtTCPFastOpenActive');
  t.comment(`TFO counters in the namespace: ${JSON.stringify(tfo)}`);
  t.ok((tfo.TcpExtTCPFastOpenPassive ?? 0) > 0, 'the converter accepted data in the SYN (TFO passive)');
});

// Needs root and network namespaces (runs in CI as root); namespaces hbfb-*. First boot as
// appliances do it (issue 16, item 1): `duocell run` with the page on a LAN address makes a
// set-up secret, a /metrics token and a self-signed certificate at first start; the LAN gets
// HTTPS (plain HTTP only redirects); set-up without the secret is refused, with it accepted.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { Topology, netnsUnavailable, type Host } from '../helpers/hosts.js';
import { BIN } from '../helpers/appliance.js';

const why = await netnsUnavailable();

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
  fingerprint?: string;
}

/** One HTTP(S) request from inside a namespace; the server's certificate is not verified but reported. */
async function req(h: Host, url: string, o: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  const script = `import http from 'node:http'; import https from 'node:https';
const u = new URL(${JSON.stringify(url)});
const mod = u.protocol === 'https:' ? https : http;
const r = mod.request(u, { method: ${JSON.stringify(o.method ?? 'GET')}, headers: ${JSON.stringify(o.headers ?? {})}, rejectUnauthorized: false, timeout: 10000 }, (res) => {
  const fp = res.socket && res.socket.getPeerCertificate ? res.socket.getPeerCertificate().fingerprint256 : undefined;
  let body = ''; res.setEncoding('utf8'); res.on('data', (d) => (body += d));
  res.on('end', () => {
    const headers = {}; for (const [k, v] of Object.entries(res.headers)) headers[k] = Array.isArray(v) ? v.map((c) => c.split(';')[0]).join('; ') : String(v);
    process.stdout.write(JSON.stringify({ status: res.statusCode, headers, body, fingerprint: fp }));
  });
});
r.on('error', (e) => { process.stdout.write(JSON.stringify({ status: 0, headers: {}, body: e.message })); });
r.end(${JSON.stringify(o.body ?? '')});`;
  return JSON.parse(await h.exec(process.execPath, ['--input-type=module', '-e', script])) as Answer;
}

t.test('first boot on a LAN address: secret, HTTPS with the device certificate, redirect, /metrics token', { skip: why === false ? false : why, timeout: 180_000 }, async (t) => {
  const topo = new Topology(`hbfb${process.pid % 100000}`);
  t.teardown(() => topo.destroy());
  const box = await topo.host('box');
  const lan = await topo.host('lan');
  await topo.link(box, 'lan0', lan, 'lan0', { a: ['10.67.0.1/24'], b: ['10.67.0.2/24'] });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-hbfb-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const state = path.join(dir, 'state');
  const board = {
    name: 'hbfb-conc',
    preset: 'concentrator',
    uplinks: [],
    lan: { interfaces: ['lan0'] },
    web: { listen: [{ host: '10.67.0.1', port: 18096 }, { host: '127.0.0.1', port: 18097 }], https: { port: 18443 }, banner: { issueFile: path.join(dir, 'run', 'duocell.issue') } },
    listeners: [{ kind: 'convert', host: '127.0.0.1', port: 15124, mptcp: true, upstream: 'tcp', options: { cookies: ['fb-1'] } }],
    accessNetworks: [],
  };
  fs.writeFileSync(path.join(dir, 'board.json'), JSON.stringify(board));
  const child = box.spawn(process.execPath, [BIN, 'run', '--board', path.join(dir, 'board.json'), '--state-dir', state], { env: { ...process.env, DUOCELL_LOG_LEVEL: 'info' } });
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  t.teardown(() => void child.kill('SIGTERM'));
  for (let i = 0; i < 300; i++) {
    if ((await req(box, 'http://127.0.0.1:18097/api/v1/health')).status === 200) break;
    if (child.exitCode !== null) throw new Error(`duocell run exited: ${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  // What a person at the box reads.
  const secretFile = path.join(state, 'first-boot', 'setup-secret');
  const secret = fs.readFileSync(secretFile, 'utf8').trim();
  t.match(secret, /^[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}$/, 'a 4×4 base32 secret');
  t.equal(fs.statSync(secretFile).mode & 0o777, 0o600, 'the secret file is 0600');
  t.equal(fs.statSync(path.join(state, 'tls', 'key.pem')).mode & 0o777, 0o600, 'the TLS key is 0600');
  const fp = new X509Certificate(fs.readFileSync(path.join(state, 'tls', 'cert.pem'))).fingerprint256;
  const issue = fs.readFileSync(path.join(dir, 'run', 'duocell.issue'), 'utf8');
  t.match(issue, `first-boot set-up secret: ${secret}`, 'the login banner shows the secret');
  t.match(issue, `certificate SHA-256 fingerprint: ${fp}`, 'and the certificate fingerprint beside it');
  t.match(issue, 'https://10.67.0.1:18443/', 'and where the page is');
  t.notMatch(log, secret, 'the secret is not in the log');

  // Plain HTTP on the LAN only redirects; HTTPS serves the page with the device certificate.
  const plain = await req(lan, 'http://10.67.0.1:18096/api/v1/auth/state?x=1');
  t.equal(plain.status, 308, 'plain HTTP on the LAN redirects');
  t.equal(plain.headers.location, 'https://10.67.0.1:18443/api/v1/auth/state?x=1', 'to HTTPS on the same address');
  const spoofed = await req(lan, 'http://10.67.0.1:18096/', { headers: { host: 'evil.example' } });
  t.equal(spoofed.headers.location, 'https://10.67.0.1:18443/', 'never to the Host header');
  const st = await req(lan, 'https://10.67.0.1:18443/api/v1/auth/state');
  t.equal(st.status, 200, 'HTTPS serves the API');
  t.equal(st.fingerprint, fp, 'with the device certificate (fingerprint as on the banner)');
  const state0 = JSON.parse(st.body) as { setUp: boolean; firstBootSecretRequired: boolean; csrf: string };
  t.same([state0.setUp, state0.firstBootSecretRequired], [false, true], 'not set up; the secret is required');

  // Until set-up is done only set-up is served.
  const early = await req(lan, 'https://10.67.0.1:18443/api/v1/paths');
  t.equal(early.status, 409, 'other routes refused before set-up');
  t.match(early.body, /DC_WEB_NOT_SET_UP/);

  const setup = (body: object): Promise<Answer> =>
    req(lan, 'https://10.67.0.1:18443/api/v1/auth/setup', { method: 'POST', headers: { cookie: st.headers['set-cookie'] ?? '', 'x-csrf-token': state0.csrf, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const none = await setup({ password: 'correct horse battery staple' });
  t.equal(none.status, 403, 'set-up without the secret is refused');
  t.match(none.body, /DC_WEB_FIRST_BOOT_SECRET/);
  const wrong = await setup({ password: 'correct horse battery staple', secret: 'AAAA-AAAA-AAAA-AAAA' });
  t.equal(wrong.status, 403, 'set-up with a wrong secret is refused');
  const typed = secret.toLowerCase().replace(/-/g, ' ');
  const ok = await setup({ password: 'correct horse battery staple', secret: typed });
  t.equal(ok.status, 200, `set-up with the secret as a person types it is accepted (${ok.body})`);
  t.notMatch(fs.readFileSync(path.join(dir, 'run', 'duocell.issue'), 'utf8'), secret, 'once set up, the banner no longer shows the secret');

  // /metrics needs its token.
  const token = fs.readFileSync(path.join(state, 'first-boot', 'metrics-token'), 'utf8').trim();
  t.equal((await req(lan, 'https://10.67.0.1:18443/metrics')).status, 401, '/metrics without the token: refused');
  t.equal((await req(box, 'http://127.0.0.1:18097/metrics')).status, 401, 'on loopback too');
  const m = await req(lan, 'https://10.67.0.1:18443/metrics', { headers: { authorization: `Bearer ${token}` } });
  t.equal(m.status, 200, '/metrics with the token');
  t.match(m.body, /duocell_build_info/);

  // `duocell first-boot` shows it all to root on the box.
  const shown = JSON.parse(await box.exec(process.execPath, [BIN, 'first-boot', '--json', '--state-dir', state])) as { setupSecret: string | null; metricsToken: string | null; fingerprint: string | null };
  t.same(shown, { setupSecret: secret, metricsToken: token, fingerprint: fp }, '`duocell first-boot --json`');

  // A restart keeps the same per-device values.
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  t.equal(fs.readFileSync(secretFile, 'utf8').trim(), secret, 'the secret is per device: kept across restarts');
});

import { execFile } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import type { BoardProfile } from '../core/board.js';
import { DuocellError } from '../core/errors.js';
import { logger } from '../core/logger.js';
import { canonicalAddress } from '../core/net.js';
import { formatSecret, generateSetupSecret, normalizeSecret } from '../web/secret.js';

/**
 * First boot as appliances do it (issue 16, item 1). At the first start, per device, in the
 * state directory (0700; files 0600):
 *   first-boot/setup-secret   the set-up secret (web/secret.ts format), asked by the set-up page
 *   first-boot/metrics-token  the bearer token of /metrics
 *   tls/key.pem, tls/cert.pem a self-signed certificate (P-256), made with `openssl req -x509`
 *   first-boot/banner.txt     what a person at the box reads: secret (until set-up is done),
 *                             the page's addresses, the certificate's SHA-256 fingerprint
 * The banner also goes to the board's `web.banner.issueFile` (agetty's login banner through
 * /run/issue.d) and, on the image, to the boot partition (the unit copies it: ExecStartPost).
 *
 *   listen (board)            →  sockets
 *   loopback host:port        →  the page, plain HTTP
 *   LAN host:port             →  the page, plain HTTP            (no web.https)
 *                             →  308 to https://host:P/…         (web.https, plainHttp "redirect")
 *                             +  HTTPS on host:P with the cert   (web.https)
 */
const log = logger('duocell:first-boot');
const run = promisify(execFile);

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  // by value: `::1`, `0:0:0:0:0:0:0:1`, `::ffff:127.0.0.1`, `::ffff:7f00:1` …
  const a = canonicalAddress(host);
  return a === '::1' || (a !== undefined && net.isIPv4(a) && a.startsWith('127.'));
}

export interface WebSocketSpec {
  host: string;
  port: number;
  /** Serve HTTPS with this key and certificate (PEM). */
  tls?: { key: string; cert: string };
  /** Answer every request with a redirect to HTTPS on this port of the same address. */
  redirectTo?: number;
}

export interface WebSecurity {
  readonly setupSecret: string | undefined;
  readonly metricsToken: string | undefined;
  readonly tls: { key: string; cert: string; fingerprint: string } | undefined;
  readonly listen: WebSocketSpec[];
  /** The text of the banner now. */
  banner(setUp: boolean): string;
  /** Write the banner (state dir, issue file); called at start and once set-up is done. */
  writeBanner(setUp: boolean): void;
}

function readOrCreate(file: string, make: () => string, valid: (s: string) => boolean): string {
  try {
    const have = fs.readFileSync(file, 'utf8').trim();
    if (valid(have)) return have;
    log.warn({ file }, 'unreadable first-boot value: made a new one');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new DuocellError('DC_CONFIG_INVALID', `cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  const v = make();
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, `${v}\n`, { mode: 0o600 });
  fs.renameSync(tmp, file);
  return v;
}

/** A self-signed certificate for the box, made once (openssl from Debian's openssl package). */
export async function deviceCertificate(dir: string, names: { ips: string[]; cn: string }): Promise<{ key: string; cert: string; fingerprint: string }> {
  const keyFile = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  const load = (): { key: string; cert: string; fingerprint: string } => {
    const cert = fs.readFileSync(certFile, 'utf8');
    return { key: fs.readFileSync(keyFile, 'utf8'), cert, fingerprint: new X509Certificate(cert).fingerprint256 };
  };
  try {
    return load();
  } catch {
    /* make it */
  }
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const san = ['DNS:duocell.lan', ...names.ips.map((ip) => `IP:${ip}`)].join(',');
  const [k, c] = [`${keyFile}.tmp`, `${certFile}.tmp`];
  try {
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-sha256', '-days', '3650', '-subj', `/CN=${names.cn}`, '-addext', `subjectAltName=${san}`, '-keyout', k, '-out', c], { timeout: 60_000 });
    fs.chmodSync(k, 0o600);
    fs.renameSync(k, keyFile);
    fs.renameSync(c, certFile);
  } catch (e) {
    fs.rmSync(k, { force: true });
    fs.rmSync(c, { force: true });
    const err = e as { stderr?: string; message: string };
    throw new DuocellError('DC_FIRST_BOOT_TLS', `cannot make the device certificate with openssl: ${(err.stderr ?? err.message).trim()}`, { cause: e, origin: 'local' });
  }
  log.info({ fingerprint: load().fingerprint }, 'device certificate made (first start)');
  return load();
}

/** Read or make the box's first-boot values and derive the web sockets from the board. */
export async function prepareWebSecurity(board: BoardProfile, stateDir: string, listenOverride?: Array<{ host: string; port: number }>): Promise<WebSecurity> {
  const w = board.web;
  const listenIn = listenOverride ?? w.listen;
  const exposed = listenIn.some((l) => !isLoopback(l.host));
  const fb = path.join(stateDir, 'first-boot');
  const setupSecret = (w.setupSecret ?? (exposed ? 'generate' : 'none')) === 'generate' ? readOrCreate(path.join(fb, 'setup-secret'), () => generateSetupSecret(), (s) => normalizeSecret(s) !== undefined) : undefined;
  const metricsToken = (w.metricsToken ?? (exposed ? 'generate' : 'none')) === 'generate' ? readOrCreate(path.join(fb, 'metrics-token'), () => randomBytes(24).toString('base64url'), (s) => /^[A-Za-z0-9_-]{16,}$/.test(s)) : undefined;
  let tls: { key: string; cert: string; fingerprint: string } | undefined;
  if (w.https !== undefined) {
    try {
      tls = await deviceCertificate(path.join(stateDir, 'tls'), { ips: [...new Set(listenIn.map((l) => l.host).filter((h) => net.isIP(h) !== 0 && h !== '0.0.0.0' && h !== '::'))], cn: `duocell ${typeof board.cellId === 'string' ? board.cellId : board.name}` });
    } catch (e) {
      // No certificate: the page stays on plain HTTP (the set-up secret still guards it).
      log.error({ code: 'DC_FIRST_BOOT_TLS', err: (e as Error).message }, 'no HTTPS: the page is served on plain HTTP');
    }
  }
  const listen: WebSocketSpec[] = [];
  for (const l of listenIn) {
    if (tls === undefined || w.https === undefined || isLoopback(l.host)) {
      listen.push({ host: l.host, port: l.port });
      continue;
    }
    listen.push(w.plainHttp === 'serve' ? { host: l.host, port: l.port } : { host: l.host, port: l.port, redirectTo: w.https.port });
  }
  if (tls !== undefined && w.https !== undefined) {
    for (const h of new Set(listenIn.filter((l) => !isLoopback(l.host)).map((l) => l.host))) listen.push({ host: h, port: w.https.port, tls: { key: tls.key, cert: tls.cert } });
  }
  const urls = (): string[] =>
    listen
      .filter((l) => l.redirectTo === undefined && !isLoopback(l.host))
      .map((l) => `${l.tls !== undefined ? 'https' : 'http'}://${net.isIPv6(l.host) ? `[${l.host}]` : l.host}${(l.tls !== undefined && l.port === 443) || (l.tls === undefined && l.port === 80) ? '' : `:${l.port}`}/`);
  const banner = (setUp: boolean): string => {
    const lines = ['duocell web page: ' + (urls().join('  ') || 'on this box only (loopback)')];
    if (!setUp && setupSecret !== undefined) lines.push(`first-boot set-up secret: ${formatSecret(setupSecret)}`);
    if (setUp) lines.push('set-up is done (the set-up secret is no longer used)');
    if (tls !== undefined) lines.push(`certificate SHA-256 fingerprint: ${tls.fingerprint}`);
    return lines.join('\n') + '\n';
  };
  const writeBanner = (setUp: boolean): void => {
    const text = banner(setUp);
    try {
      fs.mkdirSync(fb, { recursive: true, mode: 0o700 });
      fs.writeFileSync(path.join(fb, 'banner.txt'), text, { mode: 0o600 });
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'cannot write the first-boot banner');
    }
    const issue = w.banner?.issueFile;
    if (issue !== undefined) {
      try {
        // agetty reads backslash escapes in issue files: the text has none (base32, hex, URLs).
        fs.mkdirSync(path.dirname(issue), { recursive: true });
        fs.writeFileSync(issue, `\n${text}\n`, { mode: 0o644 });
      } catch (e) {
        log.warn({ file: issue, err: (e as Error).message }, 'cannot write the login banner');
      }
    }
  };
  return { setupSecret, metricsToken, tls, listen, banner, writeBanner };
}

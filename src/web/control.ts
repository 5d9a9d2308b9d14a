import fs from 'node:fs';
import http from 'node:http';
import { logger } from '../core/logger.js';
import type { WebDeps } from './deps.js';

/**
 * The local control socket: a unix socket in the state directory (mode 0600, so only the
 * service's own user and root reach it) answering the read views the `duocell status | sessions
 * | paths` commands print. No cookie, no CSRF: nothing here changes state, and file permissions
 * are the authentication. The LAN-facing page and API stay behind their login.
 */
const log = logger('duocell:control');

export interface ControlServer {
  close(): Promise<void>;
}

/** The one mutating control call: the AT pass-through (`duocell modem at`), see drivers/modem/at-passthrough.ts. */
export type ModemAtCall = (body: unknown) => Promise<{ lines: readonly string[]; final: string; finalText?: string }>;

export async function startControlSocket(deps: Pick<WebDeps, 'health' | 'sessions' | 'paths' | 'modem' | 'pathManager'> & Partial<Pick<WebDeps, 'proxies' | 'udp'>>, socketPath: string, modemAt?: ModemAtCall): Promise<ControlServer> {
  try {
    fs.unlinkSync(socketPath);
  } catch {
    /* none left over */
  }
  const views: Record<string, () => unknown> = {
    '/status': () => ({ health: deps.health(), paths: deps.paths(), modem: deps.modem?.() ?? null, sessions: deps.sessions().length }),
    '/sessions': () => deps.sessions(),
    '/paths': () => deps.paths(),
    '/proxies': () => deps.proxies?.() ?? [],
    '/udp': () => (deps.udp === undefined ? { enabled: false, flows: [] } : deps.udp()),
    '/pm': () => (deps.pathManager === undefined ? { mode: 'kernel', endpoints: {}, connections: [], stats: {}, limits: {} } : deps.pathManager()),
  };
  const server = http.createServer((req, res) => {
    // POST /modem/at: one AT command through the service's own AT queue (owner-only socket)
    if (req.method === 'POST' && req.url === '/modem/at') {
      modemAtRoute(req, res, modemAt);
      return;
    }
    const view = req.method === 'GET' ? views[req.url ?? ''] : undefined;
    if (view === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'DC_HTTP_NOT_FOUND', message: `no control view ${req.method} ${req.url}` } }));
      return;
    }
    Promise.resolve()
      .then(view)
      .then(
        (v) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(v));
        },
        (e: unknown) => {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: { code: 'DC_INTERNAL', message: (e as Error).message } }));
        },
      );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  fs.chmodSync(socketPath, 0o600);
  log.info({ socketPath }, 'control socket listening');
  return {
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        try {
          fs.unlinkSync(socketPath);
        } catch {
          /* gone */
        }
      }),
  };
}

function modemAtRoute(req: http.IncomingMessage, res: http.ServerResponse, call: ModemAtCall | undefined): void {
  const send = (status: number, v: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(v));
  };
  let body = '';
  let tooBig = false;
  req.setEncoding('utf8');
  req.on('data', (d: string) => {
    if (tooBig) return;
    body += d;
    if (body.length > 4096) tooBig = true;
  });
  req.on('end', () => {
    if (tooBig) return send(400, { error: { code: 'DC_MODEM_AT_REFUSED', message: 'request body over 4096 bytes' } });
    if (call === undefined) return send(503, { error: { code: 'DC_MODEM_CLOSED', message: 'this box has no modem' } });
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return send(400, { error: { code: 'DC_MODEM_AT_REFUSED', message: 'the body must be JSON: {"command": "AT…", "timeoutMs"?: n}' } });
    }
    call(parsed).then(
      (r) => send(200, r),
      (e: unknown) => {
        const code = (e as { code?: string }).code ?? 'DC_INTERNAL';
        const status = code === 'DC_MODEM_AT_REFUSED' ? 400 : code === 'DC_AT_TIMEOUT' ? 504 : code === 'DC_MODEM_CLOSED' || code === 'DC_MODEM_PORT' ? 503 : 500;
        send(status, { error: { code, message: (e as Error).message } });
      },
    );
  });
}

/** Send one AT command through the running service (the CLI's `duocell modem at`). */
export function postModemAt(socketPath: string, command: string, timeoutMs: number): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify({ command, timeoutMs });
    const req = http.request({ socketPath, path: '/modem/at', method: 'POST', timeout: timeoutMs + 35_000, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) });
        } catch (e) {
          reject(e);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('control socket timed out')));
    req.on('error', reject);
    req.end(payload);
  });
}

/** Read one control view (used by the CLI). */
export function readControl(socketPath: string, view: '/status' | '/sessions' | '/paths' | '/pm' | '/proxies' | '/udp', timeoutMs = 5000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: view, method: 'GET', timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body));
        } catch (e) {
          reject(e);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('control socket timed out')));
    req.on('error', reject);
    req.end();
  });
}

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

export async function startControlSocket(deps: Pick<WebDeps, 'health' | 'sessions' | 'paths' | 'modem' | 'pathManager'> & Partial<Pick<WebDeps, 'proxies'>>, socketPath: string): Promise<ControlServer> {
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
    '/pm': () => (deps.pathManager === undefined ? { mode: 'kernel', endpoints: {}, connections: [], stats: {}, limits: {} } : deps.pathManager()),
  };
  const server = http.createServer((req, res) => {
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

/** Read one control view (used by the CLI). */
export function readControl(socketPath: string, view: '/status' | '/sessions' | '/paths' | '/pm' | '/proxies', timeoutMs = 5000): Promise<unknown> {
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

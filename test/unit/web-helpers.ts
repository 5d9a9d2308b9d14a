// Shared by the web tests: a server on 127.0.0.1 port 0 with fake deps, and a tiny HTTP
// client that keeps cookies and the CSRF token like the page does.
import { createFakeDeps, type FakeDeps } from '../helpers/fake-deps.js';
import { createWebServer, type WebServer, type WebServerOptions } from '../../src/web/server.js';
import type { WebDeps } from '../../src/web/deps.js';

export interface Harness {
  deps: FakeDeps;
  server: WebServer;
  base: string;
  client(): Client;
  close(): Promise<void>;
}

export async function startServer(
  opts: Partial<WebServerOptions> = {},
  tweak: (d: FakeDeps) => WebDeps = (d) => d,
): Promise<Harness> {
  const deps = createFakeDeps({ tickMs: 0 });
  deps.tick();
  const server = await createWebServer(tweak(deps), {
    listen: [{ host: '127.0.0.1', port: 0 }],
    auth: { scryptN: 1024 },
    sampleMs: 60_000,
    system: async () => ({
      cpuTempC: 48.5,
      load: [0.1, 0.2, 0.3],
      cpuPercent: 12,
      cores: 4,
      memory: { totalBytes: 4e9, usedBytes: 1e9, availableBytes: 3e9 },
      disks: [{ mount: '/', sizeBytes: 32e9, usedBytes: 8e9, usePercent: 25 }],
      uptimeS: 3600,
      processUptimeS: 60,
      rssBytes: 80e6,
    }),
    ...opts,
  });
  const base = `http://127.0.0.1:${server.addresses()[0]!.port}`;
  return {
    deps,
    server,
    base,
    client: () => new Client(base),
    async close() {
      deps.stop();
      await server.close();
    },
  };
}

export interface Res {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

export class Client {
  cookies = new Map<string, string>();
  csrf = '';
  constructor(readonly base: string) {}

  async req(method: string, path: string, body?: unknown, extra: { headers?: Record<string, string>; raw?: Buffer | string; csrf?: boolean } = {}): Promise<Res> {
    const headers: Record<string, string> = { ...extra.headers };
    if (this.cookies.size > 0) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    if (method !== 'GET' && extra.csrf !== false && this.csrf !== '') headers['x-csrf-token'] = this.csrf;
    let payload: string | Buffer | undefined;
    if (extra.raw !== undefined) payload = extra.raw;
    else if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] ??= 'application/json';
    }
    const r = await fetch(this.base + path, { method, headers, ...(payload !== undefined ? { body: typeof payload === 'string' ? payload : new Uint8Array(payload) } : {}) });
    for (const c of r.headers.getSetCookie()) {
      const [kv] = c.split(';');
      const i = kv!.indexOf('=');
      const k = kv!.slice(0, i);
      const v = kv!.slice(i + 1);
      if (v === '' || /expires=Thu, 01 Jan 1970/i.test(c)) this.cookies.delete(k);
      else this.cookies.set(k, v);
    }
    const text = await r.text();
    let parsed: unknown = undefined;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: r.status, headers: r.headers, body: parsed, text };
  }

  get = (path: string) => this.req('GET', path);

  /** auth/state, then set-up; leaves the client logged in. */
  async setup(password = 'a-good-password', secret?: string): Promise<Res> {
    const s = await this.get('/api/v1/auth/state');
    this.csrf = s.body.csrf;
    const r = await this.req('POST', '/api/v1/auth/setup', secret === undefined ? { password } : { password, secret });
    if (r.status === 200) this.csrf = r.body.csrf;
    return r;
  }

  async login(password = 'a-good-password'): Promise<Res> {
    const s = await this.get('/api/v1/auth/state');
    this.csrf = s.body.csrf;
    const r = await this.req('POST', '/api/v1/auth/login', { password });
    if (r.status === 200) this.csrf = r.body.csrf;
    return r;
  }
}

export const goodPolicy = () => ({
  limits: { maxSessions: 8, maxSubflows: 2, maxSessionsPerServer: 16 },
  allowedAccess: ['cellular', 'wlan'],
  allowedNetworks: ['192.0.2.0/24', '2001:db8::/32'],
  steering: { mode: 'ratio', primary: 'wlan', ratio: { cellular: 30, wlan: 70 } },
});

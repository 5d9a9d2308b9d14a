// Fuzz the whole HTTP pipeline (Host guard, auth gate, CSRF, body parsers, JSON schemas,
// semantic validation, routes, error handler) by injecting random requests into the app
// (no sockets). Every refusal must be an `{error:{code,message}}` with a listed code and that
// code's status; nothing may answer DC_INTERNAL, hang, or grow without bound.
import { CODES } from '../../src/core/codes.js';
import { DuocellError } from '../../src/core/errors.js';
import { createFakeDeps } from '../../test/helpers/fake-deps.js';
import { buildWebApp } from '../../src/web/server.js';
import { httpStatus } from '../../src/web/status.js';

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const ROUTES: Array<[string, string]> = [
  ['GET', '/api/v1/paths'],
  ['GET', '/api/v1/sessions'],
  ['GET', '/api/v1/subscribers'],
  ['GET', '/api/v1/subscribers/sub-1'],
  ['POST', '/api/v1/subscribers'],
  ['PUT', '/api/v1/subscribers/sub-1'],
  ['PUT', '/api/v1/subscribers/sub-2'],
  ['DELETE', '/api/v1/subscribers/sub-999'],
  ['GET', '/api/v1/policy'],
  ['PUT', '/api/v1/policy'],
  ['POST', '/api/v1/ota/bundle'],
  ['POST', '/api/v1/auth/login'],
  ['POST', '/api/v1/auth/setup'],
  ['PUT', '/api/v1/auth/password'],
  ['PUT', '/api/v1/log-level'],
  ['GET', '/api/v1/health'],
  ['GET', '/api/v1/nope'],
  ['PATCH', '/api/v1/policy'],
];

const STRINGS = ['', 'x', '192.0.2.1', '192.0.2.0/24', '2001:db8::/32', '::', '300.0.0.1', '1.2.3.4/33', 'fe80::1%eth0', '02:00:00:00:00:01', 'ratio', 'active-standby', 'wlan', 'cellular', '__proto__', 'constructor', '\u0000', '😀', 'a'.repeat(70), '${x}', "'; rm -rf /", 'silent'];

export async function fuzz(iterations: number, seed = 1): Promise<{ iterations: number; rejected: Record<string, number> }> {
  const rnd = mulberry32(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const int = (n: number) => Math.floor(rnd() * n);

  const randomValue = (depth: number): unknown => {
    switch (int(depth > 3 ? 5 : 8)) {
      case 0:
        return pick(STRINGS);
      case 1:
        return pick([0, 1, -1, 50, 100, 101, 1e9, 2.5, Number.MAX_SAFE_INTEGER]);
      case 2:
        return rnd() < 0.5;
      case 3:
        return null;
      case 4:
        return pick(STRINGS) + String(int(1000));
      case 5:
        return Array.from({ length: int(4) }, () => randomValue(depth + 1));
      default: {
        const o: Record<string, unknown> = {};
        for (let i = int(4); i > 0; i--) o[pick(['name', 'identifiers', 'policy', 'limits', 'steering', 'ratio', 'defaults', 'password', 'level', '__proto__', 'x'])] = randomValue(depth + 1);
        return o;
      }
    }
  };

  const valid = () => ({
    name: `fz-${int(1e6)}`,
    enabled: true,
    identifiers: { addresses: ['192.0.2.1'], macs: [] as string[] },
    policy: {
      limits: { maxSessions: 4, maxSubflows: 2, maxSessionsPerServer: 8 },
      allowedAccess: ['cellular', 'wlan'],
      allowedNetworks: [] as string[],
      steering: { mode: 'ratio', primary: 'wlan', ratio: { cellular: 30, wlan: 70 } },
    },
  });

  /** Replace one leaf (or subtree) of a valid body at random. */
  const mutate = (o: unknown): unknown => {
    if (o === null || typeof o !== 'object' || rnd() < 0.25) return randomValue(2);
    const c = Array.isArray(o) ? [...o] : { ...(o as Record<string, unknown>) };
    const keys = Object.keys(c);
    if (keys.length === 0 || rnd() < 0.1) {
      (c as Record<string, unknown>)[pick(['extra', '__proto__', 'constructor', '0'])] = randomValue(2);
      return c;
    }
    const k = pick(keys);
    if (rnd() < 0.1) delete (c as Record<string, unknown>)[k];
    else (c as Record<string, unknown>)[k] = mutate((c as Record<string, unknown>)[k]);
    return c;
  };

  const deps = createFakeDeps({ tickMs: 0 });
  const web = await buildWebApp(deps, { auth: { scryptN: 1024 }, system: async () => ({ cpuTempC: null, load: [0, 0, 0], cpuPercent: null, cores: 1, memory: { totalBytes: 1, usedBytes: 0, availableBytes: 1 }, disks: [], uptimeS: 0, processUptimeS: 0, rssBytes: 0 }) });
  const { app } = web;
  const rejected: Record<string, number> = {};
  try {
    // A logged-in admin, so half the traffic gets past the auth gate.
    const st = await app.inject({ method: 'GET', url: '/api/v1/auth/state' });
    const pre = /dc_pre=([^;]+)/.exec(String(st.headers['set-cookie']))![1]!;
    const setup = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/setup',
      headers: { cookie: `dc_pre=${pre}`, 'x-csrf-token': st.json().csrf, 'content-type': 'application/json' },
      payload: JSON.stringify({ password: 'fuzz-admin-password' }),
    });
    if (setup.statusCode !== 200) throw new DuocellError('DC_INTERNAL', `fuzz set-up failed: ${setup.body}`);
    const session = /dc_session=([^;]+)/.exec(String(setup.headers['set-cookie']))![1]!;
    const csrf = setup.json().csrf as string;

    for (let i = 0; i < iterations; i++) {
      const [method, url0] = pick(ROUTES);
      const url = rnd() < 0.05 ? url0.replace(/sub-\d+/, encodeURIComponent(pick(STRINGS)) || 'x') : url0;
      const headers: Record<string, string> = {};
      const authed = rnd() < 0.6;
      if (authed) headers.cookie = `dc_session=${session}; dc_pre=${pre}`;
      else if (rnd() < 0.3) headers.cookie = `dc_session=${pick(STRINGS)}`;
      if (rnd() < 0.8) headers['x-csrf-token'] = rnd() < 0.8 ? (url.includes('/auth/login') || url.includes('/auth/setup') ? pre : csrf) : pick(STRINGS);
      if (rnd() < 0.05) headers.host = pick(['evil.example', '[::1', '', 'localhost:1']);
      let payload: string | Buffer | undefined;
      if (method !== 'GET' && method !== 'DELETE') {
        const r = rnd();
        const body = r < 0.5 ? mutate(url.includes('/policy') ? { defaults: valid().policy } : valid()) : r < 0.7 ? randomValue(0) : undefined;
        payload = body === undefined ? (rnd() < 0.5 ? '{"broken":' : Buffer.from(Array.from({ length: int(64) }, () => int(256)))) : JSON.stringify(body);
        headers['content-type'] = pick(['application/json', 'application/json', 'application/json; charset=utf-8', 'text/plain', 'application/octet-stream', 'multipart/form-data']);
      }
      const res = await Promise.race([
        app.inject({ method: method as 'GET', url, headers, ...(payload !== undefined ? { payload } : {}) }),
        new Promise<never>((_, reject) => setTimeout(() => reject(new DuocellError('DC_TIMEOUT', `request ${i} hung: ${method} ${url}`)), 5000).unref()),
      ]);
      if (res.statusCode < 400) continue;
      let code: string | undefined;
      try {
        code = (res.json() as { error?: { code?: string } }).error?.code;
      } catch {
        throw new DuocellError('DC_INTERNAL', `request ${i} (${method} ${url}) answered ${res.statusCode} without a JSON error: ${res.body.slice(0, 200)}`);
      }
      if (code === undefined || !(code in CODES)) throw new DuocellError('DC_INTERNAL', `request ${i} (${method} ${url}) answered an unlisted code ${String(code)}`);
      if (code === 'DC_INTERNAL') throw new DuocellError('DC_INTERNAL', `request ${i} (${method} ${url}) hit an internal error; payload ${String(payload).slice(0, 200)}`);
      if (res.statusCode !== httpStatus(code)) throw new DuocellError('DC_INTERNAL', `request ${i}: ${code} answered ${res.statusCode}, not ${httpStatus(code)}`);
      rejected[code] = (rejected[code] ?? 0) + 1;
    }
    // No unbounded growth in the web layer's own state.
    if (web.auth.sessionCount > 16) throw new DuocellError('DC_INTERNAL', `sessions grew to ${web.auth.sessionCount}`);
    if (web.auth.limiter.keys > 4096) throw new DuocellError('DC_INTERNAL', 'limiter keys unbounded');
    if (web.hub.size !== 0) throw new DuocellError('DC_INTERNAL', 'event streams left open');
  } finally {
    web.stop();
    deps.stop();
    await app.close();
  }
  return { iterations, rejected };
}

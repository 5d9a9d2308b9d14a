import { existsSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { isIP, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import fastifyCookie from '@fastify/cookie';
import fastifyStatic from '@fastify/static';
import fastifySwagger from '@fastify/swagger';
import type { ErrorObject } from 'ajv';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { DuocellError, isDuocellError } from '../core/errors.js';
import { logger } from '../core/logger.js';
import { addFormats, issuesOf, toField, type FieldError } from '../core/schema.js';
import { Auth, newToken, safeEqual } from './auth.js';
import type { WebDeps } from './deps.js';
import { EventHub, ThroughputSampler } from './live.js';
import { createMetrics } from './metrics.js';
import { registerRoutes, type Access } from './routes.js';
import { SHARED_SCHEMAS } from './schemas.js';
import { httpStatus } from './status.js';
import { cachedSystem, type SystemView } from './system.js';

/**
 * The web server: the HTTP API of DESIGN.md, the page's static files, /metrics and the event
 * stream, on exactly the addresses given (the board's LAN and loopback, never an uplink).
 *
 *   request ─► Host check ─► access check (public | pre + CSRF | session + CSRF) ─► schema
 *           ─► route ─► deps (services) ─► response schema ─► security headers
 *   any throw ─► DuocellError code ─► status (status.ts) ─► {error:{code,message}}
 */

const log = logger('duocell:web');

export interface WebServerOptions {
  /**
   * Where to listen; each entry is one socket. Give the LAN and loopback addresses only.
   * `tls`: HTTPS with this key and certificate; `redirectTo`: only a redirect to HTTPS on that port.
   */
  listen: Array<{ host: string; port: number; tls?: { key: string; cert: string }; redirectTo?: number }>;
  /** Called once the first-boot set-up has set the admin password. */
  onSetUp?: () => void;
  /** The page's files (default: src/web/ui next to this module, or in the source tree). */
  staticDir?: string;
  /** A board-provided secret the first-boot set-up must present. */
  firstBootSecret?: string;
  /** Host names (besides IP literals and localhost) the page may be reached by, e.g. duocell.lan. */
  allowedHosts?: string[];
  /** Require `Authorization: Bearer TOKEN` on /metrics. */
  metricsToken?: string;
  /** Throughput sample interval (default 1000 ms) and how many samples to keep (default 300). */
  sampleMs?: number;
  historySize?: number;
  /** Largest OTA bundle accepted (default 16 MiB). */
  bundleLimit?: number;
  /** Auth tuning (tests). */
  auth?: { scryptN?: number; perClientFailures?: number; globalFailures?: number; windowMs?: number; idleMs?: number; maxAgeMs?: number; sweepMs?: number };
  /** Override the system-health reader (tests). */
  system?: () => Promise<SystemView>;
  /** Coalescing of deps events into SSE events (default 500 ms). */
  coalesceMs?: number;
  /** Most event-stream clients at once (default 16). */
  maxEventClients?: number;
}

export interface WebServer {
  close(): Promise<void>;
  addresses(): Array<{ host: string; port: number }>;
}

export const SESSION_COOKIE = 'dc_session';
export const PRE_COOKIE = 'dc_pre';
export const CSRF_HEADER = 'x-csrf-token';

export const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/** The page's files: beside this module when running from src/, else in the source tree. */
export function defaultStaticDir(): string {
  const here = fileURLToPath(new URL('./ui/', import.meta.url));
  if (existsSync(`${here}index.html`)) return here;
  // dist/src/web/server.js → <root>/src/web/ui/
  return fileURLToPath(new URL('../../../src/web/ui/', import.meta.url));
}

/** Host header check against DNS rebinding: IP literals, localhost, or a configured name. */
export function hostAllowed(host: string | undefined, allowed: ReadonlySet<string>): boolean {
  if (host === undefined || host.length === 0 || host.length > 255) return false;
  let name = host;
  if (name.startsWith('[')) {
    const end = name.indexOf(']');
    if (end === -1) return false;
    return isIP(name.slice(1, end)) === 6;
  }
  const colon = name.lastIndexOf(':');
  if (colon !== -1) name = name.slice(0, colon);
  name = name.toLowerCase();
  return isIP(name) === 4 || name === 'localhost' || allowed.has(name);
}

function fieldsFromValidation(err: FastifyError): FieldError[] {
  const where = err.validationContext ?? 'body';
  const out = issuesOf((err.validation ?? []) as ErrorObject[]).map((i) => toField(i, where));
  if (out.length === 0) out.push({ path: where, message: err.message });
  return out;
}

/** The app without sockets: createWebServer() listens with it; tests and the fuzzer inject into it. */
export interface WebApp {
  app: FastifyInstance;
  auth: Auth;
  sampler: ThroughputSampler;
  hub: EventHub;
  /** The request handler, for further listening sockets. */
  handler: http.RequestListener;
  /** Stop the sampler and end the event streams (before closing the sockets). */
  stop(): void;
  /** Every route as registered (method, URL pattern): docs/web.md is checked against it. */
  routes: ReadonlyArray<{ method: string; url: string }>;
}

export async function buildWebApp(deps: WebDeps, opts: Omit<WebServerOptions, 'listen'>): Promise<WebApp> {
  const allowedHosts = new Set((opts.allowedHosts ?? []).map((h) => h.toLowerCase()));
  const auth = new Auth({ kv: deps.kv, ...(opts.firstBootSecret !== undefined ? { firstBootSecret: opts.firstBootSecret } : {}), ...(opts.onSetUp !== undefined ? { onSetUp: opts.onSetUp } : {}), ...opts.auth });
  const sampler = new ThroughputSampler(() => deps.paths(), opts.historySize !== undefined ? { historySize: opts.historySize } : {});
  const hub = new EventHub(deps, sampler, {
    ...(opts.coalesceMs !== undefined ? { coalesceMs: opts.coalesceMs } : {}),
    ...(opts.maxEventClients !== undefined ? { maxClients: opts.maxEventClients } : {}),
  });
  const metrics = createMetrics(deps, sampler);

  let handler: http.RequestListener | undefined;
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    serverFactory: (h) => {
      handler = h;
      return http.createServer(h);
    },
    bodyLimit: 64 * 1024,
    forceCloseConnections: true,
    ajv: { customOptions: { allErrors: true, coerceTypes: false, removeAdditional: false, useDefaults: true }, plugins: [addFormats] },
  });

  const routes: Array<{ method: string; url: string }> = [];
  app.addHook('onRoute', (r) => {
    for (const m of Array.isArray(r.method) ? r.method : [r.method]) routes.push({ method: m, url: r.url });
  });
  for (const s of SHARED_SCHEMAS) app.addSchema(s);
  // JSON only (the OTA route takes raw bytes in its own scope).
  app.removeContentTypeParser('text/plain');

  await app.register(fastifyCookie);
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'duocell',
        description: 'HTTP API of a duocell small cell. Errors: {error:{code,message}}; codes in docs/errors.md.',
        version: '1',
      },
      components: {
        securitySchemes: {
          session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE },
          csrf: { type: 'apiKey', in: 'header', name: CSRF_HEADER },
        },
      },
    },
    refResolver: { buildLocalReference: (json, _base, _frag, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });

  // Requests held by each session (event streams, uploads, anything in flight): when the session
  // ends (logout, password change, expiry) they are closed at once, not at their next write.
  const held = new Map<string, Set<http.ServerResponse>>();
  const hold = (id: string, res: http.ServerResponse): void => {
    let set = held.get(id);
    if (set === undefined) held.set(id, (set = new Set()));
    set.add(res);
    res.once('close', () => {
      set.delete(res);
      if (set.size === 0 && held.get(id) === set) held.delete(id);
    });
  };
  const unsubscribeEnd = auth.onSessionsEnded((ids, why) => {
    let closed = 0;
    for (const id of ids) {
      const set = held.get(id);
      if (set === undefined) continue;
      held.delete(id);
      for (const res of set) {
        closed++;
        res.destroy();
      }
    }
    if (closed > 0) log.info({ sessions: ids.length, closed, why }, 'session ended: its open requests closed');
  });
  const sweep = setInterval(() => auth.sweep(), auth.sweepMs);
  sweep.unref();

  const secure = (req: FastifyRequest): boolean => req.protocol === 'https';
  const ctx = {
    deps,
    auth,
    sampler,
    hub,
    metrics,
    system: opts.system ?? cachedSystem(),
    securityHeaders: SECURITY_HEADERS,
    bundleLimit: opts.bundleLimit ?? 16 * 1024 * 1024,
    ...(opts.metricsToken !== undefined ? { metricsToken: opts.metricsToken } : {}),
    sessionToken: (req: FastifyRequest) => req.cookies[SESSION_COOKIE],
    release(req: FastifyRequest, reply: FastifyReply) {
      const id = auth.sessionId(req.cookies[SESSION_COOKIE]);
      if (id !== undefined) held.get(id)?.delete(reply.raw);
    },
    setSessionCookie(reply: FastifyReply, req: FastifyRequest, token: string) {
      reply.setCookie(SESSION_COOKIE, token, { httpOnly: true, sameSite: 'strict', path: '/', secure: secure(req) });
    },
    clearSessionCookie(reply: FastifyReply) {
      reply.clearCookie(SESSION_COOKIE, { path: '/' });
    },
    /** The pre-session CSRF token (double-submit cookie), made when absent. */
    preToken(req: FastifyRequest, reply: FastifyReply): string {
      const have = req.cookies[PRE_COOKIE];
      if (typeof have === 'string' && /^[A-Za-z0-9_-]{43}$/.test(have)) return have;
      const t = newToken();
      reply.setCookie(PRE_COOKIE, t, { httpOnly: true, sameSite: 'strict', path: '/', secure: secure(req) });
      return t;
    },
  };

  // One gate for every request: Host, then who may call the route.
  app.addHook('onRequest', async (req, reply) => {
    const url = req.url;
    if (url !== '/health' && url !== '/api/v1/health' && !hostAllowed(req.headers.host, allowedHosts)) {
      throw new DuocellError('DC_WEB_HOST', `Host '${String(req.headers.host).slice(0, 64)}' is not an address of this box`);
    }
    const access: Access | undefined = req.routeOptions.config?.access;
    if (access === undefined || access === 'public') return;
    const mutating = req.method !== 'GET' && req.method !== 'HEAD';
    if (access === 'pre') {
      const cookie = req.cookies[PRE_COOKIE];
      if (!safeEqual(header(req), cookie)) throw new DuocellError('DC_WEB_CSRF', 'fetch /api/v1/auth/state first and send its csrf token as x-csrf-token');
      return;
    }
    const s = auth.session(req.cookies[SESSION_COOKIE]);
    if (s === undefined) throw new DuocellError(auth.isSetUp() ? 'DC_WEB_AUTH_REQUIRED' : 'DC_WEB_NOT_SET_UP');
    hold(auth.sessionId(req.cookies[SESSION_COOKIE])!, reply.raw);
    if (mutating && !safeEqual(header(req), s.csrf)) throw new DuocellError('DC_WEB_CSRF');
  });

  app.addHook('onSend', async (_req, reply, payload) => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) reply.header(k, v);
    if (reply.getHeader('cache-control') === undefined) reply.header('cache-control', 'no-store');
    return payload;
  });

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.httpRequests.inc({ method: req.method, route, status: String(reply.statusCode) });
    log.debug({ method: req.method, url: req.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'http');
  });

  app.setErrorHandler(async (err: FastifyError | DuocellError, req, reply) => {
    let e: DuocellError;
    let fields: FieldError[] | undefined;
    if (isDuocellError(err)) {
      e = err;
      fields = err.detail.fields as FieldError[] | undefined;
    } else if ((err as FastifyError).validation !== undefined) {
      fields = fieldsFromValidation(err as FastifyError);
      e = new DuocellError('DC_HTTP_BAD_REQUEST', fields.map((f) => `${f.path}: ${f.message}`).join('; '));
    } else {
      const fe = err as FastifyError;
      if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') e = new DuocellError('DC_WEB_PAYLOAD_TOO_LARGE');
      else if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') e = new DuocellError('DC_WEB_UNSUPPORTED_MEDIA', 'send application/json');
      else if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
        e = new DuocellError('DC_HTTP_BAD_REQUEST', fe.message);
      } else {
        req.log.error({ err }, 'unhandled error in a web route');
        e = new DuocellError('DC_INTERNAL', 'internal error (see the log)');
      }
    }
    const status = httpStatus(e.code);
    if (status >= 500) req.log.warn({ code: e.code, err: e.message, url: req.url }, 'web request failed');
    const retry = typeof e.detail.retryAfterS === 'number' ? e.detail.retryAfterS : undefined;
    if (retry !== undefined) reply.header('retry-after', String(retry));
    return reply
      .code(status)
      .type('application/json; charset=utf-8')
      .send({ error: { code: e.code, message: e.message, ...(fields !== undefined ? { fields } : {}), ...(retry !== undefined ? { retryAfterS: retry } : {}) } });
  });

  app.setNotFoundHandler(async (req) => {
    throw new DuocellError('DC_HTTP_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]!.slice(0, 200)}`);
  });

  registerRoutes(app, ctx);

  app.get(
    '/api/v1/openapi.json',
    { config: { access: 'public' }, schema: { tags: ['system'], summary: 'This OpenAPI document', hide: true } },
    async () => app.swagger(),
  );

  await app.register(fastifyStatic, {
    root: opts.staticDir ?? defaultStaticDir(),
    prefix: '/',
    index: 'index.html',
    wildcard: true,
    cacheControl: false,
    setHeaders: (reply) => void reply.header('cache-control', 'no-cache'),
  });

  await app.ready();
  return {
    routes,
    app,
    auth,
    sampler,
    hub,
    handler: handler!,
    stop() {
      clearInterval(sweep);
      unsubscribeEnd();
      sampler.stop();
      hub.close();
    },
  };
}

export async function createWebServer(deps: WebDeps, opts: WebServerOptions): Promise<WebServer> {
  if (opts.listen.length === 0) throw new DuocellError('DC_CONFIG_INVALID', 'the web server needs at least one listen address');
  for (const l of opts.listen) {
    if (isIP(l.host) === 0 && l.host !== 'localhost') throw new DuocellError('DC_CONFIG_INVALID', `web listen host '${l.host}' is not an IP address`);
    if (l.host === '0.0.0.0' || l.host === '::') log.warn({ host: l.host }, 'web server listens on every address, uplinks included');
  }
  const { app, sampler, hub, handler, stop } = await buildWebApp(deps, opts);

  // The first plain address through fastify; any further ones (HTTPS, redirects) as extra
  // sockets on the same handler.
  const extra: Array<http.Server | https.Server> = [];
  const first = opts.listen.find((l) => l.tls === undefined && l.redirectTo === undefined);
  const rest = opts.listen.filter((l) => l !== first);
  if (first !== undefined) await app.listen({ host: first.host, port: first.port });
  else await app.ready();
  try {
    for (const l of rest) {
      const srv =
        l.tls !== undefined
          ? https.createServer({ key: l.tls.key, cert: l.tls.cert, minVersion: 'TLSv1.2' }, handler)
          : http.createServer(l.redirectTo !== undefined ? redirectHandler(l.host, l.redirectTo) : handler);
      extra.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(l.port, l.host, () => {
          srv.off('error', reject);
          resolve();
        });
      });
    }
  } catch (e) {
    for (const s of extra) s.close();
    stop();
    await app.close();
    throw new DuocellError('DC_CONFIG_INVALID', `web server cannot listen: ${(e as Error).message}`, { cause: e });
  }
  sampler.start(opts.sampleMs ?? 1000);

  const servers = (): Array<http.Server | https.Server> => (first === undefined ? extra : [app.server, ...extra]);
  log.info({ listen: addressesOf(servers()) }, 'web server listening');

  let closed = false;
  return {
    addresses: () => addressesOf(servers()),
    async close() {
      if (closed) return;
      closed = true;
      stop();
      await Promise.all(
        extra.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              s.closeAllConnections();
            }),
        ),
      );
      await app.close();
    },
  };
}

function header(req: FastifyRequest): string | undefined {
  const h = req.headers[CSRF_HEADER];
  return typeof h === 'string' ? h : undefined;
}

/** Plain HTTP that only sends the browser to HTTPS on the same address (never to the Host header's). */
export function redirectHandler(host: string, port: number): http.RequestListener {
  const base = `https://${isIP(host) === 6 ? `[${host}]` : host}${port === 443 ? '' : `:${port}`}`;
  return (req, res) => {
    const u = req.url ?? '/';
    const path = u.startsWith('/') && !u.startsWith('//') && /^[\x21-\x7e]*$/.test(u) && u.length <= 2048 ? u : '/';
    res.writeHead(308, { ...SECURITY_HEADERS, location: `${base}${path}`, 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', connection: 'close' });
    res.end(`duocell: the page is at ${base}/\n`);
  };
}

function addressesOf(servers: Array<http.Server | https.Server>): Array<{ host: string; port: number }> {
  const out: Array<{ host: string; port: number }> = [];
  for (const s of servers) {
    const a = s.address() as AddressInfo | null;
    if (a !== null && typeof a === 'object') out.push({ host: a.address, port: a.port });
  }
  return out;
}

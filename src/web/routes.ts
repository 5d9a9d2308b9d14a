import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DuocellError } from '../core/errors.js';
import { getLevel, setLevel } from '../core/logger.js';
import { safeEqual, type Auth } from './auth.js';
import type { PolicyDto, SubscriberInput, WebDeps } from './deps.js';
import type { EventHub, ThroughputSampler } from './live.js';
import type { WebMetrics } from './metrics.js';
import { errors } from './schemas.js';
import type { SystemView } from './system.js';
import { checkPolicyDefaults, checkSubscriber, normaliseSubscriber } from './validate.js';

/**
 * The routes of /api/v1 (DESIGN.md, "HTTP"), plus /health and /metrics at the root.
 *
 * Every route states in `config.access` who may call it:
 *   public   anyone (health, the auth state, the OpenAPI document)
 *   pre      not logged in yet, but with the pre-session CSRF token (set-up, login)
 *   session  a logged-in admin; mutating methods also need the session's CSRF token
 * The checks themselves are in server.ts (one onRequest hook).
 */

export type Access = 'public' | 'pre' | 'session';

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
}

export interface RouteContext {
  deps: WebDeps;
  auth: Auth;
  sampler: ThroughputSampler;
  hub: EventHub;
  metrics: WebMetrics;
  system: () => Promise<SystemView>;
  setSessionCookie(reply: FastifyReply, req: FastifyRequest, token: string): void;
  clearSessionCookie(reply: FastifyReply): void;
  sessionToken(req: FastifyRequest): string | undefined;
  /** This request is no longer held by its session (it ends the session itself and must still be answered). */
  release(req: FastifyRequest, reply: FastifyReply): void;
  preToken(req: FastifyRequest, reply: FastifyReply): string;
  securityHeaders: Record<string, string>;
  metricsToken?: string;
  bundleLimit: number;
}

const API = '/api/v1';
const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._:-]+$' } },
} as const;

const arrayOf = (ref: string) => ({ type: 'array', items: { $ref: `${ref}#` } }) as const;

export function registerRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { deps, auth } = ctx;
  const authState = (req: FastifyRequest, reply: FastifyReply) => {
    const s = auth.session(ctx.sessionToken(req));
    return {
      setUp: auth.isSetUp(),
      loggedIn: s !== undefined,
      firstBootSecretRequired: auth.firstBootSecretRequired && !auth.isSetUp(),
      csrf: s?.csrf ?? ctx.preToken(req, reply),
    };
  };

  // ---- public --------------------------------------------------------------------------
  const healthRoute = {
    config: { access: 'public' as const },
    schema: { tags: ['system'], summary: 'Liveness and readiness (no auth)', response: { 200: { $ref: 'Health#' }, ...errors(500) } },
  };
  const health = async () => deps.health();
  app.get(`${API}/health`, healthRoute, health);
  app.get('/health', { ...healthRoute, schema: { ...healthRoute.schema, hide: true } }, health);

  app.get(
    '/metrics',
    {
      config: { access: 'public' },
      schema: {
        tags: ['system'],
        summary: 'Prometheus metrics (text exposition format)',
        produces: ['text/plain'],
        response: { 200: { type: 'string' }, ...errors(401) },
      },
    },
    async (req, reply) => {
      if (ctx.metricsToken !== undefined && !safeEqual(req.headers.authorization, `Bearer ${ctx.metricsToken}`)) {
        throw new DuocellError('DC_WEB_AUTH_REQUIRED', 'a bearer token is needed for /metrics');
      }
      const text = await ctx.metrics.text();
      return reply.type(ctx.metrics.contentType).send(text);
    },
  );

  // ---- auth ----------------------------------------------------------------------------
  app.get(
    `${API}/auth/state`,
    {
      config: { access: 'public' },
      schema: { tags: ['auth'], summary: 'Whether a password is set and this client is logged in; the CSRF token', response: { 200: { $ref: 'AuthState#' } } },
    },
    async (req, reply) => authState(req, reply),
  );

  app.post<{ Body: { password: string; secret?: string } }>(
    `${API}/auth/setup`,
    {
      config: { access: 'pre' },
      schema: {
        tags: ['auth'],
        summary: 'First boot: set the admin password (with the board secret if it has one); logs in',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['password'],
          properties: { password: { type: 'string', maxLength: 256 }, secret: { type: 'string', maxLength: 256 } },
        },
        response: { 200: { $ref: 'AuthState#' }, ...errors(400, 403, 409, 429) },
      },
    },
    async (req, reply) => {
      const login = await auth.setup(req.body.password, req.body.secret, req.ip);
      ctx.setSessionCookie(reply, req, login.token);
      return { setUp: true, loggedIn: true, firstBootSecretRequired: false, csrf: login.csrf };
    },
  );

  app.post<{ Body: { password: string } }>(
    `${API}/auth/login`,
    {
      config: { access: 'pre' },
      schema: {
        tags: ['auth'],
        summary: 'Log in as admin (rate-limited)',
        body: { type: 'object', additionalProperties: false, required: ['password'], properties: { password: { type: 'string', maxLength: 256 } } },
        response: { 200: { $ref: 'AuthState#' }, ...errors(400, 401, 403, 409, 429) },
      },
    },
    async (req, reply) => {
      try {
        const login = await auth.login(req.body.password, req.ip);
        ctx.setSessionCookie(reply, req, login.token);
        return { setUp: true, loggedIn: true, firstBootSecretRequired: false, csrf: login.csrf };
      } catch (e) {
        if (e instanceof DuocellError && e.code === 'DC_WEB_BAD_CREDENTIALS') ctx.metrics.loginFailures.inc();
        throw e;
      }
    },
  );

  app.post(
    `${API}/auth/logout`,
    {
      config: { access: 'session' },
      schema: { tags: ['auth'], summary: 'End this session', response: { 200: { $ref: 'AuthState#' }, ...errors(401, 403) } },
    },
    async (req, reply) => {
      ctx.release(req, reply);
      auth.logout(ctx.sessionToken(req));
      ctx.clearSessionCookie(reply);
      return { setUp: true, loggedIn: false, firstBootSecretRequired: false, csrf: ctx.preToken(req, reply) };
    },
  );

  app.put<{ Body: { current: string; password: string } }>(
    `${API}/auth/password`,
    {
      config: { access: 'session' },
      schema: {
        tags: ['auth'],
        summary: 'Change the admin password (ends every other session)',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['current', 'password'],
          properties: { current: { type: 'string', maxLength: 256 }, password: { type: 'string', maxLength: 256 } },
        },
        response: { 200: { $ref: 'AuthState#' }, ...errors(400, 401, 403, 429) },
      },
    },
    async (req, reply) => {
      ctx.release(req, reply);
      const login = await auth.changePassword(ctx.sessionToken(req) ?? '', req.body.current, req.body.password, req.ip);
      ctx.setSessionCookie(reply, req, login.token);
      return { setUp: true, loggedIn: true, firstBootSecretRequired: false, csrf: login.csrf };
    },
  );

  // ---- read-only views -----------------------------------------------------------------
  const view = (tag: string, summary: string, response: unknown) => ({
    config: { access: 'session' as const },
    schema: { tags: [tag], summary, response: { 200: response, ...errors(401, 503) } },
  });

  app.get(`${API}/paths`, view('paths', 'Both uplinks: state, access type, signal, addresses, counters, throughput', arrayOf('Path')), async () =>
    deps.paths().map((p) => ({ ...p, throughput: ctx.sampler.latest(p.name) ?? { txBps: 0, rxBps: 0 } })),
  );
  app.get(`${API}/throughput`, view('paths', 'Throughput samples of the last minutes, oldest first', arrayOf('ThroughputSample')), async () =>
    ctx.sampler.history(),
  );
  app.get(`${API}/sessions`, view('sessions', 'Open proxy sessions with their subflows', arrayOf('Session')), async () => deps.sessions());
  app.get(
    `${API}/udp`,
    view('sessions', 'UDP steering per flow: on/off, the default UDP mode, each steered flow (5-tuple, uplink, bytes, packets from conntrack), and what the ruleset refused since start', { $ref: 'Udp#' }),
    async () => (deps.udp === undefined ? { enabled: false, flows: [] } : deps.udp()),
  );
  app.get(
    `${API}/mservers`,
    view('sessions', 'The M-server bypass cache of on-path steering (servers that answered MPTCP go end to end until expiry)', {
      type: 'array',
      items: { type: 'object', required: ['address', 'port', 'expiresAt'], properties: { address: { type: 'string' }, port: { type: 'integer' }, expiresAt: { type: 'string' } } },
    }),
    async () => (deps.mservers === undefined ? [] : deps.mservers()),
  );
  app.get(
    `${API}/pm`,
    view('sessions', 'The MPTCP path manager: mode, endpoints, connections with their subflows (access type, backup, counters), subflows refused by policy, open sessions per UE / N-server', {
      type: 'object',
      additionalProperties: true,
      properties: { mode: { type: 'string', enum: ['kernel', 'userspace'] } },
    }),
    async () => {
      if (deps.pathManager === undefined) throw new DuocellError('DC_WEB_UNAVAILABLE', 'no path manager on this box (kernel without MPTCP?)');
      return deps.pathManager();
    },
  );
  app.get(`${API}/proxies`, view('proxies', 'Candidate proxies (concentrators) and their health', arrayOf('Proxy')), async () => deps.proxies());
  app.put<{ Body: { proxies: unknown[] } }>(
    `${API}/proxies`,
    {
      config: { access: 'session' },
      schema: {
        tags: ['proxies'],
        summary: 'Replace the candidate proxies (name, endpoint, location, type, priority, weight, applications, policies); a bad list is refused whole',
        body: { type: 'object', additionalProperties: false, required: ['proxies'], properties: { proxies: { type: 'array', maxItems: 1000, items: { type: 'object' } } } },
        response: { 200: arrayOf('Proxy'), ...errors(400, 401, 403, 409) },
      },
    },
    async (req) => {
      if (deps.setProxies === undefined) throw new DuocellError('DC_WEB_UNAVAILABLE', 'candidate proxies are not editable here');
      return deps.setProxies(req.body.proxies);
    },
  );
  app.get(`${API}/modem`, view('radios', 'The cellular modem: operator, RAT, band, signal, SIM', { $ref: 'Modem#' }), async () => {
    if (deps.modem === undefined) throw new DuocellError('DC_WEB_UNAVAILABLE', 'this box has no modem');
    return deps.modem();
  });
  app.get(`${API}/wlan`, view('radios', 'The WLAN radio', { $ref: 'Wlan#' }), async () => {
    if (deps.wlan === undefined) throw new DuocellError('DC_WEB_UNAVAILABLE', 'this box has no WLAN radio');
    return deps.wlan();
  });
  app.get(`${API}/system`, view('system', 'Box health: CPU temperature, load, memory, disks, uptime', { $ref: 'System#' }), async () => ctx.system());
  app.get(`${API}/ota`, view('ota', 'Policy bundle status: version in force, last check, last error', { $ref: 'Ota#' }), async () => deps.ota.status());

  // ---- subscribers ---------------------------------------------------------------------
  app.get(`${API}/subscribers`, view('subscribers', 'Every subscriber', arrayOf('Subscriber')), async () => deps.subscribers.list());

  app.get<{ Params: { id: string } }>(
    `${API}/subscribers/:id`,
    {
      config: { access: 'session' },
      schema: { tags: ['subscribers'], summary: 'One subscriber', params: idParams, response: { 200: { $ref: 'Subscriber#' }, ...errors(400, 401, 404) } },
    },
    async (req) => deps.subscribers.get(req.params.id),
  );

  app.post<{ Body: SubscriberInput }>(
    `${API}/subscribers`,
    {
      config: { access: 'session' },
      schema: {
        tags: ['subscribers'],
        summary: 'Add a subscriber',
        body: { $ref: 'SubscriberInput#' },
        response: { 201: { $ref: 'Subscriber#' }, ...errors(400, 401, 403, 409) },
      },
    },
    async (req, reply) => {
      const input = normaliseSubscriber(req.body);
      checkSubscriber(input);
      const s = await deps.subscribers.create(input);
      return reply.code(201).send(s);
    },
  );

  app.put<{ Params: { id: string }; Body: SubscriberInput }>(
    `${API}/subscribers/:id`,
    {
      config: { access: 'session' },
      schema: {
        tags: ['subscribers'],
        summary: "Replace a subscriber's identifiers and policy",
        params: idParams,
        body: { $ref: 'SubscriberInput#' },
        response: { 200: { $ref: 'Subscriber#' }, ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (req) => {
      const input = normaliseSubscriber(req.body);
      checkSubscriber(input);
      return deps.subscribers.update(req.params.id, input);
    },
  );

  app.delete<{ Params: { id: string } }>(
    `${API}/subscribers/:id`,
    {
      config: { access: 'session' },
      schema: { tags: ['subscribers'], summary: 'Remove a subscriber', params: idParams, response: { 204: { type: 'null' }, ...errors(400, 401, 403, 404) } },
    },
    async (req, reply) => {
      await deps.subscribers.remove(req.params.id);
      return reply.code(204).send();
    },
  );

  // ---- policy --------------------------------------------------------------------------
  app.get(`${API}/policy`, view('policy', 'The cell default policy in force', { $ref: 'Policy#' }), async () => deps.policy.get());

  app.put<{ Body: { defaults: PolicyDto } }>(
    `${API}/policy`,
    {
      config: { access: 'session' },
      schema: {
        tags: ['policy'],
        summary: 'Set the cell default policy (limits, allowed networks, steering mode and ratio)',
        body: { type: 'object', additionalProperties: false, required: ['defaults'], properties: { defaults: { $ref: 'PolicySpec#' } } },
        response: { 200: { $ref: 'Policy#' }, ...errors(400, 401, 403) },
      },
    },
    async (req) => {
      checkPolicyDefaults(req.body.defaults);
      return deps.policy.set(req.body.defaults);
    },
  );

  // ---- OTA bundle push: raw bytes, any content type, verified by the OTA layer ----------
  app.register(async (sub) => {
    sub.removeAllContentTypeParsers();
    sub.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: ctx.bundleLimit }, (_req, body, done) => done(null, body));
    sub.post<{ Body: Buffer | undefined }>(
      `${API}/ota/bundle`,
      {
        config: { access: 'session' },
        bodyLimit: ctx.bundleLimit,
        // The body is the signed bundle as bytes; the OTA layer parses and verifies it.
        validatorCompiler: () => () => true,
        schema: {
          tags: ['ota'],
          summary: 'Push a signed policy bundle (the file as the request body)',
          consumes: ['application/octet-stream', 'application/json'],
          body: { type: 'string', format: 'binary' },
          response: { 200: { $ref: 'Ota#' }, ...errors(400, 401, 403, 413, 422) },
        },
      },
      async (req) => {
        const body = req.body;
        if (!Buffer.isBuffer(body) || body.length === 0) throw new DuocellError('DC_HTTP_BAD_REQUEST', 'the request body must be the bundle file');
        return deps.ota.pushBundle(body);
      },
    );
  });

  // ---- run-time log level --------------------------------------------------------------
  const levelSchema = { type: 'object', required: ['level'], additionalProperties: false, properties: { level: { type: 'string', enum: LEVELS } } } as const;
  app.get(`${API}/log-level`, view('system', 'The log level in force', levelSchema), async () => ({ level: getLevel() }));
  app.put<{ Body: { level: (typeof LEVELS)[number] } }>(
    `${API}/log-level`,
    {
      config: { access: 'session' },
      schema: { tags: ['system'], summary: 'Change the log level at run time', body: levelSchema, response: { 200: levelSchema, ...errors(400, 401, 403) } },
    },
    async (req) => {
      setLevel(req.body.level);
      return { level: getLevel() };
    },
  );

  // ---- server-sent events --------------------------------------------------------------
  app.get(
    `${API}/events`,
    {
      config: { access: 'session' },
      schema: {
        tags: ['events'],
        summary: 'Server-sent events: throughput (every sample), paths, sessions, modem, wlan, policy, ota, subscribers',
        produces: ['text/event-stream'],
        response: { 200: { type: 'string', description: 'an endless text/event-stream' }, ...errors(401, 503) },
      },
    },
    async (req, reply) => {
      if (ctx.hub.size >= ctx.hub.maxClients) throw new DuocellError('DC_WEB_BUSY');
      reply.hijack();
      ctx.hub.attach(reply.raw, ctx.securityHeaders);
      // Start with the state now, so the page does not wait for the first change.
      ctx.hub.sendTo(reply.raw, 'paths', deps.paths());
    },
  );
}

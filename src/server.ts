// Builds the Fastify app (routes, scopes, validation, errors, metrics) on a given pool; never listens.
import { EventEmitter } from 'node:events'
import fastifyCookie from '@fastify/cookie'
import { Ajv } from 'ajv'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { createAdminService } from './admin/service.js'
import { consoleCookieAuth, rewriteConsoleUrl } from './console/auth.js'
import { consoleRoutes } from './console/routes.js'
import { createConsoleService } from './console/service.js'
import { createKeyRing, requireScope } from './auth/api-keys.js'
import type { Config } from './config.js'
import type { Sql } from './db.js'
import { createDbGate } from './db-gate.js'
import { createErrorHandler, invalidRequest, notFound, toBody, unavailable } from './errors.js'
import { clientErrorHandler } from './http/client-errors.js'
import { addDateTimeFormat, refuseNonFinite, withoutEchoes } from './http/validation.js'
import { adminRoutes } from './http/admin.js'
import { authRoutes } from './http/auth.js'
import { healthRoutes } from './http/health.js'
import { addSharedSchemas, closedQuery } from './http/schemas.js'
import { sessionRoutes } from './http/sessions.js'
import { userRoutes } from './http/users.js'
import { registerPruneJob } from './jobs/prune.js'
import { loggablePath, loggerOptions } from './logger.js'
import { createMetrics, observeCache, type Metrics } from './metrics.js'
import { createSessionService } from './sessions/service.js'
import { SessionCache } from './sessions/cache.js'
import { createRevocationFeed } from './sessions/revocation-feed.js'
import { revocationRoutes } from './http/revocations.js'
import { startChangeFeed } from './sessions/change-feed.js'

export const BODY_LIMIT_BYTES = 64 * 1024
export { DEFAULT_KEEP_ALIVE_TIMEOUT_MS as KEEP_ALIVE_TIMEOUT_MS } from './config.js'
export const MAX_PARAM_LENGTH = 4096
// How long requests in flight may finish after SIGTERM before every socket is closed (main.ts allows 10 s in all).
export const CLOSE_DRAIN_MS = 8_000

export interface BuildOptions {
  config: Config
  sql: Sql
  // For the change feed's own LISTEN connection; required with SESSION_CACHE_TTL > 0. Without it the
  // revocation feed re-reads the audit log every second instead of waking on NOTIFY.
  databaseUrl?: string
  loggerInstance?: FastifyBaseLogger
  // Tests build many servers and run prune themselves.
  cron?: boolean
}

// One LISTEN connection per node feeds the node cache (trusted only while it listens) and the revocation long-polls.
function startChanges(app: FastifyInstance, config: Config, databaseUrl: string | undefined, metrics: Metrics) {
  const changes = new EventEmitter().setMaxListeners(0)
  const cache = config.cacheTtl > 0 ? new SessionCache(config.cacheTtl * 1000, config.cacheMaxEntries) : undefined
  if (cache !== undefined) observeCache(metrics, cache)
  if (databaseUrl === undefined) {
    if (cache !== undefined) throw new Error('SESSION_CACHE_TTL needs the database URL for its change feed')
    return { cache, changes }
  }
  const feed = startChangeFeed(databaseUrl, config.databaseConnectTimeout, {
    onChange: (sessionId) => {
      cache?.evictSession(sessionId)
      changes.emit('change', sessionId)
    },
    onListening: () => {
      cache?.trust()
      app.log.info({ cache: cache !== undefined }, 'change feed listening')
    },
    onLost: (err) => {
      cache?.distrust()
      app.log.warn({ err }, cache === undefined ? 'change feed connection lost' : 'session cache bypassed: change feed connection lost')
    },
  })
  app.addHook('onClose', () => feed.close())
  return { cache, changes }
}

function makeAjv(httpPart: 'body' | 'other'): Ajv {
  const ajv = new Ajv({
    allErrors: false,
    // contract: bodies are never coerced ("userId": 42 is a 400); query strings and params may be.
    coerceTypes: httpPart === 'other',
    removeAdditional: false,
    useDefaults: true,
    strict: true,
    allowUnionTypes: true,
  })
  addDateTimeFormat(ajv)
  return ajv
}

declare module 'fastify' {
  interface FastifyReply {
    startedAt: bigint
  }
  interface FastifyRequest {
    // The session a request concerned, for the request's log line (never its token).
    sessionId: string | null
  }
  interface FastifyContextConfig {
    // Routes every app request or probe calls: their successful answers are logged at debug, not info.
    logSuccessAtDebug?: boolean
    // A long-poll holds no database slot while it waits (see the gate below).
    longPoll?: boolean
    // How long the gate lets this route's database work run before answering 503 (default: twice the statement timeout).
    databaseTimeoutMs?: number
  }
}

export async function buildServer({ config, sql, databaseUrl, loggerInstance, cron = true }: BuildOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...(loggerInstance === undefined ? { logger: loggerOptions(config) } : { loggerInstance }),
    bodyLimit: BODY_LIMIT_BYTES,
    // Slow clients: Node checks these bounds only every connectionsCheckingInterval (30 s by default, which let a trickled
    // request live twice its bound); checked at least every second, a socket is closed within about a second of its bound.
    http: {
      headersTimeout: config.http.headersTimeoutMs,
      requestTimeout: config.http.requestTimeoutMs,
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(config.http.headersTimeoutMs / 4))),
    },
    keepAliveTimeout: config.http.keepAliveTimeoutMs,
    requestTimeout: config.http.requestTimeoutMs,
    // A socket that sends nothing at all for this long is closed (the bounds above run from a request's first byte).
    connectionTimeout: config.http.requestTimeoutMs,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // Our onResponse hook writes the one line per request.
    logController: new LogController({ disableRequestLogging: true }),
    // We answer 503 ourselves while closing, in the contract's error shape with Retry-After.
    return503OnClosing: false,
    trustProxy: false,
    // The operator console's pages call /console/v1/...: routed as /v1/..., marked so that its cookie counts there only.
    rewriteUrl: rewriteConsoleUrl,
    // A malformed percent-encoding or an over-long parameter in the path never reaches the error handler nor the hooks:
    // answer it in the contract's shape (never echoing the URL), then count and log it like any other request.
    frameworkErrors: (err, req, reply) => {
      const appError = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? invalidRequest(`a path parameter is longer than ${MAX_PARAM_LENGTH} characters`)
        : err.code === 'FST_ERR_BAD_URL' ? invalidRequest('the URL path is not valid percent-encoded UTF-8')
          : invalidRequest('the request is malformed')
      const answer = reply as FastifyReply
      answer.startedAt = process.hrtime.bigint()
      metrics.errors.inc({ code: appError.code })
      void answer.code(appError.statusCode).send(toBody(appError))
      recordRequest(req as FastifyRequest, answer)
    },
    // Requests Node's HTTP parser refuses (bad framing, oversized headers, timeouts) are counted and logged too.
    clientErrorHandler: (err, socket) => clientErrorHandler(err, socket, ({ status, code }, cause) => {
      metrics.httpRequests.inc({ method: 'unknown', route: 'unknown', status: String(status) })
      metrics.errors.inc({ code })
      app.log.info({ route: 'unknown', statusCode: status, code, cause }, 'request completed')
    }),
  }) as unknown as FastifyInstance

  app.server.maxConnections = config.http.maxConnections

  const strictAjv = makeAjv('body')
  const coercingAjv = makeAjv('other')
  app.setValidatorCompiler(({ schema, httpPart }) => withoutEchoes(schema, httpPart === 'body' ? strictAjv.compile(schema) : refuseNonFinite(coercingAjv.compile(schema))))
  // contract: a body that is not JSON is a 415, so Fastify's built-in text/plain parser goes.
  app.removeContentTypeParser('text/plain')
  // Many HTTP clients send Content-Type: application/json on every request: with an empty body, a route that takes no body
  // sees none; a route that takes one still answers that the JSON body is empty.
  const parseJson = app.getDefaultJsonParser('error', 'error')
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if (body === '' && req.routeOptions.schema?.body === undefined) return done(null, undefined)
    return parseJson(req, body as string, done)
  })
  const metrics = createMetrics(config.databasePoolMax)
  app.setErrorHandler(createErrorHandler((code) => metrics.errors.inc({ code })))
  app.setNotFoundHandler((_req, reply) => {
    metrics.errors.inc({ code: 'not_found' })
    return reply.code(404).send(toBody(notFound('no such route')))
  })
  addSharedSchemas(app)

  for (const warning of config.warnings) app.log.warn(warning)
  const ring = createKeyRing(config.apiKeys)
  if (ring.open) {
    app.log.warn('NO API KEYS CONFIGURED: every caller on this loopback address has admin access; set API_KEYS and ADMIN_API_KEYS before exposing the service')
  }
  const { cache, changes } = startChanges(app, config, databaseUrl, metrics)
  const sessions = createSessionService({ sql, config, metrics, cache })
  const revocations = createRevocationFeed({ sql, changes })
  const admin = createAdminService({ sql, metrics, forgetLocally: sessions.forgetLocally })
  const operatorConsole = createConsoleService({ sql, config, ring, sessions })
  let shuttingDown = false

  app.decorateRequest('apiKey', null)
  app.decorateRequest('sessionId', null)
  app.decorateReply('startedAt', 0n)
  app.addHook('onRequest', async (req, reply) => {
    reply.startedAt = process.hrtime.bigint()
    // Requests that arrive once closing has begun (on kept-alive sockets) are refused; liveness still answers.
    if (shuttingDown && req.routeOptions.url !== '/healthz' && req.routeOptions.url !== '/readyz') throw unavailable('the service is shutting down; retry on another node')
  })
  // One metric sample and one log line per request (at debug for a successful validation or probe: at info they would
  // double the log volume of every app); the URL is logged without its query string or any token-shaped segment.
  function recordRequest(req: FastifyRequest, reply: FastifyReply): void {
    const seconds = Number(process.hrtime.bigint() - reply.startedAt) / 1e9
    const route = req.routeOptions.url ?? 'unknown'
    const labels = { method: req.method, route, status: String(reply.statusCode) }
    metrics.httpRequests.inc(labels)
    metrics.httpDuration.observe(labels, seconds)
    const level = reply.statusCode < 400 && req.routeOptions.config?.logSuccessAtDebug === true ? 'debug' : 'info'
    req.log[level]({ method: req.method, url: loggablePath(req.originalUrl), route, statusCode: reply.statusCode, durationMs: Math.round(seconds * 1e6) / 1e3, key: req.apiKey?.name, sessionId: req.sessionId ?? undefined }, 'request completed')
  }
  app.addHook('onResponse', async (req, reply) => recordRequest(req, reply))
  app.addHook('preClose', async () => {
    shuttingDown = true
    changes.emit('closing')
    // Node closes only idle sockets that have carried a request; one opened and never used would hold the close open.
    setTimeout(() => app.server.closeAllConnections(), CLOSE_DRAIN_MS).unref()
  })
  // Node closes only the sockets idle when closing starts; a kept-alive socket must not outlive its last response.
  app.addHook('onSend', async (_req, reply) => {
    if (shuttingDown) void reply.header('connection', 'close')
  })
  app.addHook('onClose', async () => {
    await sql.end({ timeout: 5 })
  })

  // Each /v1 handler does its database work holding one of DATABASE_POOL_MAX slots; a request that cannot get one within
  // DATABASE_QUEUE_TIMEOUT_MS (or finds DATABASE_QUEUE_MAX already waiting) is a 503. Health, metrics and the contract stay outside.
  const gate = createDbGate({
    slots: config.databasePoolMax,
    queueMax: config.databaseQueueMax,
    queueTimeoutMs: config.databaseQueueTimeoutMs,
    // A handler runs a few statements, each ended by statement_timeout: past twice that, something below the database hangs.
    settleTimeoutMs: config.databaseStatementTimeoutMs * 2,
  })
  app.addHook('onRoute', (route) => {
    route.schema = { ...route.schema, querystring: closedQuery(route.schema?.querystring) }
    // A long-poll waits for seconds between short reads: holding a slot all that time would starve every other request.
    const longPoll = route.config?.longPoll === true
    if (route.url.startsWith('/v1/') && !longPoll) gate.wrap(route)
  })
  await app.register(fastifyCookie)
  await app.register(healthRoutes, { sql, metrics, isShuttingDown: () => shuttingDown })
  await app.register(async (v1) => {
    v1.addHook('onRequest', requireScope(ring, 'sessions', consoleCookieAuth(operatorConsole)))
    await v1.register(sessionRoutes, { sessions, cookie: config.cookie })
    await v1.register(userRoutes, { sessions })
    await v1.register(authRoutes, { sessions, cookie: config.cookie })
    await v1.register(revocationRoutes, { feed: revocations, lifecycle: changes })
  }, { prefix: '/v1' })
  await app.register(async (adminScope) => {
    adminScope.addHook('onRequest', requireScope(ring, 'admin', consoleCookieAuth(operatorConsole)))
    await adminScope.register(adminRoutes, { admin, sql, config, metrics })
  }, { prefix: '/v1/admin' })
  await app.register(consoleRoutes, { prefix: '/console', config, ring, console: operatorConsole })
  if (cron) await registerPruneJob(app, sql, config, metrics)
  return app
}

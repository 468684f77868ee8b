// One benchmark server per process, forked by bench/run.mjs: `node bench/servers.mjs <kind>` with its settings in
// BENCH_SERVER (JSON). It answers over IPC: {type:'ready', port} once listening, {type:'usage'} on 'usage', and
// closes and exits on 'stop' (after a last 'usage'), so a --cpu-prof profile is written.
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'

const kind = process.argv[2]
const settings = JSON.parse(process.env.BENCH_SERVER ?? '{}')

function usage() {
  const status = readFileSync('/proc/self/status', 'utf8')
  const kb = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN)
  return { type: 'usage', cpu: process.cpuUsage(), rssBytes: process.memoryUsage().rss, peakRssBytes: kb('VmHWM') * 1024, heapUsedBytes: process.memoryUsage().heapUsed }
}

// Ceiling 1: bare Fastify parsing the same JSON body and answering a constant.
async function ceilingConstant() {
  const { default: Fastify } = await import('fastify')
  const app = Fastify()
  app.post('/', async () => ({ ok: true }))
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { port: app.server.address().port, close: () => app.close() }
}

// Fastify + postgres.js (the service's own pool options: prepared statements, DATABASE_POOL_MAX) answering POST / with
// { token } by what read(sql, config, tokenHash) finds, or 404.
async function readServer(read) {
  const { default: Fastify } = await import('fastify')
  const { loadConfig } = await import('../dist/config.js')
  const { connect } = await import('../dist/db.js')
  const config = loadConfig({ DATABASE_URL: settings.databaseUrl })
  const sql = connect(settings.databaseUrl, config)
  const app = Fastify()
  app.post('/', async (req, reply) => {
    const session = await read(sql, config, createHash('sha256').update(req.body.token, 'utf8').digest())
    if (session === undefined) return reply.code(404).send({ error: 'not found' })
    return { session }
  })
  app.addHook('onClose', () => sql.end({ timeout: 5 }))
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { port: app.server.address().port, close: () => app.close() }
}

// Ceiling 2: one read by token hash through the unique index of the same sessions table, answering the row.
async function ceilingOneRead() {
  return readServer(async (sql, _config, hash) => {
    const [row] = await sql`
      select id, user_id, policy, data, version, created_at, last_seen_at, idle_expires_at, expires_at
        from sessions where token_hash = ${hash}`
    return row
  })
}

// Diagnostic: ceiling 2's Fastify and pool, but running the service's own validate query (store.findByTokenHash).
async function serviceQuery() {
  const { findByTokenHash } = await import('../dist/sessions/store.js')
  return readServer(async (sql, config, hash) => {
    const row = await findByTokenHash(sql, hash, config.touchInterval)
    return row === undefined ? undefined : { id: row.id, userId: row.user_id, policy: row.policy, data: row.data, lastSeenAt: row.last_seen_at, idleExpiresAt: row.idle_expires_at, expiresAt: row.expires_at }
  })
}

// The common alternative: express + express-session + connect-pg-simple with their defaults, validating a signed cookie.
async function expressSession() {
  const { default: express } = await import('express')
  const { default: session } = await import('express-session')
  const { default: connectPgSimple } = await import('connect-pg-simple')
  const PgStore = connectPgSimple(session)
  // Its defaults: its own pg.Pool (10 connections), table "session", pruning every 15 minutes.
  const store = new PgStore({ conString: settings.databaseUrl })
  const app = express()
  // resave and saveUninitialized spelled out at their default values (true), only to silence express-session's deprecation warnings.
  app.use(session({ store, secret: settings.secret, resave: true, saveUninitialized: true }))
  app.get('/', (req, res) => {
    if (req.session.userId === undefined) return res.status(401).json({ error: 'no session' })
    res.json({ userId: req.session.userId })
  })
  const server = await new Promise((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s)) })
  return {
    port: server.address().port,
    close: async () => {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      await store.close()
    },
  }
}

// This service, built exactly as src/main.ts builds it (without the prune cron), with the given environment.
async function service() {
  const { default: pino } = await import('pino')
  const { loadConfig } = await import('../dist/config.js')
  const { connect } = await import('../dist/db.js')
  const { loggerOptions } = await import('../dist/logger.js')
  const { buildServer } = await import('../dist/server.js')
  const config = loadConfig({ HOST: '127.0.0.1', PORT: '0', DATABASE_URL: settings.databaseUrl, MIGRATE: 'false', ...settings.env })
  const sql = connect(settings.databaseUrl, config)
  // Request logging stays on at the default level; stdout is /dev/null in the bench.
  const app = await buildServer({ config, sql, databaseUrl: settings.databaseUrl, cron: false, loggerInstance: pino(loggerOptions(config)) })
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { port: app.server.address().port, close: () => app.close() }
}

const kinds = { 'ceiling-constant': ceilingConstant, 'ceiling-one-read': ceilingOneRead, 'service-query': serviceQuery, 'express-session': expressSession, service }
if (!(kind in kinds)) {
  console.error(`unknown server kind ${kind}`)
  process.exit(2)
}

const server = await kinds[kind]()
process.on('message', async (msg) => {
  if (msg === 'usage') process.send(usage())
  if (msg === 'stop') {
    const last = usage()
    await server.close()
    process.send(last, () => process.exit(0))
  }
})
// The parent's death must not leave this server running.
process.on('disconnect', () => process.exit(0))
process.send({ type: 'ready', port: server.port })

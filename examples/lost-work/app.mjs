// One instance of the lost-work example app: Fastify with the session-service plugin, a login page and a long form.
// Run several against one session service (start.mjs does) and the same browser session works on each of them.
import { pathToFileURL } from 'node:url'
import Fastify from 'fastify'
import { sessionPlugin } from '@session-service/client/fastify'
import { formPage, loginPage } from './pages.mjs'

const seconds = (value, fallback) => {
  const n = Number(value)
  return Number.isFinite(n) && n > 0 ? n : fallback
}

// Only local paths: never redirect a user to another site after login.
const localPath = (next) => (typeof next === 'string' && next.startsWith('/') && !next.startsWith('//') ? next : '/form')

export async function buildApp({ serviceUrl, apiKey, instance, warnBefore = 120, touchEvery = 60, peers = {}, cacheTtlMs, logLevel = 'warn' }) {
  const app = Fastify({ logger: { level: logLevel } })
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body)))
  })
  await app.register(sessionPlugin, { baseUrl: serviceUrl, apiKey, cacheTtlMs })
  // This instance's "database" of saved reports: a demo, so memory.
  const saved = new Map()

  app.get('/', async (_req, reply) => reply.redirect('/form'))
  app.get('/healthz', async () => ({ status: 'ok', instance }))
  app.get('/favicon.ico', async (_req, reply) => reply.code(204).send())

  app.get('/login', { preHandler: app.loadSession }, async (req, reply) => {
    const { next, reason } = req.query
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store')
      .send(loginPage({ instance, next: localPath(next), reason, userId: req.session?.userId }))
  })

  app.post('/login', async (req, reply) => {
    const { userId = '', password = '', next } = req.body ?? {}
    // A real app checks the password here; the demo takes any.
    if (userId.trim() === '' || password === '') {
      return reply.code(400).type('text/html; charset=utf-8').send(loginPage({ instance, next: localPath(next), error: 'Enter a user and a password.' }))
    }
    try {
      await app.sessions.login(reply, { userId: userId.trim().slice(0, 256), data: { signedInOn: instance } })
    } catch (err) {
      req.log.error({ err }, 'login failed')
      return reply.code(503).type('text/html; charset=utf-8').send(loginPage({ instance, next: localPath(next), error: 'Signing in is not possible right now; try again in a moment.' }))
    }
    return reply.redirect(localPath(next), 303)
  })

  app.post('/logout', async (req, reply) => {
    try {
      await app.sessions.logout(req, reply)
    } catch (err) {
      req.log.warn({ err }, 'logout failed')
    }
    return reply.redirect('/login?reason=logout', 303)
  })

  // The form: knobs ?warnBefore= and ?touchEvery= (seconds) scale the warning and the keep-alive down for tests and demos.
  app.get('/form', { preHandler: app.loadSession }, async (req, reply) => {
    if (req.session === null) return reply.redirect(`/login?next=${encodeURIComponent(req.url)}`)
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(formPage({
      instance,
      userId: req.session.userId,
      warnBefore: seconds(req.query.warnBefore, warnBefore),
      touchEvery: seconds(req.query.touchEvery, touchEvery),
      peers,
    }))
  })

  app.get('/api/session', { preHandler: app.requireSession }, async (req) => ({
    userId: req.session.userId,
    idleExpiresAt: req.session.idleExpiresAt,
    expiresAt: req.session.expiresAt,
    instance,
  }))

  app.post('/api/touch', { preHandler: app.requireSession }, async (req, reply) => {
    try {
      const session = await app.sessions.touch(req, reply)
      return { idleExpiresAt: session.idleExpiresAt, expiresAt: session.expiresAt, instance }
    } catch (err) {
      return app.sessions.fail(reply, err)
    }
  })

  app.post('/api/save', { preHandler: app.requireSession }, async (req) => {
    const { title = '', body = '' } = req.body ?? {}
    const savedAt = new Date().toISOString()
    saved.set(req.session.userId, { title: String(title).slice(0, 200), body: String(body).slice(0, 100_000), savedAt })
    return { savedAt, instance }
  })

  return app
}

// node examples/lost-work/app.mjs, configured by the environment (start.mjs sets it).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const env = process.env
  const peers = Object.fromEntries((env.PEERS ?? '').split(',').filter(Boolean).map((pair) => pair.split('=')))
  const app = await buildApp({
    serviceUrl: env.SERVICE_URL ?? 'http://127.0.0.1:8091',
    apiKey: env.SERVICE_API_KEY,
    instance: env.INSTANCE ?? 'A',
    warnBefore: seconds(env.WARN_BEFORE, 120),
    touchEvery: seconds(env.TOUCH_EVERY, 60),
    peers,
    logLevel: env.LOG_LEVEL ?? 'warn',
  })
  const port = Number(env.PORT ?? 3001)
  await app.listen({ host: '127.0.0.1', port })
  process.stdout.write(`instance ${env.INSTANCE ?? 'A'} listening on http://127.0.0.1:${port}\n`)
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      app.close().then(() => process.exit(0), () => process.exit(1))
    })
  }
}

// Small app backends on loopback using the Fastify plugin or the Express middleware, and a cookie-carrying fetch for them.
import type { AddressInfo } from 'node:net'
import express from 'express'
import Fastify from 'fastify'
import { denialOf, sessionMiddleware, sessionOf, type ExpressSessionOptions } from '../../packages/client/src/express.js'
import { sessionOf as fastifySessionOf, sessionPlugin, type FastifySessionOptions } from '../../packages/client/src/fastify.js'
import type { SessionGuard } from '../../packages/client/src/core.js'

type Tap = { teardown(fn: () => unknown): void }

export interface Backend {
  base: string
  guard: SessionGuard
  close(): Promise<void>
}

// Routes of both backends: POST /login {userId}, GET /me, POST /touch, POST /rotate, POST /logout.
export async function fastifyBackend(t: Tap, options: FastifySessionOptions): Promise<Backend> {
  const app = Fastify()
  await app.register(sessionPlugin, options)
  app.post<{ Body: { userId: string; data?: Record<string, unknown> } }>('/login', async (req, reply) => {
    const session = await app.sessions.login(reply, { userId: req.body.userId, data: req.body.data })
    return { session }
  })
  app.get('/me', { preHandler: app.requireSession }, async (req) => {
    const session = app.sessions.current(req)
    return { id: session.id, userId: session.userId }
  })
  app.get('/maybe', { preHandler: app.loadSession }, async (req) => ({ userId: fastifySessionOf(req)?.userId ?? null }))
  app.post('/touch', { preHandler: app.requireSession }, async (req, reply) => {
    try {
      return { session: await app.sessions.touch(req, reply) }
    } catch (err) {
      return app.sessions.fail(reply, err)
    }
  })
  app.post('/rotate', { preHandler: app.requireSession }, async (req, reply) => ({ session: await app.sessions.rotate(req, reply) }))
  // The helpers without the guard in front: a request without a cookie reaches them.
  app.post('/touch-any', async (req, reply) => {
    try {
      return { session: await app.sessions.touch(req, reply) }
    } catch (err) {
      return app.sessions.fail(reply, err)
    }
  })
  app.post('/rotate-any', async (req, reply) => {
    try {
      return { session: await app.sessions.rotate(req, reply) }
    } catch (err) {
      return app.sessions.fail(reply, err)
    }
  })
  // A password change: the helper, or the guard's own client directly.
  app.post('/password', { preHandler: app.requireSession }, async (req) => ({ revoked: await app.sessions.revokeOtherSessions(req) }))
  app.post('/password-client', { preHandler: app.requireSession }, async (req) => {
    const session = app.sessions.current(req)
    return { revoked: await app.sessions.guard.client.revokeUserSessions(session.userId, { except: session.id, reason: 'password_change' }) }
  })
  app.post('/logout', async (req, reply) => {
    await app.sessions.logout(req, reply)
    return reply.code(204).send()
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    await app.close()
  }
  t.teardown(close)
  const { port } = app.server.address() as AddressInfo
  return { base: `http://127.0.0.1:${port}`, guard: app.sessions.guard, close }
}

export async function expressBackend(t: Tap, options: ExpressSessionOptions): Promise<Backend> {
  const sessions = sessionMiddleware({
    // Pages under /page are HTML: send the browser to the login page with the reason.
    onDenied: (req, res, denial) => {
      if (!(req.url ?? '').startsWith('/page')) return false
      res.statusCode = 302
      res.setHeader('location', `/login?reason=${denial.reason}`)
      res.end()
      return true
    },
    ...options,
  })
  const app = express()
  app.use(express.json())
  app.post('/login', async (req, res) => {
    const session = await sessions.login(res, { userId: req.body.userId, data: req.body.data })
    res.json({ session })
  })
  app.get('/me', sessions.required, (req, res) => {
    const session = sessions.current(req)
    res.json({ id: session.id, userId: session.userId })
  })
  app.get('/maybe', sessions.optional, (req, res) => {
    res.json({ userId: sessionOf(req)?.userId ?? null })
  })
  app.post('/touch', sessions.required, async (req, res) => {
    try {
      res.json({ session: await sessions.touch(req, res) })
    } catch (err) {
      sessions.fail(res, err)
    }
  })
  app.post('/rotate', sessions.required, async (req, res) => {
    res.json({ session: await sessions.rotate(req, res) })
  })
  app.post('/touch-any', async (req, res) => {
    try {
      res.json({ session: await sessions.touch(req, res) })
    } catch (err) {
      sessions.fail(res, err)
    }
  })
  app.post('/rotate-any', async (req, res) => {
    try {
      res.json({ session: await sessions.rotate(req, res) })
    } catch (err) {
      sessions.fail(res, err)
    }
  })
  app.post('/password', sessions.required, async (req, res) => {
    res.json({ revoked: await sessions.revokeOtherSessions(req) })
  })
  app.post('/password-client', sessions.required, async (req, res) => {
    const session = sessions.current(req)
    res.json({ revoked: await sessions.guard.client.revokeUserSessions(session.userId, { except: session.id, reason: 'password_change' }) })
  })
  // The reason a cookie was refused, on the optional path.
  app.get('/maybe-why', sessions.optional, (req, res) => {
    res.json({ userId: sessionOf(req)?.userId ?? null, reason: denialOf(req)?.reason ?? null })
  })
  // An HTML page: a denial is a redirect to the login page (the onDenied option), not JSON.
  app.get('/page', sessions.required, (req, res) => {
    res.type('html').send(`<p>hello ${sessions.current(req).userId}</p>`)
  })
  app.post('/logout', async (req, res) => {
    await sessions.logout(req, res)
    res.status(204).end()
  })
  sessions.start()
  const server = await new Promise<import('node:http').Server>((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening))
  })
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    await sessions.close()
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  t.teardown(close)
  const { port } = server.address() as AddressInfo
  return { base: `http://127.0.0.1:${port}`, guard: sessions.guard, close }
}

export interface Answer {
  status: number
  headers: Headers
  json: Record<string, unknown> & { error?: { code: string; reason?: string; revokeReason?: string } }
  setCookies: string[]
}

export async function request(base: string, method: string, path: string, options: { token?: string; body?: unknown } = {}): Promise<Answer> {
  const headers: Record<string, string> = {}
  if (options.token !== undefined) headers.cookie = `theme=dark; sid=${options.token}`
  if (options.body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(`${base}${path}`, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) })
  const text = await res.text()
  return { status: res.status, headers: res.headers, json: text === '' ? {} : JSON.parse(text), setCookies: res.headers.getSetCookie() }
}

export function tokenOf(setCookie: string | undefined): string {
  const match = /^sid=([^;]*)/.exec(setCookie ?? '')
  if (match === null) throw new Error(`no sid cookie in ${setCookie}`)
  return match[1]
}

export async function login(base: string, userId: string): Promise<{ token: string; setCookie: string; answer: Answer }> {
  const answer = await request(base, 'POST', '/login', { body: { userId } })
  if (answer.status !== 200) throw new Error(`login failed: ${answer.status} ${JSON.stringify(answer.json)}`)
  return { token: tokenOf(answer.setCookies[0]), setCookie: answer.setCookies[0], answer }
}

// Small app backends on loopback using the Fastify plugin or the Express middleware, and a cookie-carrying fetch for them.
import type { AddressInfo } from 'node:net'
import express from 'express'
import Fastify from 'fastify'
import { sessionMiddleware, sessionOf, type ExpressSessionOptions } from '../../packages/client/src/express.js'
import { sessionPlugin, type FastifySessionOptions } from '../../packages/client/src/fastify.js'
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
  app.get('/me', { preHandler: app.requireSession }, async (req) => ({ id: req.session!.id, userId: req.session!.userId }))
  app.get('/maybe', { preHandler: app.loadSession }, async (req) => ({ userId: req.session?.userId ?? null }))
  app.post('/touch', { preHandler: app.requireSession }, async (req, reply) => {
    try {
      return { session: await app.sessions.touch(req, reply) }
    } catch (err) {
      return app.sessions.fail(reply, err)
    }
  })
  app.post('/rotate', { preHandler: app.requireSession }, async (req, reply) => ({ session: await app.sessions.rotate(req, reply) }))
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
  const sessions = sessionMiddleware(options)
  const app = express()
  app.use(express.json())
  app.post('/login', async (req, res) => {
    const session = await sessions.login(res, { userId: req.body.userId, data: req.body.data })
    res.json({ session })
  })
  app.get('/me', sessions.required, (req, res) => {
    const session = sessionOf(req)!
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

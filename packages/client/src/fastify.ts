// Fastify plugin: request.session from the session cookie (validated through the service, cached), 401 with the reason, and login/rotate/touch/logout.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { CreateSessionInput, Session } from './types.js'
import { SessionGuard, cleanText, expiryHeaders, type Authentication, type SessionGuardOptions } from './core.js'

export { SessionGuard, type SessionGuardOptions } from './core.js'
export { SessionServiceError, isSessionInvalid } from './errors.js'

declare module 'fastify' {
  interface FastifyRequest {
    // The validated session once requireSession (or loadSession) ran; null otherwise.
    session: Session | null
  }
  interface FastifyInstance {
    sessions: FastifySessions
    // preHandler: answers 401 (with the reason) unless the request carries a valid session cookie.
    requireSession: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    // preHandler: sets request.session when the cookie is valid, else leaves it null; never answers.
    loadSession: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
}

export type FastifySessionOptions = SessionGuardOptions

export interface FastifySessions {
  guard: SessionGuard
  // Creates a session for a user who just proved who they are, and sets the service's Set-Cookie on the reply.
  login(reply: FastifyReply, input: Omit<CreateSessionInput, 'ip' | 'userAgent'> & Partial<Pick<CreateSessionInput, 'ip' | 'userAgent'>>): Promise<Session>
  // A new token for the current session (after a privilege change); sets the new cookie.
  rotate(request: FastifyRequest, reply: FastifyReply): Promise<Session>
  // Records activity now (keep-alive) and refreshes the expiry headers.
  touch(request: FastifyRequest, reply: FastifyReply): Promise<Session>
  // Revokes the current session and passes the service's clearing Set-Cookie on.
  logout(request: FastifyRequest, reply: FastifyReply, reason?: string): Promise<void>
  // Answers a helper's failure as requireSession would: 401 with the reason, 503 when the service is down, else 500.
  fail(reply: FastifyReply, err: unknown): FastifyReply
}

function attach(request: FastifyRequest, reply: FastifyReply, session: Session): void {
  request.session = session
  void reply.headers(expiryHeaders(session))
}

function deny(reply: FastifyReply, denial: Extract<Authentication, { ok: false }>): FastifyReply {
  return reply.code(denial.status).headers(denial.headers).send(denial.body)
}

async function sessionPlugin(app: FastifyInstance, options: FastifySessionOptions): Promise<void> {
  const guard = new SessionGuard({ logger: app.log, ...options })
  const tokenOf = (request: FastifyRequest) => guard.tokenFrom(request.headers.cookie)

  const sessions: FastifySessions = {
    guard,
    async login(reply, input) {
      const request = reply.request
      const issued = await guard.login({
        ...input,
        ip: input.ip ?? cleanText(request.ip, 256),
        userAgent: input.userAgent ?? cleanText(request.headers['user-agent'], 1024),
      })
      void reply.header('set-cookie', issued.setCookie)
      attach(request, reply, issued.session)
      return issued.session
    },
    async rotate(request, reply) {
      const token = tokenOf(request)
      if (token === undefined) throw new Error('rotate needs a request with a session cookie')
      const issued = await guard.rotate(token)
      void reply.header('set-cookie', issued.setCookie)
      attach(request, reply, issued.session)
      return issued.session
    },
    async touch(request, reply) {
      const token = tokenOf(request)
      if (token === undefined) throw new Error('touch needs a request with a session cookie')
      const session = await guard.touch(token)
      attach(request, reply, session)
      return session
    },
    async logout(request, reply, reason) {
      const { setCookie } = await guard.logout(tokenOf(request), reason)
      if (setCookie !== undefined) void reply.header('set-cookie', setCookie)
      request.session = null
    },
    fail(reply, err) {
      return deny(reply, guard.denial(err))
    },
  }

  app.decorateRequest('session', null)
  app.decorate('sessions', sessions)
  app.decorate('requireSession', async (request: FastifyRequest, reply: FastifyReply) => {
    const result = await guard.authenticate(request.headers.cookie)
    if (!result.ok) return deny(reply, result)
    attach(request, reply, result.session)
  })
  app.decorate('loadSession', async (request: FastifyRequest, reply: FastifyReply) => {
    if (tokenOf(request) === undefined) return
    const result = await guard.authenticate(request.headers.cookie)
    if (result.ok) attach(request, reply, result.session)
  })
  app.addHook('onReady', async () => guard.start())
  app.addHook('onClose', async () => guard.close())
}

// Not encapsulated (what fastify-plugin does): the decorators belong to the instance that registers the plugin.
const meta = sessionPlugin as unknown as Record<symbol, unknown>
meta[Symbol.for('skip-override')] = true
meta[Symbol.for('fastify.display-name')] = 'session-service'
meta[Symbol.for('plugin-meta')] = { name: 'session-service', fastify: '5.x' }

export { sessionPlugin }
export default sessionPlugin

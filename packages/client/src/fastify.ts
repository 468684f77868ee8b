// Fastify plugin: the request's session from the session cookie (validated through the service, cached), 401 with the reason, and login/rotate/touch/logout.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { CreateSessionInput, Session } from './types.js'
import { SessionGuard, cleanText, expiryHeaders, type Denial, type SessionGuardOptions } from './core.js'

export { SessionGuard, type Denial, type GuardLogger, type SessionGuardOptions } from './core.js'
export { SessionServiceError, isSessionInvalid } from './errors.js'
export type { Session } from './types.js'

declare module 'fastify' {
  interface FastifyInstance {
    sessions: FastifySessions
    // preHandler: answers 401 (with the reason) unless the request carries a valid session cookie.
    requireSession: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    // preHandler: sets the request's session when the cookie is valid, else leaves it null; never answers.
    loadSession: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
}

export interface FastifySessionOptions extends SessionGuardOptions {
  // The request property the session is also put on, for plain JavaScript (default "session"). Beside @fastify/session,
  // which owns request.session, choose another name (e.g. "sessionService"). Typed code reads it with
  // app.sessions.current(request) or sessionOf(request), whatever the name.
  decorate?: string | undefined
}

// The login input: ip and userAgent default to the request's.
export type LoginInput = Omit<CreateSessionInput, 'ip' | 'userAgent'> & Partial<Pick<CreateSessionInput, 'ip' | 'userAgent'>>

export interface FastifySessions {
  guard: SessionGuard
  // The session of a request behind requireSession, typed as a Session (throws when requireSession did not run before).
  current(request: FastifyRequest): Session
  // Creates a session for a user who just proved who they are, and sets the service's Set-Cookie on the reply.
  login(reply: FastifyReply, input: LoginInput): Promise<Session>
  // A new token for the current session (after a privilege change); sets the new cookie.
  rotate(request: FastifyRequest, reply: FastifyReply): Promise<Session>
  // Records activity now (keep-alive) and refreshes the expiry headers.
  touch(request: FastifyRequest, reply: FastifyReply): Promise<Session>
  // Revokes the current session and passes the service's clearing Set-Cookie on.
  logout(request: FastifyRequest, reply: FastifyReply, reason?: string): Promise<void>
  // A password change: revokes every other session of the request's user (reason password_change) and forgets them in
  // this process at once; answers how many were revoked.
  revokeOtherSessions(request: FastifyRequest, reason?: string): Promise<number>
  // Answers a helper's failure as requireSession would: 401 with the reason, 503 when the service is down, else 500 (logged).
  fail(reply: FastifyReply, err: unknown): FastifyReply
}

const SESSION = Symbol.for('session-service.session')
const DENIAL = Symbol.for('session-service.denial')
type Slots = Record<symbol, Session | Denial | null | undefined>

// The request's session once requireSession or loadSession ran (null when there is none), whatever the decorator's name.
export function sessionOf(request: FastifyRequest): Session | null {
  return ((request as unknown as Slots)[SESSION] as Session | null | undefined) ?? null
}

// Why loadSession (or requireSession) found no session: the reason, or a 503/500; undefined when valid or no cookie came.
export function denialOf(request: FastifyRequest): Denial | undefined {
  return ((request as unknown as Slots)[DENIAL] as Denial | undefined) ?? undefined
}

function deny(reply: FastifyReply, denial: Denial): FastifyReply {
  return reply.code(denial.status).headers(denial.headers).send(denial.body)
}

async function sessionPlugin(app: FastifyInstance, options: FastifySessionOptions): Promise<void> {
  const { decorate = 'session', ...guardOptions } = options
  const guard = new SessionGuard({ logger: app.log, ...guardOptions })
  const tokenOf = (request: FastifyRequest) => guard.tokenFrom(request.headers.cookie)
  const set = (request: FastifyRequest, session: Session | null, denial: Denial | undefined) => {
    const slots = request as unknown as Slots
    slots[SESSION] = session
    slots[DENIAL] = denial
    ;(request as unknown as Record<string, unknown>)[decorate] = session
  }
  const attach = (request: FastifyRequest, reply: FastifyReply, session: Session) => {
    set(request, session, undefined)
    void reply.headers(expiryHeaders(session))
  }

  const sessions: FastifySessions = {
    guard,
    current(request) {
      const session = sessionOf(request)
      if (session === null) throw new Error('no session on this request: add { preHandler: app.requireSession } to the route')
      return session
    },
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
      const issued = await guard.rotate(tokenOf(request))
      void reply.header('set-cookie', issued.setCookie)
      attach(request, reply, issued.session)
      return issued.session
    },
    async touch(request, reply) {
      const session = await guard.touch(tokenOf(request))
      attach(request, reply, session)
      return session
    },
    async logout(request, reply, reason) {
      const { setCookie } = await guard.logout(tokenOf(request), reason)
      if (setCookie !== undefined) void reply.header('set-cookie', setCookie)
      set(request, null, undefined)
    },
    async revokeOtherSessions(request, reason) {
      return guard.revokeOtherSessions(sessionOf(request) ?? await guard.sessionFor(tokenOf(request), 'revokeOtherSessions'), reason)
    },
    fail(reply, err) {
      return deny(reply, guard.denial(err))
    },
  }

  app.decorateRequest(decorate, null)
  app.decorateRequest(SESSION as unknown as string, null)
  app.decorateRequest(DENIAL as unknown as string, null)
  app.decorate('sessions', sessions)
  app.decorate('requireSession', async (request: FastifyRequest, reply: FastifyReply) => {
    const result = await guard.authenticate(request.headers.cookie)
    if (!result.ok) {
      set(request, null, result)
      return deny(reply, result)
    }
    attach(request, reply, result.session)
  })
  app.decorate('loadSession', async (request: FastifyRequest, reply: FastifyReply) => {
    if (tokenOf(request) === undefined) return
    const result = await guard.authenticate(request.headers.cookie)
    if (result.ok) attach(request, reply, result.session)
    else set(request, null, result)
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

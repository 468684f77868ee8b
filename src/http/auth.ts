// GET /v1/auth for load balancers (nginx auth_request): the session from the cookie or X-Session-Token, answered in headers.
import type { FastifyInstance } from 'fastify'
import type { CookieConfig } from '../config.js'
import { isAmbiguousCookie } from '../sessions/cookie.js'
import type { SessionService } from '../sessions/service.js'
import { toSession } from '../sessions/types.js'
import { SessionEnvelope } from './schemas.js'

// The session cookie first, X-Session-Token otherwise; nothing at all is an empty, malformed token (401 not_found, no query).
function presentedToken(cookieValue: string | undefined, header: string | string[] | undefined): string {
  if (cookieValue !== undefined && cookieValue !== '') return cookieValue
  return typeof header === 'string' ? header : ''
}

export async function authRoutes(app: FastifyInstance, { sessions, cookie }: { sessions: SessionService; cookie: CookieConfig }): Promise<void> {
  app.get('/auth', {
    schema: { response: { 200: SessionEnvelope } },
    config: { logSuccessAtDebug: true },
  }, async (req, reply) => {
    // contract: the token comes from a header or the cookie, never from the URL.
    const ambiguous = isAmbiguousCookie(req.headers.cookie, cookie.name)
    if (ambiguous) req.log.info({ cookie: cookie.name }, 'session cookie sent more than once: refused (cookie tossing?)')
    // An empty token is not_found, counted like any other miss, and costs no query.
    const token = ambiguous ? '' : presentedToken(req.cookies[cookie.name], req.headers['x-session-token'])
    const row = await sessions.validate(token, { touch: true })
    req.sessionId = row.id
    return reply
      .header('x-session-id', encodeURIComponent(row.id))
      .header('x-user-id', encodeURIComponent(row.user_id))
      .header('cache-control', 'no-store')
      .send({ session: toSession(row) })
  })
}

// Express (or Connect, or plain node:http) middleware: req.session from the session cookie, 401 with the reason, and login/rotate/touch/logout.
// It needs nothing of Express at run time: requests and responses are node:http's, which Express extends.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { CreateSessionInput, Session } from './types.js'
import { SessionGuard, cleanText, consoleLogger, expiryHeaders, type Denial, type SessionGuardOptions } from './core.js'

export { SessionGuard, type Denial, type GuardLogger, type SessionGuardOptions } from './core.js'
export { SessionServiceError, isSessionInvalid } from './errors.js'
export type { Session } from './types.js'

export interface ExpressSessionOptions extends SessionGuardOptions {
  // How `required` answers a request without a valid session, e.g. a redirect to the login page for HTML routes. When it
  // has not answered by the time it returns (or its promise settles), the JSON answer (401 with the reason, 503 or 500) is
  // sent. Default: always the JSON answer.
  onDenied?: ((req: IncomingMessage, res: ServerResponse, denial: Denial) => unknown) | undefined
}

// The request once required/optional ran. (Named apart from express-session's Request.session type, which it may meet.)
export type RequestWithSession = IncomingMessage & { session: Session | null }

type Next = (err?: unknown) => void
export type Middleware = (req: IncomingMessage, res: ServerResponse, next: Next) => void

// The login input: ip and userAgent default to the request's.
export type LoginInput = Omit<CreateSessionInput, 'ip' | 'userAgent'> & Partial<Pick<CreateSessionInput, 'ip' | 'userAgent'>>

export interface ExpressSessions {
  guard: SessionGuard
  // Answers 401 (with the reason; or onDenied) unless the request carries a valid session cookie; sets req.session.
  required: Middleware
  // Sets req.session when the cookie is valid, else null (denialOf(req) then says why); never answers.
  optional: Middleware
  // The session of a request behind `required`, typed as a Session (throws when `required` did not run before).
  current(req: IncomingMessage): Session
  // Creates a session for a user who just proved who they are, and sets the service's Set-Cookie on the response.
  login(res: ServerResponse, input: LoginInput): Promise<Session>
  rotate(req: IncomingMessage, res: ServerResponse): Promise<Session>
  touch(req: IncomingMessage, res: ServerResponse): Promise<Session>
  logout(req: IncomingMessage, res: ServerResponse, reason?: string): Promise<void>
  // A password change: revokes every other session of the request's user (reason password_change) and forgets them in
  // this process at once; answers how many were revoked.
  revokeOtherSessions(req: IncomingMessage, reason?: string): Promise<number>
  // Answers a helper's failure as `required` would: 401 with the reason, 503 when the service is down, else 500 (logged).
  fail(res: ServerResponse, err: unknown): void
  // Starts following the revocation feed now (otherwise on the first request).
  start(): void
  // Stops the revocation feed; call it when the server closes.
  close(): Promise<void>
}

const DENIAL = Symbol.for('session-service.denial')

export function sessionOf(req: IncomingMessage): Session | null {
  return (req as Partial<RequestWithSession>).session ?? null
}

// Why `optional` (or `required`) found no session on this request: the reason (e.g. revoked, idle_timeout), or a 503/500
// when the service could not tell; undefined when the session is valid or no cookie came.
export function denialOf(req: IncomingMessage): Denial | undefined {
  return (req as unknown as Record<symbol, Denial | undefined>)[DENIAL]
}

function appendSetCookie(res: ServerResponse, cookie: string): void {
  const existing = res.getHeader('set-cookie')
  const list = existing === undefined ? [] : Array.isArray(existing) ? existing : [String(existing)]
  res.setHeader('set-cookie', [...list, cookie])
}

function attach(req: IncomingMessage, res: ServerResponse, session: Session): void {
  (req as RequestWithSession).session = session
  for (const [name, value] of Object.entries(expiryHeaders(session))) res.setHeader(name, value)
}

function deny(res: ServerResponse, denial: Denial): void {
  const body = JSON.stringify(denial.body)
  res.statusCode = denial.status
  for (const [name, value] of Object.entries(denial.headers)) res.setHeader(name, value)
  res.setHeader('content-type', 'application/json; charset=utf-8')
  res.setHeader('content-length', Buffer.byteLength(body))
  res.end(body)
}

const answered = (res: ServerResponse) => res.headersSent || res.writableEnded

// The request a response answers (Express sets res.req; node:http has it since 15.7).
const requestOf = (res: ServerResponse): IncomingMessage | undefined => (res as ServerResponse & { req?: IncomingMessage }).req

export function sessionMiddleware(options: ExpressSessionOptions): ExpressSessions {
  // Express has no logger of its own: warnings and errors (a wrong API key) go to the console unless a logger is given.
  const guard = new SessionGuard({ ...options, logger: options.logger ?? consoleLogger })
  const tokenOf = (req: IncomingMessage) => guard.tokenFrom(req.headers.cookie)
  const remember = (req: IncomingMessage, denial: Denial | undefined) => {
    (req as unknown as Record<symbol, Denial | undefined>)[DENIAL] = denial
  }

  const required: Middleware = (req, res, next) => {
    (req as RequestWithSession).session = null
    guard.authenticate(req.headers.cookie).then(async (result) => {
      if (result.ok) {
        remember(req, undefined)
        attach(req, res, result.session)
        return next()
      }
      remember(req, result)
      if (options.onDenied !== undefined) await options.onDenied(req, res, result)
      if (!answered(res)) deny(res, result)
    }).catch(next)
  }

  const optional: Middleware = (req, res, next) => {
    (req as RequestWithSession).session = null
    remember(req, undefined)
    if (tokenOf(req) === undefined) return next()
    guard.authenticate(req.headers.cookie).then((result) => {
      if (result.ok) attach(req, res, result.session)
      else remember(req, result)
      next()
    }, next)
  }

  const current = (req: IncomingMessage): Session => {
    const session = sessionOf(req)
    if (session === null) throw new Error('no session on this request: put sessions.required before this handler')
    return session
  }

  return {
    guard,
    required,
    optional,
    current,
    async login(res, input) {
      const req = requestOf(res)
      const issued = await guard.login({
        ...input,
        ip: input.ip ?? cleanText(req?.socket.remoteAddress, 256),
        userAgent: input.userAgent ?? cleanText(req?.headers['user-agent'], 1024),
      })
      appendSetCookie(res, issued.setCookie)
      if (req !== undefined) attach(req, res, issued.session)
      return issued.session
    },
    async rotate(req, res) {
      const issued = await guard.rotate(tokenOf(req))
      appendSetCookie(res, issued.setCookie)
      attach(req, res, issued.session)
      return issued.session
    },
    async touch(req, res) {
      const session = await guard.touch(tokenOf(req))
      attach(req, res, session)
      return session
    },
    async logout(req, res, reason) {
      const { setCookie } = await guard.logout(tokenOf(req), reason)
      if (setCookie !== undefined) appendSetCookie(res, setCookie)
      ;(req as RequestWithSession).session = null
    },
    async revokeOtherSessions(req, reason) {
      return guard.revokeOtherSessions(sessionOf(req) ?? await guard.sessionFor(tokenOf(req), 'revokeOtherSessions'), reason)
    },
    fail(res, err) {
      deny(res, guard.denial(err))
    },
    start: () => guard.start(),
    close: () => guard.close(),
  }
}

export default sessionMiddleware

// Express (or Connect, or plain node:http) middleware: req.session from the session cookie, 401 with the reason, and login/rotate/touch/logout.
// It needs nothing of Express at run time: requests and responses are node:http's, which Express extends.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { CreateSessionInput, Session } from './types.js'
import { SessionGuard, cleanText, expiryHeaders, type Authentication, type SessionGuardOptions } from './core.js'

export { SessionGuard, type SessionGuardOptions } from './core.js'
export { SessionServiceError, isSessionInvalid } from './errors.js'

export type ExpressSessionOptions = SessionGuardOptions

// The request once required/optional ran. (Named apart from express-session's Request.session type, which it may meet.)
export type RequestWithSession = IncomingMessage & { session: Session | null }

type Next = (err?: unknown) => void
export type Middleware = (req: IncomingMessage, res: ServerResponse, next: Next) => void

export interface ExpressSessions {
  guard: SessionGuard
  // Answers 401 (with the reason) unless the request carries a valid session cookie; sets req.session.
  required: Middleware
  // Sets req.session when the cookie is valid, else null; never answers.
  optional: Middleware
  // Creates a session for a user who just proved who they are, and sets the service's Set-Cookie on the response.
  login(res: ServerResponse, input: Omit<CreateSessionInput, 'ip' | 'userAgent'> & Partial<Pick<CreateSessionInput, 'ip' | 'userAgent'>>): Promise<Session>
  rotate(req: IncomingMessage, res: ServerResponse): Promise<Session>
  touch(req: IncomingMessage, res: ServerResponse): Promise<Session>
  logout(req: IncomingMessage, res: ServerResponse, reason?: string): Promise<void>
  // Answers a helper's failure as `required` would: 401 with the reason, 503 when the service is down, else 500.
  fail(res: ServerResponse, err: unknown): void
  // Starts following the revocation feed now (otherwise on the first request).
  start(): void
  // Stops the revocation feed; call it when the server closes.
  close(): Promise<void>
}

export function sessionOf(req: IncomingMessage): Session | null {
  return (req as Partial<RequestWithSession>).session ?? null
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

function deny(res: ServerResponse, denial: Extract<Authentication, { ok: false }>): void {
  const body = JSON.stringify(denial.body)
  res.statusCode = denial.status
  for (const [name, value] of Object.entries(denial.headers)) res.setHeader(name, value)
  res.setHeader('content-type', 'application/json; charset=utf-8')
  res.setHeader('content-length', Buffer.byteLength(body))
  res.end(body)
}

// The request a response answers (Express sets res.req; node:http has it since 15.7).
const requestOf = (res: ServerResponse): IncomingMessage | undefined => (res as ServerResponse & { req?: IncomingMessage }).req

export function sessionMiddleware(options: ExpressSessionOptions): ExpressSessions {
  const guard = new SessionGuard(options)
  const tokenOf = (req: IncomingMessage) => guard.tokenFrom(req.headers.cookie)

  const required: Middleware = (req, res, next) => {
    (req as RequestWithSession).session = null
    guard.authenticate(req.headers.cookie).then((result) => {
      if (!result.ok) return deny(res, result)
      attach(req, res, result.session)
      next()
    }, next)
  }

  const optional: Middleware = (req, res, next) => {
    (req as RequestWithSession).session = null
    if (tokenOf(req) === undefined) return next()
    guard.authenticate(req.headers.cookie).then((result) => {
      if (result.ok) attach(req, res, result.session)
      next()
    }, next)
  }

  return {
    guard,
    required,
    optional,
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
      const token = tokenOf(req)
      if (token === undefined) throw new Error('rotate needs a request with a session cookie')
      const issued = await guard.rotate(token)
      appendSetCookie(res, issued.setCookie)
      attach(req, res, issued.session)
      return issued.session
    },
    async touch(req, res) {
      const token = tokenOf(req)
      if (token === undefined) throw new Error('touch needs a request with a session cookie')
      const session = await guard.touch(token)
      attach(req, res, session)
      return session
    },
    async logout(req, res, reason) {
      const { setCookie } = await guard.logout(tokenOf(req), reason)
      if (setCookie !== undefined) appendSetCookie(res, setCookie)
      ;(req as RequestWithSession).session = null
    },
    fail(res, err) {
      deny(res, guard.denial(err))
    },
    start: () => guard.start(),
    close: () => guard.close(),
  }
}

export default sessionMiddleware

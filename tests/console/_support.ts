// Signing in to the operator console through the real routes, and the headers its calls need.
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { parseSetCookie } from 'set-cookie-parser'
import { ADMIN_KEY } from '../helpers/app.js'

// app.inject's default Host header; a browser on the console's page sends its origin with every state-changing call.
export const ORIGIN = 'http://localhost:80'

export interface ConsoleLogin {
  res: LightMyRequestResponse
  cookie: string
  csrf: string
  sessionId: string
}

export function postSignIn(app: FastifyInstance, key: string, opts: { origin?: string | null; remoteAddress?: string } = {}) {
  const origin = opts.origin === undefined ? ORIGIN : opts.origin
  return app.inject({
    method: 'POST',
    url: '/console/api/session',
    headers: { 'content-type': 'application/json', 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36', ...(origin === null ? {} : { origin }) },
    payload: { key },
    ...(opts.remoteAddress === undefined ? {} : { remoteAddress: opts.remoteAddress }),
  })
}

export async function signIn(app: FastifyInstance, key = ADMIN_KEY): Promise<ConsoleLogin> {
  const res = await postSignIn(app, key)
  if (res.statusCode !== 200) throw new Error(`console sign-in answered ${res.statusCode}: ${res.body}`)
  const [cookie] = parseSetCookie(res.headers['set-cookie'] as string)
  const body = res.json() as { csrfToken: string; sessionId: string }
  return { res, cookie: `console_sid=${cookie.value}`, csrf: body.csrfToken, sessionId: body.sessionId }
}

// Headers of a console call: the cookie, and for a state-changing call the origin and the CSRF token.
export function asConsole(login: ConsoleLogin, opts: { csrf?: string | null; origin?: string | null } = {}): Record<string, string> {
  const csrf = opts.csrf === undefined ? login.csrf : opts.csrf
  const origin = opts.origin === undefined ? ORIGIN : opts.origin
  return { cookie: login.cookie, ...(csrf === null ? {} : { 'x-csrf-token': csrf }), ...(origin === null ? {} : { origin }) }
}

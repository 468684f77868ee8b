// The console's way into the routes it calls: its pages call them under /console/v1/..., where its session cookie (sent
// by browsers only below /console) stands for the admin key that signed in; every state-changing call must also come
// from this origin with the session's CSRF token in a header. On the plain /v1 routes only a bearer key counts.
import { timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { FastifyRequest } from 'fastify'
import type { AlternativeAuth } from '../auth/api-keys.js'
import { csrfRefused } from '../errors.js'
import { CONSOLE_COOKIE, csrfTokenFor, type ConsoleService } from './service.js'

export const CSRF_HEADER = 'x-csrf-token'
// The console's cookie path, and the prefix under which its pages reach the /v1 routes.
export const CONSOLE_PATH = '/console'
const CONSOLE_API = `${CONSOLE_PATH}/v1/`
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

// The Origin a browser sent must name this host. Behind a proxy that forwards Host without its port (nginx's $host), the
// host names alone are compared; SameSite=Strict and the CSRF token are the other two locks on the door.
export function isSameOrigin(req: FastifyRequest): boolean {
  const origin = req.headers.origin
  const host = req.headers.host
  if (origin === undefined || host === undefined) return false
  let url: URL
  try {
    url = new URL(origin)
  } catch {
    return false
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false
  let served: URL
  try {
    served = new URL(`${url.protocol}//${host}`)
  } catch {
    return false
  }
  if (url.host === served.host) return true
  return !/:\d+$/.test(host) && url.hostname === served.hostname
}

function sameSecret(presented: string, expected: string): boolean {
  const a = Buffer.from(presented, 'utf8')
  const b = Buffer.from(expected, 'utf8')
  return a.length === b.length && timingSafeEqual(a, b)
}

export function checkCsrf(req: FastifyRequest, token: string): void {
  if (!isSameOrigin(req)) throw csrfRefused('a console call that changes something must come from the console\'s own origin')
  const presented = req.headers[CSRF_HEADER]
  if (typeof presented !== 'string' || !sameSecret(presented, csrfTokenFor(token))) {
    throw csrfRefused(`a console call that changes something needs the session's ${CSRF_HEADER} header`)
  }
}

// Requests that came in as /console/v1/...: the raw request objects, marked before routing.
const throughConsole = new WeakSet<IncomingMessage>()

// Fastify's rewriteUrl (runs before routing): /console/v1/x is routed as /v1/x, the same route, schema and hooks, and
// marked as the console's call. Nothing else is rewritten.
export function rewriteConsoleUrl(raw: IncomingMessage): string {
  const url = raw.url ?? '/'
  if (!url.startsWith(CONSOLE_API)) return url
  throughConsole.add(raw)
  return url.slice(CONSOLE_PATH.length)
}

export function isConsoleCall(req: FastifyRequest): boolean {
  return throughConsole.has(req.raw)
}

// For requireScope: used only when a request has no Authorization header, so API clients are never affected, and only
// on a call that came through /console/v1/: the cookie never opens the plain /v1 routes, whoever replays it.
export function consoleCookieAuth(console: ConsoleService): AlternativeAuth {
  return async (req) => {
    if (!isConsoleCall(req)) return undefined
    const token = req.cookies[CONSOLE_COOKIE]
    if (token === undefined || token === '') return undefined
    const identity = await console.identify(token)
    if (identity === undefined) return undefined
    if (!SAFE_METHODS.has(req.method)) checkCsrf(req, token)
    return identity.key
  }
}

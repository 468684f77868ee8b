// The console's way into the routes it calls: its session cookie stands for the admin key that signed in, and every
// state-changing call must also come from this origin with the session's CSRF token in a header.
import { timingSafeEqual } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import type { AlternativeAuth } from '../auth/api-keys.js'
import { csrfRefused } from '../errors.js'
import { CONSOLE_COOKIE, csrfTokenFor, type ConsoleService } from './service.js'

export const CSRF_HEADER = 'x-csrf-token'
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

// For requireScope: used only when a request has no Authorization header, so API clients are never affected.
export function consoleCookieAuth(console: ConsoleService): AlternativeAuth {
  return async (req) => {
    const token = req.cookies[CONSOLE_COOKIE]
    if (token === undefined || token === '') return undefined
    const identity = await console.identify(token)
    if (identity === undefined) return undefined
    if (!SAFE_METHODS.has(req.method)) checkCsrf(req, token)
    return identity.key
  }
}
